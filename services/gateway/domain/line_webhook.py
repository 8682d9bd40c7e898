"""LINE Messaging API webhooks: signature check and follow / unfollow / accountLink events.

    {"destination": "U<bot>", "events": [{"type": "follow", "timestamp": 1763634600000,
      "source": {"type": "user", "userId": "U4af4…"}, "webhookEventId": "01J…"}]}
      -> LineFollowed(event_id="01J…", identifiers={line_user_id: "<provider>:U4af4…"})

``x-line-signature`` is base64(HMAC-SHA256(channel secret, raw body)), compared in
constant time. An accountLink's nonce names the member the site issued it for (looked up
by the caller and handed in); an unknown nonce still links, with the LINE id alone.
Other event types (message, postback, …) are acknowledged and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.events import (
    EventEnvelope,
    LineAccountLinked,
    LineFollowed,
    LineUnfollowed,
    RawEvent,
    Source,
)
from services.gateway.domain.segment_values import MappingError, object_at, required_id

_KINDS: dict[str, type[EventEnvelope]] = {
    "follow": LineFollowed,
    "unfollow": LineUnfollowed,
    "accountLink": LineAccountLinked,
}


def verify_signature(secret: bytes, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    expected = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode())


def sign(secret: bytes, body: bytes) -> str:
    """What LINE sends as ``x-line-signature`` (for tests and local tools)."""
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()


def webhook_events(document: Any) -> list[Any]:
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise MappingError("events", "a LINE webhook body has an 'events' list")
    return list(document["events"])


def link_nonces(events: list[Any]) -> list[str]:
    """Nonces of successful account links: the caller looks up their member ids."""
    return [
        str(e["link"]["nonce"])
        for e in events
        if isinstance(e, dict)
        and e.get("type") == "accountLink"
        and isinstance(e.get("link"), dict)
        and e["link"].get("nonce")
    ]


def map_event(
    raw: Any,
    *,
    channel_id: str,
    provider: str,
    received_at: datetime,
    members: dict[str, str],
) -> RawEvent | None:
    """One webhook event as a kizuna event; None for types kizuna does not track."""
    event = object_at(raw, "event")
    cls = _KINDS.get(str(event.get("type")))
    if cls is None:
        return None
    user_id = required_id(object_at(event.get("source"), "source").get("userId"), "source.userId")
    identifiers = {"line_user_id": f"{provider}:{user_id}"}
    payload: dict[str, Any] = {"channel_id": channel_id}
    if cls is LineAccountLinked:
        link = object_at(event.get("link"), "link")
        payload |= {"result": link.get("result"), "nonce": link.get("nonce")}
        member = members.get(str(link.get("nonce"))) if link.get("result") == "ok" else None
        if member is not None:
            identifiers["member_id"] = member
    envelope = {
        "event_id": required_id(event.get("webhookEventId"), "webhookEventId"),
        "occurred_at": _millis(event.get("timestamp")),
        "received_at": received_at,
        "source": Source.LINE,
        "identifiers": identifiers,
        "payload": payload,
    }
    try:
        return cls.model_validate(envelope)  # type: ignore[return-value]
    except ValidationError as err:
        raise MappingError.from_validation(err) from None


def _millis(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MappingError("timestamp", f"must be epoch milliseconds (got {value!r:.40})")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):  # beyond year 9999 or the platform's time_t
        raise MappingError("timestamp", f"out of range (got {value!r:.40})") from None
