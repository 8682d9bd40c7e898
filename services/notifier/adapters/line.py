"""LINE Messaging API push: one request per message, made safe to retry by a retry key.

``X-Line-Retry-Key`` is a UUIDv5 of the notification id, so a resend of the same
notification after a crash (or a retry) carries the same key and LINE answers 409
instead of delivering twice. Retry only on 5xx / timeout and on a 429 for the *rate*
limit (LINE processed nothing, so the same key is safe; Retry-After honoured); never on
other 4xx. A 429 for the *message quota* ("You have reached your monthly limit", or
the target limit for additional messages) will not clear by retrying this month: it
is a permanent failure of the LINE channel, so the request falls back to its next
channel when it allows one, and operators see it (``kizuna_notifier_sends_total``
outcome ``permanent``, detail in the outcome).
"""

from __future__ import annotations

import hashlib
import uuid

import orjson

from schemas.channels import Channel
from services.notifier.adapters.http import HttpClient, HttpError
from services.notifier.adapters.messages import LineContent, Outbound, SendResult, retry_after
from services.notifier.domain.retry import Verdict

RETRY_KEY_NAMESPACE = uuid.UUID("6f1c1d0e-6b5e-5a52-9a77-6b697a756e61")
_NAMESPACE = RETRY_KEY_NAMESPACE.bytes


def retry_key(notification_id: str) -> str:
    """``str(uuid.uuid5(RETRY_KEY_NAMESPACE, notification_id))``, without the UUID objects."""
    name = _NAMESPACE + notification_id.encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


QUOTA_MESSAGES = ("monthly limit", "limit for additional messages", "message quota")


def classify(status: int, body: bytes = b"") -> Verdict:
    if 200 <= status < 300:
        return Verdict.ACCEPTED
    if status == 409:
        return Verdict.DUPLICATE
    if status == 429:
        text = body.decode(errors="replace").lower()
        quota = any(phrase in text for phrase in QUOTA_MESSAGES)
        return Verdict.PERMANENT if quota else Verdict.RETRYABLE
    if status >= 500:
        return Verdict.RETRYABLE
    return Verdict.PERMANENT


class LinePushProvider:
    channel = Channel.LINE

    def __init__(self, http: HttpClient, base_url: str, token: str, timeout_s: float) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + "/v2/bot/message/push"
        self._auth = f"Bearer {token}"
        self._timeout_s = timeout_s

    async def send(self, message: Outbound) -> SendResult:
        assert isinstance(message.content, LineContent)
        body = orjson.dumps({"to": message.address, "messages": message.content.messages})
        headers = {
            "Authorization": self._auth,
            "Content-Type": "application/json",
            "X-Line-Retry-Key": retry_key(message.notification_id),
        }
        try:
            response = await self._http.post(self._url, body, headers, self._timeout_s)
        except TimeoutError:
            return SendResult(Verdict.RETRYABLE, detail="line timeout")
        except HttpError as err:
            return SendResult(Verdict.RETRYABLE, detail=f"line {err}")
        answer = response.body
        return SendResult(
            classify(response.status, answer),
            detail=f"line {response.status} {answer[:200].decode(errors='replace')}",
            provider_message_id=response.headers.get("x-line-request-id"),
            retry_after_s=retry_after(response.headers.get("retry-after")),
        )
