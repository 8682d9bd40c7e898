"""The journey's customer-events handler reads valid events inline and hands a bad one
to the decoder, which dead-letters it with its reason; every event it read is counted as
consumed, once per batch, and the rest of the batch is handled."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import REGISTRY

from runtime.consumer import Record
from schemas.codec import encode
from schemas.customer import CustomerEvent
from services.journey.app import SERVICE, Handlers
from tests.unit.journey.builders import HOUR, Recorder, added
from tests.unit.journey.test_units import AT, processor

TOPIC = "handlers-test.customer.events"


class Letters:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, letter: Any) -> None:
        self.sent.append(letter)


def _record(offset: int, value: bytes) -> Record:
    return Record(TOPIC, 2, offset, b"c1", value)


def _consumed() -> float:
    labels = {"service": SERVICE, "topic": TOPIC}
    return REGISTRY.get_sample_value("kizuna_messages_consumed_total", labels) or 0.0


async def test_when_a_batch_holds_a_bad_event_then_it_alone_is_dead_lettered() -> None:
    letters = Letters()
    journeys = processor(Recorder())
    handle = Handlers(journeys, letters, 1_000_000).customer_events
    good = [
        encode(
            CustomerEvent(
                customer_id=c,
                identity_version=1,
                resolved_at=added(AT).occurred_at,
                event=added(AT + n * HOUR, cart_id=f"cart-{c}"),
            )
        )
        for n, c in enumerate(("c1", "c2"))
    ]
    bad = orjson.loads(good[0])
    bad["event"]["occurred_at"] = "not a time"
    before = _consumed()

    await handle([_record(0, good[0]), _record(1, orjson.dumps(bad)), _record(2, good[1])])

    assert [letter.source_offset for letter in letters.sent] == [1]
    assert letters.sent[0].reason == "invalid"
    assert sorted(journeys.table) == [b"c1", b"c2"]  # both entered the cart journey
    assert _consumed() - before == 3
