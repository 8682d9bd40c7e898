"""FCM HTTP v1: ``POST {base}/v1/projects/{project}/messages:send`` with a bearer token.

FCM has no idempotency key; the notifier's Redis state machine is what keeps a send
from repeating. UNREGISTERED -> the token is dead (deleted by the caller);
INVALID_ARGUMENT -> permanent; 429 / 500 / 503 -> retry, honouring Retry-After; 401 ->
the access token is dropped and the send retried with a new one (``adapters/oauth.py``),
unless the token cannot be renewed (a static token: permanent).
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.channels import Channel
from services.notifier.adapters.http import HttpClient, HttpError
from services.notifier.adapters.messages import Outbound, PushContent, SendResult, retry_after
from services.notifier.adapters.oauth import TokenError, TokenProvider
from services.notifier.domain.retry import Verdict

MAX_PAYLOAD_BYTES = 4096


def classify(status: int, body: bytes) -> Verdict:
    if 200 <= status < 300:
        return Verdict.ACCEPTED
    code = _error_code(body)
    if status == 404 or code == "UNREGISTERED":
        return Verdict.GONE
    if status in (429, 500, 503) or status >= 500:
        return Verdict.RETRYABLE
    return Verdict.PERMANENT


def _error_code(body: bytes) -> str | None:
    try:
        error = orjson.loads(body).get("error", {})
        for detail in error.get("details", []):
            if "errorCode" in detail:
                return str(detail["errorCode"])
        return str(error.get("status")) if error.get("status") else None
    except (orjson.JSONDecodeError, AttributeError):
        return None


def fcm_message(message: Outbound, ttl_s: int) -> dict[str, Any]:
    assert isinstance(message.content, PushContent)
    content = message.content
    data = {"notification_id": message.notification_id}
    if content.link:
        data["link"] = content.link
    return {
        "message": {
            "token": message.address,
            "notification": {"title": content.title, "body": content.body},
            "data": data,
            "android": {"ttl": f"{ttl_s}s"},
            "apns": {"headers": {"apns-collapse-id": message.notification_id[:64]}},
        }
    }


class FcmProvider:
    channel = Channel.PUSH

    def __init__(
        self,
        http: HttpClient,
        base_url: str,
        project: str,
        tokens: TokenProvider,
        timeout_s: float,
        ttl_s: int = 86_400,
    ) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project}/messages:send"
        self._tokens = tokens
        self._timeout_s = timeout_s
        self._ttl_s = ttl_s

    async def send(self, message: Outbound) -> SendResult:
        body = orjson.dumps(fcm_message(message, self._ttl_s))
        if len(body) > MAX_PAYLOAD_BYTES:
            return SendResult(Verdict.PERMANENT, detail=f"payload {len(body)} bytes > 4096")
        try:
            token = await self._tokens.token()
        except TokenError as err:
            return SendResult(Verdict.RETRYABLE, detail=f"fcm oauth: {err}")
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=UTF-8",
        }
        try:
            response = await self._http.post(self._url, body, headers, self._timeout_s)
        except TimeoutError:
            return SendResult(Verdict.RETRYABLE, detail="fcm timeout")
        except HttpError as err:
            return SendResult(Verdict.RETRYABLE, detail=f"fcm {err}")
        raw = response.body
        verdict = classify(response.status, raw)
        if response.status == 401 and self._tokens.invalidate():
            verdict = Verdict.RETRYABLE  # the token expired or was revoked: a new one next
        try:
            name = orjson.loads(raw).get("name") if verdict is Verdict.ACCEPTED else None
        except (orjson.JSONDecodeError, AttributeError):
            return SendResult(Verdict.ACCEPTED, detail="fcm 200 without JSON body")
        return SendResult(
            verdict,
            detail=f"fcm {response.status} {raw[:200].decode(errors='replace')}",
            provider_message_id=name,
            retry_after_s=retry_after(response.headers.get("retry-after")),
        )
