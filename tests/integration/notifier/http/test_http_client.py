"""Given real HTTP servers on loopback (aiohttp, and raw sockets for what aiohttp would
never send), when the provider HTTP client posts, then connections are kept alive and
bounded, every way of ending a body is read, a server that closes or times out never
hands one call's answer to another, and TLS verifies the server. Under the standard
event loop and under uvloop (what the workers run)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme
from aiohttp import web

from services.notifier.adapters.http import HttpClient, HttpError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    """An aiohttp server whose handler the test sets; counts the connections it saw."""

    def __init__(self) -> None:
        self.handler: Handler = self.echo
        self.peers: set[tuple[str, int]] = set()
        self.bodies: list[bytes] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def echo(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"echo": (await request.read()).decode()})

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        self.peers.add(request.transport.get_extra_info("peername"))
        self.bodies.append(await request.read())
        return await self.handler(request)

    async def start(self, tls: ssl.SSLContext | None = None, **kwargs: object) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2, **kwargs)  # type: ignore[arg-type]
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v2/bot/message/push"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    running = Server()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient(max_connections=4)
    yield http
    await http.aclose()


async def raw_server(answer: bytes, close: bool) -> tuple[asyncio.Server, str]:
    """A socket server that reads one request and writes ``answer`` verbatim."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        if close:
            writer.close()
        else:
            await asyncio.sleep(5)

    listening = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    return listening, f"http://127.0.0.1:{port}/x"


async def test_when_posting_in_sequence_then_one_connection_carries_every_call(
    server: Server, client: HttpClient
) -> None:
    for i in range(10):
        response = await client.post(server.url, f"body-{i}".encode(), {"X-N": str(i)}, 5.0)
        assert response.status == 200
        assert response.body == f'{{"echo": "body-{i}"}}'.encode()
        assert response.headers["content-type"].startswith("application/json")

    assert len(server.peers) == 1
    assert server.bodies == [f"body-{i}".encode() for i in range(10)]


