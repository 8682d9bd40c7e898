"""Events that only move last_seen: read for their time alone, with the same result as
reading them whole; anything the narrow reading cannot vouch for is decoded in full."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from runtime.intake import decode_batch_narrow
from schemas.codec import encode
from schemas.customer import (
    CustomerEvent,
    routing_headers,
)
from schemas.events import RAW_EVENT_TYPES, event_type_name
from schemas.examples import example
from schemas.topics import CUSTOMER_EVENTS
from services.segmenter.domain.facts import EMPTY, FACT_TYPES, Facts, Seen, apply_event
from services.segmenter.domain.handlers import Forward, on_event
from services.segmenter.domain.standing import CustomerState, Policy
from services.segmenter.messages import (
    CONTROL_ADAPTER,
    SEEN_ONLY,
    SEEN_TYPES,
    SeenCustomerEvent,
    SeenForwarded,
    SeenRouted,
)
from tests.unit.runtime.test_intake import CollectingSink, FakeEvent, FakeMessage
from tests.unit.segmenter.builders import on_day, order, ts

ALL_TYPES = sorted(event_type_name(cls) for cls in RAW_EVENT_TYPES)
RESOLVED = datetime(2026, 11, 20, tzinfo=UTC)


def as_customer_event(kind: str, customer_id: str = "c-1") -> bytes:
    event = example(kind)
    return encode(
        CustomerEvent(
            customer_id=customer_id, identity_version=1, resolved_at=RESOLVED, event=event
        )
    )


def test_every_event_type_is_either_a_fact_or_only_seen() -> None:
    assert set(ALL_TYPES) == SEEN_TYPES | FACT_TYPES
    assert not SEEN_TYPES & FACT_TYPES


@pytest.mark.parametrize("kind", sorted(SEEN_TYPES))
@pytest.mark.parametrize(
    "before",
    [EMPTY, Facts({}, last_seen=0), Facts({}, last_seen=4_000_000_000)],
    ids=["new", "seen long ago", "seen later"],
)
def test_when_an_event_only_moves_last_seen_then_its_time_alone_gives_the_same_facts(
    kind: str, before: Facts
) -> None:
    event = example(kind)

    whole = apply_event(before, event)
    alone = apply_event(before, Seen(event.event_id, int(event.occurred_at.timestamp())))

    assert alone == whole
    assert (alone is before) == (whole is before)


@pytest.mark.parametrize("kind", sorted(FACT_TYPES - {"identified", "profile_updated"}))
def test_when_an_event_is_a_fact_then_its_time_alone_would_lose_it(kind: str) -> None:
    event = example(kind)

    whole = apply_event(EMPTY, event)

    assert whole.orders != EMPTY.orders
    assert apply_event(EMPTY, Seen(event.event_id, 0)).orders == EMPTY.orders


async def test_when_a_batch_mixes_types_then_seen_ones_are_read_narrowly_and_facts_in_full() -> (
    None
):
    raw = [as_customer_event("page_viewed"), as_customer_event("order_completed")]
    raw.append(as_customer_event("app_opened"))
    events = [FakeEvent(FakeMessage(value, offset=i)) for i, value in enumerate(raw)]
    sink = CollectingSink()

    got = await decode_batch_narrow(
        events, SEEN_ONLY, CUSTOMER_EVENTS.adapter, sink, service="svc", max_bytes=100_000
    )

    assert [type(g.value).__name__ for g in got] == [
        "SeenCustomerEvent",
        "CustomerEvent",
        "SeenCustomerEvent",
    ]
    assert [g.offset for g in got] == [0, 1, 2]
    page = got[0].value
    assert isinstance(page, SeenCustomerEvent)
    expected = example("page_viewed")
    assert page.seen() == Seen(expected.event_id, int(expected.occurred_at.timestamp()))
    assert sink.letters == []


async def test_when_a_narrow_field_is_bad_then_the_full_decoder_dead_letters_it() -> None:
    good = as_customer_event("page_viewed")
    data = orjson.loads(good)
    data["event"]["occurred_at"] = "1970-01-01T00:00:00Z"  # a sender's zero value
    unknown = orjson.loads(good)
    unknown["event"]["type"] = "page_teleported"
    values = [orjson.dumps(data), orjson.dumps(unknown), b"{oops", good + b" " * 100]
    events = [FakeEvent(FakeMessage(value, offset=i)) for i, value in enumerate(values)]
    sink = CollectingSink()

    got = await decode_batch_narrow(
        events, SEEN_ONLY, CUSTOMER_EVENTS.adapter, sink, service="svc", max_bytes=len(good) + 10
    )

    assert got == []
    assert [(letter.reason, letter.source_offset) for letter in sink.letters] == [
        ("invalid", 0),
        ("unknown_type", 1),
        ("undecodable", 2),
        ("too_large", 3),
    ]
    assert "occurred_at" in sink.letters[0].error


def test_when_an_absorbed_customer_is_seen_then_the_survivor_gets_a_seen_forwarded() -> None:
    tombstone = CustomerState("pos-card-7", absorbed_into="member-1", survivor_partition=3)
    seen = Seen("evt-1", ts(on_day(5)))

    outcome = on_event(tombstone, "pos-card-7", seen, ts(on_day(5)), Policy())

    assert outcome.commands == (Forward("member-1", 3, seen),)
    message = SeenForwarded(
        customer_id="member-1", event_id="evt-1", at=datetime.fromtimestamp(seen.at, UTC)
    )
    assert CONTROL_ADAPTER.validate_json(encode(message)) == message


def test_when_a_survivor_is_seen_then_her_orders_stay_and_last_seen_moves() -> None:
    state = CustomerState("member-1", apply_event(EMPTY, order("o1", 1_000, on_day(1))))

    outcome = on_event(state, "member-1", Seen("evt-2", ts(on_day(3))), ts(on_day(3)), Policy())

    assert outcome.state is not None
    assert outcome.state.facts.orders == state.facts.orders
    assert outcome.state.facts.last_seen == ts(on_day(3))


async def _narrow(events: list[FakeEvent], sink: CollectingSink | None = None) -> list[Any]:
    """The segmenter's reading of customer events (headers, narrow model, full)."""
    return await decode_batch_narrow(
        events,
        SEEN_ONLY,
        CUSTOMER_EVENTS.adapter,
        CollectingSink() if sink is None else sink,
        service="svc",
        max_bytes=100_000,
    )


