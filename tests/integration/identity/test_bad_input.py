"""Given the identity worker: bad bytes and events with no usable identifier are
dead-lettered with the reason; the good events around them still resolve."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Consumer, Producer

from runtime.settings import Settings
from schemas.codec import decode
from schemas.topics import DEADLETTER, RAW_ORDER, RAW_WEB
from tests.integration.conftest import Worker, consume
from tests.integration.identity.conftest import raw


def test_when_raw_input_is_bad_then_identity_dead_letters_it_and_goes_on(
    settings: Settings,
    topics,
    send,
    producer: Producer,
    customer_events,
    consumer_factory: Callable[..., Consumer],
    worker_factory: Callable[[str], Worker],
) -> None:
    worker_factory("services.identity")
    producer.produce(RAW_WEB.name(settings.namespace), key=b"k", value=b"{broken")
    producer.produce(
        RAW_ORDER.name(settings.namespace), key=b"k", value=b'{"type": "order_completed"}'
    )
    send(
        raw("page_viewed", "junk-ids", 0, anonymous_id="undefined", member_id="0000"),
        raw("page_viewed", "good", 1, anonymous_id="cookie-1"),
    )

    letters = [
        decode(DEADLETTER.adapter, m.value())
        for m in consume(consumer_factory(DEADLETTER.name(settings.namespace)), 3)
    ]

    assert customer_events(1).keys() == {"good"}
    assert sorted(letter.reason for letter in letters) == ["invalid", "rejected", "undecodable"]
    rejected = next(letter for letter in letters if letter.reason == "rejected")
    assert "no usable identifier" in rejected.error
    assert "blocked" in rejected.error
    assert all(letter.service == "identity" and letter.source_topic for letter in letters)
