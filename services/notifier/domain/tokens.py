"""Unsubscribe tokens: an HMAC-signed (customer_id, channel) for one-click links."""

from __future__ import annotations

import base64
import hashlib
import hmac

from schemas.channels import Channel


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"unsubscribe\x00" + payload, hashlib.sha256).digest()[:18]


def sign(secret: bytes, customer_id: str, channel: Channel) -> str:
    payload = f"{customer_id}\n{channel.value}".encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def verify(secret: bytes, token: str) -> tuple[str, Channel] | None:
    """(customer_id, channel) if the token is genuine, else None (constant-time compare)."""
    try:
        body, mac = token.split(".", 1)
        payload = _unb64(body)
        if not hmac.compare_digest(_unb64(mac), _mac(secret, payload)):
            return None
        customer_id, channel = payload.decode().split("\n", 1)
        return customer_id, Channel(channel)
    except (ValueError, UnicodeDecodeError):
        return None