def _routed(kind: str, customer_id: str = "c-1") -> FakeEvent:
    """A customer event as identity writes it: keyed by customer, routing headers on."""
    return FakeEvent(
        FakeMessage(
            as_customer_event(kind, customer_id),
            key=customer_id.encode(),
            headers=routing_headers(example(kind)),
        )
    )


@pytest.mark.parametrize("kind", sorted(SEEN_TYPES))
async def test_when_a_seen_event_has_routing_headers_then_they_alone_give_what_its_body_would(
    kind: str,
) -> None:
    routed, plain = _routed(kind), FakeEvent(FakeMessage(as_customer_event(kind)))
    sink = CollectingSink()

    by_headers = await _narrow([routed], sink)
    by_body = await _narrow([plain], sink)

    header_value, body_value = by_headers[0].value, by_body[0].value
    assert isinstance(header_value, SeenRouted)
    assert isinstance(body_value, SeenCustomerEvent)
    assert header_value == SeenRouted(body_value.customer_id, body_value.seen())
    assert sink.letters == []


@pytest.mark.parametrize("kind", sorted(FACT_TYPES))
async def test_when_a_fact_has_routing_headers_then_it_is_still_read_in_full(kind: str) -> None:
    got = await _narrow([_routed(kind)])

    assert isinstance(got[0].value, CustomerEvent)
    assert got[0].value.event == example(kind)


def _with(headers: list[tuple[str, Any]], field: str, value: Any) -> list[tuple[str, Any]]:
    """The routing header with one of its fields (type, id, time) replaced; "drop": no
    routing header at all; None: the header without a value."""
    ((name, routing),) = headers
    if value == "drop":
        return []
    if value is None:
        return [(name, None)]
    fields = dict(zip(("type", "id", "time"), routing.split(b" "), strict=True))
    return [(name, b" ".join({**fields, field: value}.values()))]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time", b"2026-11-20T10:30:01+00:00"),  # not epoch microseconds
        ("time", b"0"),  # a sender's zero value
        ("time", b"yesterday"),
        ("time", b""),
        ("time", None),
        ("id", b"evt 1"),  # whitespace: not an Id
        ("id", b"e" * 129),
        ("id", b"\xff\xfe"),  # not UTF-8
        ("type", "drop"),
    ],
)
async def test_when_routing_headers_are_missing_or_bad_then_the_body_is_read(
    field: str, value: Any
) -> None:
    event = _routed("page_viewed")
    event.message.headers = _with(event.message.headers, field, value)

    got = await _narrow([event])

    assert isinstance(got[0].value, SeenCustomerEvent)


@pytest.mark.parametrize("key", [None, b"", b"c 1", b"\xff"])
async def test_when_the_key_is_no_customer_id_then_the_body_is_read(key: bytes | None) -> None:
    event = _routed("page_viewed")
    event.message.key = key

    got = await _narrow([event])

    assert isinstance(got[0].value, SeenCustomerEvent)


async def test_when_the_headers_say_fact_then_the_body_is_decoded_in_full_and_counts() -> None:
    event = _routed("page_viewed")
    event.message.headers = _with(event.message.headers, "type", b"order_completed")

    got = await _narrow([event])

    assert isinstance(got[0].value, CustomerEvent)
    assert got[0].value.event == example("page_viewed")