async def test_when_many_post_at_once_then_at_most_max_connections_are_open(
    server: Server, client: HttpClient
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return web.Response(text=(await request.read()).decode())

    server.handler = slow

    answers = await asyncio.gather(
        *(client.post(server.url, str(i).encode(), {}, 5.0) for i in range(20))
    )

    assert [a.body for a in answers] == [str(i).encode() for i in range(20)]
    assert len(server.peers) == 4


async def test_when_the_body_is_chunked_then_it_is_read_whole_and_headers_are_lower_case(
    server: Server, client: HttpClient
) -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=429, headers={"Retry-After": "7"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b'{"message": ', b'"slow ', b'down"}'):
            await response.write(part)
        await response.write_eof()
        return response

    server.handler = chunked

    response = await client.post(server.url, b"{}", {}, 5.0)

    assert (response.status, response.body) == (429, b'{"message": "slow down"}')
    assert response.headers["retry-after"] == "7"
    assert (await client.post(server.url, b"again", {}, 5.0)).status == 429
    assert len(server.peers) == 1  # chunked answers keep the connection


async def test_when_the_server_says_connection_close_then_the_next_call_opens_a_new_one(
    server: Server, client: HttpClient
) -> None:
    async def closing(request: web.Request) -> web.StreamResponse:
        return web.Response(text="bye", headers={"Connection": "close"})

    server.handler = closing

    for _ in range(3):
        assert (await client.post(server.url, b"x", {}, 5.0)).body == b"bye"

    assert len(server.peers) == 3


async def test_when_the_server_closed_an_idle_connection_then_the_next_call_still_succeeds(
    client: HttpClient,
) -> None:
    server = Server()
    await server.start(keepalive_timeout=0.1)  # the server drops idle connections fast
    try:
        await client.post(server.url, b"one", {}, 5.0)
        await asyncio.sleep(0.4)

        response = await client.post(server.url, b"two", {}, 5.0)

        assert response.body == b'{"echo": "two"}'
        assert len(server.peers) == 2
    finally:
        await server.stop()


async def test_when_a_connection_was_idle_past_keepalive_then_it_is_not_reused(
    server: Server,
) -> None:
    http = HttpClient(keepalive_s=0.1)
    try:
        await http.post(server.url, b"one", {}, 5.0)
        await asyncio.sleep(0.3)
        await http.post(server.url, b"two", {}, 5.0)
    finally:
        await http.aclose()

    assert len(server.peers) == 2


async def test_when_the_answer_is_late_then_timeout_and_it_never_answers_the_next_call(
    server: Server, client: HttpClient
) -> None:
    async def late_then_fast(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if body == b"late":
            await asyncio.sleep(0.5)
        return web.Response(body=body)

    server.handler = late_then_fast

    with pytest.raises(TimeoutError):
        await client.post(server.url, b"late", {}, 0.2)
    # Sent while the late answer is still on its way: on the same connection, it would be
    # taken for this call's answer.
    response = await client.post(server.url, b"next", {}, 5.0)

    assert response.body == b"next"


async def test_when_nothing_listens_then_a_wire_error_names_the_address(
    client: HttpClient,
) -> None:
    listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()

    with pytest.raises(HttpError, match=f"connect 127.0.0.1:{port}"):
        await client.post(f"http://127.0.0.1:{port}/x", b"x", {}, 5.0)


async def test_when_the_answer_is_not_http_then_a_wire_error(client: HttpClient) -> None:
    listening, url = await raw_server(b"SMTP READY\r\n\r\n", close=False)
    async with listening:
        with pytest.raises(HttpError, match="unreadable answer"):
            await client.post(url, b"x", {}, 5.0)


async def test_when_the_server_closes_mid_body_then_a_wire_error(client: HttpClient) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"
    listening, url = await raw_server(answer, close=True)
    async with listening:
        with pytest.raises(HttpError, match="closed before the answer"):
            await client.post(url, b"x", {}, 5.0)


async def test_when_the_body_runs_until_close_then_it_is_read_whole(client: HttpClient) -> None:
    answer = b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 3\r\n\r\nback soon"
    listening, url = await raw_server(answer, close=True)
    async with listening:
        response = await client.post(url, b"x", {}, 5.0)

    assert (response.status, response.body, response.headers["retry-after"]) == (
        503,
        b"back soon",
        "3",
    )


async def test_when_an_interim_100_comes_first_then_the_final_answer_is_returned(
    client: HttpClient,
) -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    listening, url = await raw_server(answer, close=False)
    async with listening:
        response = await client.post(url, b"x", {}, 5.0)

    assert (response.status, response.body) == (201, b"ok")


async def test_when_a_header_value_holds_a_line_break_then_nothing_is_sent(
    server: Server, client: HttpClient
) -> None:
    with pytest.raises(ValueError, match="line breaks"):
        await client.post(server.url, b"x", {"Authorization": "Bearer a\r\nX-Evil: 1"}, 5.0)

    assert server.bodies == []


async def test_when_the_url_is_not_http_then_a_clear_error(client: HttpClient) -> None:
    with pytest.raises(ValueError, match="not an http"):
        await client.post("ftp://example.jp/x", b"x", {}, 5.0)


async def test_when_https_then_the_server_certificate_is_verified(tmp_path: object) -> None:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_tls)
    server = Server()
    await server.start(tls=server_tls)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    trusted, untrusted = HttpClient(tls=trusting), HttpClient()  # system roots only
    try:
        response = await trusted.post(server.url, b"secret", {}, 5.0)
        assert response.body == b'{"echo": "secret"}'
        assert server.url.startswith("https://")

        with pytest.raises(HttpError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.post(server.url, b"secret", {}, 5.0)
        assert server.bodies == [b"secret"]
    finally:
        await trusted.aclose()
        await untrusted.aclose()
        await server.stop()


async def test_when_closed_then_idle_connections_end_and_calls_are_refused(
    server: Server,
) -> None:
    http = HttpClient()
    await http.post(server.url, b"x", {}, 5.0)

    await http.aclose()

    with pytest.raises(HttpError, match="client closed"):
        await http.post(server.url, b"y", {}, 5.0)
