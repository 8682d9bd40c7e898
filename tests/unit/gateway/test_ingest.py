"""A request is answered only after Kafka acknowledged its events, and only then are the
messageIds remembered: a failed produce can be retried, a repeated one is not produced."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from schemas.codec import decode
from schemas.deadletter import DeadLetter
from schemas.examples import EXAMPLES, example
from schemas.topics import DEADLETTER
from services.gateway.ingest import Ingest, Invalid, KafkaUnavailable, Record, routing_key

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)


class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.delivered: list[Record] = []
        self.log: list[str] = []

    async def deliver(self, records: Sequence[Record]) -> None:
        self.log.append("deliver")
        if self.fail:
            raise KafkaUnavailable("broker away")
        self.delivered.extend(records)


class FakeSeen:
    def __init__(self, log: list[str]) -> None:
        self.ids: set[str] = set()
        self.log = log

    async def already_seen(self, event_ids: Sequence[str]) -> set[str]:
        return self.ids & set(event_ids)

    async def mark_seen(self, event_ids: Sequence[str]) -> None:
        self.log.append("mark")
        self.ids.update(event_ids)


def make(fail: bool = False) -> tuple[Ingest, FakeSink, FakeSeen]:
    sink = FakeSink(fail)
    seen = FakeSeen(sink.log)
    return Ingest(sink, seen, "ns", clock=lambda: NOW), sink, seen


async def test_when_kafka_acknowledges_then_ids_are_remembered_after_delivery() -> None:
    ingest, sink, seen = make()
    events = [example("page_viewed", seed=1), example("order_completed", seed=2)]

    report = await ingest.submit([ingest.candidate(i, e) for i, e in enumerate(events)], [], "web")

    assert report.accepted == 2
    assert sink.log == ["deliver", "mark"]
    assert {r.topic for r in sink.delivered} == {"ns.raw.web", "ns.raw.order"}
    assert seen.ids == {e.event_id for e in events}


async def test_when_kafka_fails_then_the_request_fails_and_nothing_is_remembered() -> None:
    ingest, sink, seen = make(fail=True)
    event = example("page_viewed", seed=1)

    with pytest.raises(KafkaUnavailable):
        await ingest.submit([ingest.candidate(0, event)], [], "web")

    assert seen.ids == set()
    sink.fail = False
    report = await ingest.submit([ingest.candidate(0, event)], [], "web")
    assert report.accepted == 1
    assert len(sink.delivered) == 1


async def test_when_a_message_id_repeats_then_it_succeeds_without_a_second_produce() -> None:
    ingest, sink, _ = make()
    event = example("page_viewed", seed=1)
    await ingest.submit([ingest.candidate(0, event)], [], "web")

    again = await ingest.submit([ingest.candidate(0, event), ingest.candidate(1, event)], [], "web")

    assert (again.accepted, again.duplicates) == (0, 2)
    assert again.as_json()["success"] is True
    assert len(sink.delivered) == 1


async def test_when_events_are_invalid_then_they_are_dead_lettered_with_their_reason() -> None:
    ingest, sink, _ = make()
    bad = Invalid(3, "m-3", "invalid", "properties.total: must be whole yen", b'{"x":1}')

    report = await ingest.submit([ingest.candidate(0, example("page_viewed"))], [bad], "web")

    letters = [
        decode(DEADLETTER.adapter, r.value) for r in sink.delivered if r.topic == "ns.deadletter"
    ]
    assert len(letters) == 1
    assert isinstance(letters[0], DeadLetter)
    assert letters[0].original == b'{"x":1}'
    assert letters[0].key == b"m-3"
    assert report.as_json()["rejected"] == [
        {
            "index": 3,
            "messageId": "m-3",
            "reason": "invalid",
            "error": "properties.total: must be whole yen",
        }
    ]


async def test_when_every_event_is_invalid_then_the_report_is_not_a_success() -> None:
    ingest, _, _ = make()
    bad = Invalid(0, None, "invalid", "nope", b"{}")

    report = await ingest.submit([], [bad], "web")

    assert report.as_json()["success"] is False


def test_when_any_example_event_is_keyed_then_the_key_is_the_contracts_routing_key() -> None:
    for seed, kind in enumerate(EXAMPLES):
        event = example(kind, seed=seed)
        assert routing_key(event.identifiers) == event.identifiers.routing_key()
