"""LINE webhooks: only a body signed with the channel secret counts; follow, unfollow and
account links become kizuna events for the LINE user, namespaced by provider."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.events import LineAccountLinked, LineFollowed, LineUnfollowed
from services.gateway.domain.line_webhook import link_nonces, map_event, sign, verify_signature
from services.gateway.domain.segment_values import MappingError

SECRET = b"channel-secret"
USER = "U" + "4af4980629" * 3 + "ab"
NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)


def line_event(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "timestamp": 1763602200000,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": "01JDWEBHOOK0000000000000001",
        "mode": "active",
    } | extra


def mapped(raw: Any, members: dict[str, str] | None = None) -> Any:
    return map_event(
        raw, channel_id="Ubot", provider="shop", received_at=NOW, members=members or {}
    )


def test_when_the_body_is_signed_with_the_secret_then_the_signature_verifies() -> None:
    body = b'{"destination":"Ubot","events":[]}'

    assert verify_signature(SECRET, body, sign(SECRET, body))
    assert not verify_signature(SECRET, body + b" ", sign(SECRET, body))
    assert not verify_signature(b"other", body, sign(SECRET, body))
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "")


def test_when_a_user_follows_or_unfollows_then_the_line_id_is_namespaced() -> None:
    followed = mapped(line_event("follow"))
    unfollowed = mapped(line_event("unfollow"))

    assert isinstance(followed, LineFollowed)
    assert isinstance(unfollowed, LineUnfollowed)
    assert followed.identifiers.line_user_id == f"shop:{USER}"
    assert followed.event_id == "01JDWEBHOOK0000000000000001"
    assert followed.occurred_at == datetime(2025, 11, 20, 1, 30, tzinfo=UTC)
    assert followed.payload.channel_id == "Ubot"


def test_when_an_account_link_has_a_known_nonce_then_the_member_is_linked() -> None:
    raw = line_event("accountLink", link={"result": "ok", "nonce": "n-123"})

    event = mapped(raw, {"n-123": "M42"})

    assert link_nonces([raw]) == ["n-123"]
    assert isinstance(event, LineAccountLinked)
    assert event.identifiers.member_id == "M42"
    assert event.payload.result == "ok"


def test_when_an_account_link_nonce_is_unknown_then_the_link_carries_the_line_id_only() -> None:
    event = mapped(line_event("accountLink", link={"result": "ok", "nonce": "n-9"}))

    assert isinstance(event, LineAccountLinked)
    assert event.identifiers.member_id is None
    assert event.identifiers.line_user_id == f"shop:{USER}"


def test_when_a_message_event_arrives_then_it_is_ignored() -> None:
    assert mapped(line_event("message", message={"type": "text", "text": "hi"})) is None


def test_when_a_follow_has_no_user_then_it_is_rejected() -> None:
    with pytest.raises(MappingError, match=r"source\.userId: is required"):
        mapped(line_event("follow", source={"type": "group", "groupId": "C1"}))
