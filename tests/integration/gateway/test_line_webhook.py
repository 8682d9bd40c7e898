"""The LINE webhook: a signed body becomes kizuna events (an account link finds the member
by the nonce the site issued); an unsigned or mis-signed body is refused, nothing produced."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from confluent_kafka import Consumer

from runtime.settings import Settings
from schemas.events import LineAccountLinked, LineFollowed
from schemas.topics import RAW_LINE
from services.gateway.domain.line_webhook import sign
from tests.integration.gateway.conftest import (
    LINE_SECRET,
    WEB_KEY,
    ClientFactory,
    basic,
    drain,
    events_of,
)

USER = "U" + "0123456789abcdef" * 2


def webhook(*events: dict[str, object]) -> bytes:
    return orjson.dumps({"destination": "Ubot0001", "events": list(events)})


def line_event(kind: str, event_id: str, **extra: object) -> dict[str, object]:
    return {
        "type": kind,
        "timestamp": 1763602200000,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": event_id,
    } | extra


async def test_when_the_webhook_is_signed_then_follow_and_account_link_are_produced(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    gateway_factory: ClientFactory,
) -> None:
    client = await gateway_factory()
    issued = await client.post(
        "/v1/line/link-nonce", json={"member_id": "M42"}, headers=basic(WEB_KEY)
    )
    nonce = (await issued.json())["nonce"]
    body = webhook(
        line_event("follow", "01JWEBHOOKFOLLOW0000000001"),
        line_event("message", "01JWEBHOOKMESSAGE000000001", message={"type": "text"}),
        line_event(
            "accountLink", "01JWEBHOOKLINK00000000001", link={"result": "ok", "nonce": nonce}
        ),
    )

    forged = webhook(line_event("unfollow", "01JWEBHOOKFORGED000000001"))

    unsigned = await client.post("/v1/line/webhook", data=forged)
    missigned = await client.post(
        "/v1/line/webhook", data=forged, headers={"x-line-signature": sign(b"wrong", forged)}
    )
    signed = await client.post(
        "/v1/line/webhook",
        data=body,
        headers={"x-line-signature": sign(LINE_SECRET.encode(), body)},
    )

    assert (unsigned.status, missigned.status) == (401, 401)
    assert signed.status == 200, await signed.text()
    assert (await signed.json())["accepted"] == 2
    produced = events_of(drain(consumer_factory(RAW_LINE.name(settings.namespace)), 2))
    assert len(produced) == 2
    followed, linked = _ordered(produced)
    assert isinstance(followed, LineFollowed)
    assert followed.identifiers.line_user_id == f"shop:{USER}"
    assert isinstance(linked, LineAccountLinked)
    assert linked.identifiers.member_id == "M42"


def _ordered(events: list[object]) -> tuple[object, object]:
    followed = next(e for e in events if isinstance(e, LineFollowed))
    linked = next(e for e in events if isinstance(e, LineAccountLinked))
    return followed, linked
