"""A lean HTTP/1.1 client for the provider APIs (LINE push, FCM v1).

Why not aiohttp: at 2,000 sends/s per worker the HTTP client was the largest single
cost of a notification (about 150 µs of CPU per call in aiohttp against about 50 µs
here, ``bench/http_client.py``; the whole worker went from ~600 to ~360 µs per
notification). The provider calls are all alike: a JSON POST to one
of a few hosts, a small answer. So this client does only that, and well:

- keep-alive connections per origin (scheme, host, port), at most ``max_connections``
  in use at once (more callers wait for one); an idle connection is reused newest
  first and dropped after ``keepalive_s`` idle, before a server would close it;
- responses parsed by llhttp (``httptools``, the parser uvicorn uses): Content-Length,
  chunked and read-until-close bodies; ``Connection: close`` honoured;
- TLS (certificate and host name verified) for ``https`` URLs;
- one deadline per call covering waiting for a connection, connecting, sending and
  reading; a connection whose call timed out or failed is closed, never reused (its
  late answer must not become the next call's answer).

Failures on the wire raise :class:`HttpError`; the deadline raises ``TimeoutError``.
Neither is retried here: the caller decides (a POST may or may not have been
processed), which for the notifier means the retry schedule and the provider's retry
key. No proxies, cookies, redirects or compression: the provider APIs need none.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

import httptools


class HttpError(Exception):
    """The call failed on the wire (connect, reset, unreadable answer)."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes


@dataclass(frozen=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port
    path: str
    host_header: str


@lru_cache(maxsize=64)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(
        (parts.scheme, host, port), path, shown if port == default else f"{shown}:{port}"
    )


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one call at a time, answered through a future."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[HttpResponse] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._status = 0
        self._until_close = False  # no length given: the body ends when the server closes
        self._keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():
            self._fail(HttpError("answer without a request"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(HttpError(f"unreadable answer: {err}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._status and self._until_close:
            answer.set_result(HttpResponse(self._status, self._headers, b"".join(self._body)))
        else:
            answer.set_exception(HttpError(f"connection closed before the answer: {exc}"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers, self._body, self._status = {}, [], 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        headers = self._headers
        self._until_close = "content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", ""
        )

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (100 Continue): the real one follows
            return
        self._keep_alive = self._parser.should_keep_alive()
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result(HttpResponse(self._status, self._headers, b"".join(self._body)))

    # calls
    async def call(self, request: bytes) -> tuple[HttpResponse, bool]:
        """Send one request and wait for its answer; (answer, connection reusable)."""
        if self.closed or self.transport is None:
            raise HttpError("connection closed")
        self._answer = asyncio.get_running_loop().create_future()
        self._keep_alive = False
        self.transport.write(request)
        response = await self._answer
        return response, self._keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: HttpError) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()


class _Origin:
    def __init__(self, scheme: str, host: str, port: int, max_connections: int) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.slots = asyncio.Semaphore(max_connections)
        self.idle: list[_Connection] = []

    def reusable(self, now: float, keepalive_s: float) -> _Connection | None:
        while self.idle:
            connection = self.idle.pop()  # newest first: the oldest go idle and expire
            if not connection.closed and now - connection.idle_since < keepalive_s:
                return connection
            connection.close()
        return None

    async def connect(self, tls: ssl.SSLContext | None) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection,
                self.host,
                self.port,
                ssl=tls,
                server_hostname=self.host if tls is not None else None,
            )
        except OSError as err:  # refused, unreachable, TLS handshake failed, DNS
            raise HttpError(f"connect {self.host}:{self.port}: {err}") from err
        return connection


class HttpClient:
    def __init__(
        self,
        *,
        max_connections: int = 64,
        keepalive_s: float = 15.0,
        user_agent: str = "kizuna-notifier",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._max = max_connections
        self._keepalive_s = keepalive_s
        self._agent = user_agent
        self._tls = tls
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._closed = False

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> HttpResponse:
        """POST ``body``; the answer whatever its status. HttpError / TimeoutError else."""
        if self._closed:
            raise HttpError("client closed")
        target = _target(url)
        request = self._request(target, body, headers)
        origin = self._origins.get(target.origin)
        if origin is None:
            origin = self._origins[target.origin] = _Origin(*target.origin, self._max)
        async with asyncio.timeout(timeout_s), origin.slots:
            connection = origin.reusable(time.monotonic(), self._keepalive_s)
            if connection is None:
                connection = await origin.connect(self._tls_for(origin.scheme))
            try:
                response, reusable = await connection.call(request)
            except BaseException:  # timeout, cancel, wire error: the answer may still come
                connection.close()
                raise
            if reusable and not self._closed:
                connection.idle_since = time.monotonic()
                origin.idle.append(connection)
            else:
                connection.close()
            return response

    def _request(self, target: _Target, body: bytes, headers: Mapping[str, str]) -> bytes:
        lines = [
            f"POST {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
            f"User-Agent: {self._agent}\r\nContent-Length: {len(body)}\r\n"
        ]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r}: line breaks are not allowed")
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1") + body

    def _tls_for(self, scheme: str) -> ssl.SSLContext | None:
        if scheme != "https":
            return None
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def aclose(self) -> None:
        """Close the idle connections; connections in use close when their call ends."""
        self._closed = True
        for origin in self._origins.values():
            while origin.idle:
                origin.idle.pop().close()
