"""The journey reads of a customer event only what its engine uses (type, id, time,
payload): for every event type that is what the whole event says, the engine decides
the same on it, a bad used field is still refused, and a forwarded event (old or new)
reads back the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas.codec import encode
from schemas.customer import CustomerEvent
from schemas.events import RAW_EVENT_TYPES, event_type_name
from schemas.examples import example, example_stream
from schemas.topics import CUSTOMER_EVENTS
from services.journey.adapters.codec import encode as encode_row
from services.journey.adapters.scenarios import load_stores
from services.journey.domain import engine
from services.journey.domain.catalogue import Catalogue, Context
from services.journey.domain.policy import Policy
from services.journey.messages import (
    CONTROL_ADAPTER,
    USED_CUSTOMER_EVENT,
    EventForwarded,
    UsedFields,
)
from tests.unit.journey.builders import SHIPPED, shipped

ALL_TYPES = sorted(event_type_name(cls) for cls in RAW_EVENT_TYPES)
AT = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)


def _customer_event(event: Any, customer_id: str = "c-1") -> bytes:
    return encode(
        CustomerEvent(customer_id=customer_id, identity_version=3, resolved_at=AT, event=event)
    )


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_when_a_customer_event_is_read_then_the_used_fields_are_what_the_whole_event_says(
    kind: str,
) -> None:
    event = example(kind)

    used = USED_CUSTOMER_EVENT.validate_json(_customer_event(event))

    assert isinstance(used.event, UsedFields)
    assert used.customer_id == "c-1"
    assert (used.event.type, used.event.event_id, used.event.occurred_at) == (
        event.type,
        event.event_id,
        event.occurred_at,
    )
    assert used.event.payload == event.payload
    assert not hasattr(used.event, "identifiers")  # not read: not built


def _replace(raw: bytes, path: tuple[str, ...], value: Any) -> bytes:
    document = orjson.loads(raw)
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return orjson.dumps(document)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("event", "occurred_at"), "yesterday"),
        (("event", "occurred_at"), "2026-11-20T10:30:00"),  # no zone
        (("event", "event_id"), "evt 1"),
        (("event", "type"), "teleported"),
        (("event", "payload", "cart_id"), None),
        (("event", "payload", "quantity"), 0),
        (("customer_id",), ""),
    ],
)
def test_when_a_used_field_is_invalid_then_the_event_is_refused(
    path: tuple[str, ...], value: Any
) -> None:
    raw = _replace(_customer_event(example("product_added")), path, value)

    with pytest.raises(ValidationError):
        USED_CUSTOMER_EVENT.validate_json(raw)
    with pytest.raises(ValidationError):  # as the whole event's decoder refuses it
        CUSTOMER_EVENTS.adapter.validate_json(raw)


def test_when_a_field_the_journey_does_not_use_is_bad_then_it_is_not_the_journeys_concern() -> None:
    """identity validated the identifiers before it wrote the event (and dead-letters
    them); the journey neither reads nor checks them again."""
    raw = _replace(_customer_event(example("product_added")), ("event", "identifiers"), {})

    with pytest.raises(ValidationError):
        CUSTOMER_EVENTS.adapter.validate_json(raw)
    assert USED_CUSTOMER_EVENT.validate_json(raw).event.type == "product_added"


def test_when_the_engine_runs_on_the_used_fields_then_it_decides_as_on_whole_events() -> None:
    """A realistic stream of every kind through the shipped scenarios, twice: the rows
    and outputs are the same whether the engine got whole events or what the journey
    reads of them."""
    ctx = Context.of(
        Catalogue.of(list(shipped().values())), Policy(), load_stores(SHIPPED / "stores.yaml")
    )
    whole: dict[str, Any] = {}
    used: dict[str, Any] = {}
    outputs: tuple[list[Any], list[Any]] = ([], [])
    events = list(example_stream(3_000, seed=11))
    start = datetime(2030, 6, 3, 1, 0, tzinfo=UTC)  # 10:00 JST: no quiet hours
    for n, event in enumerate(events):
        at = start + timedelta(minutes=n)
        event = event.model_copy(update={"occurred_at": at})
        customer = f"c{n % 97}"
        read = USED_CUSTOMER_EVENT.validate_json(_customer_event(event, customer)).event
        for states, got, out in ((whole, event, outputs[0]), (used, read, outputs[1])):
            result = engine.on_event(states.get(customer), customer, got, at.timestamp(), ctx)
            states[customer] = result.state
            out.extend(result.outputs)

    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 100  # entries, sends, exits: the engine had work to do
    assert {c: encode_row(s, 0) for c, s in whole.items()} == {
        c: encode_row(s, 0) for c, s in used.items()
    }


def test_when_an_event_is_forwarded_then_it_reads_back_and_an_older_whole_one_reads_the_same() -> (
    None
):
    event = example("product_added")
    read = USED_CUSTOMER_EVENT.validate_json(_customer_event(event)).event

    forwarded = EventForwarded(customer_id="member-1", event=read)
    older = b'{"type":"forwarded","customer_id":"member-1","event":' + encode(event) + b"}"

    assert CONTROL_ADAPTER.validate_json(encode(forwarded)) == forwarded
    assert CONTROL_ADAPTER.validate_json(older) == forwarded
    assert EventForwarded(customer_id="member-1", event=event) == forwarded  # a whole one
