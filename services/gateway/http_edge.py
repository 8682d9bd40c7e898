"""The HTTP edge: who is calling (write key), how big, is it JSON — before any event is read.

Every refusal is a :class:`Refused` with a status and a Segment-style ``{"code",
"message"}`` body (Segment SDKs read those two fields from error responses).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from aiohttp import web

from schemas.events import Source
from services.gateway.metrics import REQUESTS_REFUSED

CORS = {"Access-Control-Allow-Origin": "*"}


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        REQUESTS_REFUSED.labels(self.code).inc()
        body = {"success": False, "code": self.code, "message": self.message}
        return json_response(body, self.status)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=CORS
    )


def basic_auth_key(request: web.Request) -> str | None:
    """The write key of ``Authorization: Basic base64("<key>:")``; None without the header."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise Refused(401, "unauthorized", "use HTTP Basic with the write key as user")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(401, "unauthorized", "malformed Basic credentials") from None
    return decoded.partition(":")[0]


def source_for(key: str | None, write_keys: dict[str, Source]) -> Source:
    source = write_keys.get(key) if key else None
    if source is None:
        raise Refused(401, "unauthorized", "unknown or missing write key")
    return source


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The (gunzipped) body, at most ``max_bytes``; aiohttp inflates Content-Encoding: gzip."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise _too_large(request.content_length, max_bytes)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(None, max_bytes) from None
    except Exception as err:  # a corrupt gzip stream surfaces as a payload error
        raise Refused(400, "bad_body", f"cannot read the body: {err}") from None
    if len(body) > max_bytes:
        raise _too_large(len(body), max_bytes)
    return body


def _too_large(size: int | None, max_bytes: int) -> Refused:
    shown = f"{size} bytes" if size is not None else "the body"
    return Refused(413, "request_too_large", f"{shown} exceeds the {max_bytes}-byte limit")


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise Refused(400, "invalid_json", f"body is not JSON: {err}") from None
