"""The raw event contract: every kind round-trips, bad input names the bad field."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from schemas.codec import DecodeError, decode, encode
from schemas.events import RAW_EVENT_ADAPTER, RAW_EVENT_TYPES, event_type_name
from schemas.examples import EXAMPLES, example, example_stream


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_when_an_event_is_encoded_and_decoded_then_it_is_equal(kind: str) -> None:
    event = example(kind)

    assert decode(RAW_EVENT_ADAPTER, encode(event)) == event


def test_when_every_model_is_listed_then_every_kind_has_an_example() -> None:
    assert sorted(event_type_name(cls) for cls in RAW_EVENT_TYPES) == sorted(EXAMPLES)


def test_when_a_mixed_stream_round_trips_then_nothing_changes() -> None:
    events = list(example_stream(500, seed=7))

    assert [decode(RAW_EVENT_ADAPTER, encode(e)) for e in events] == events
    assert len({e.type for e in events}) >= 12


def _mutated(kind: str, path: list[str], value: object) -> bytes:
    document = orjson.loads(encode(example(kind)))
    target = document
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return orjson.dumps(document)


_DELETE = object()


@pytest.mark.parametrize(
    ("kind", "path", "value", "field", "message"),
    [
        ("order_completed", ["payload", "order_id"], _DELETE, "payload.order_id", "Field required"),
        (
            "order_completed",
            ["payload", "money", "total"],
            1980.5,
            "payload.money.total",
            "valid integer",
        ),
        (
            "order_completed",
            ["payload", "money", "total"],
            "1980",
            "payload.money.total",
            "valid integer",
        ),
        (
            "order_completed",
            ["payload", "money", "total"],
            -1,
            "payload.money.total",
            "greater than or equal to 0",
        ),
        ("page_viewed", ["occurred_at"], "2026-11-20T10:30:00", "occurred_at", "timezone"),
        ("page_viewed", ["event_id"], "", "event_id", "at least 1 character"),
        ("page_viewed", ["identifiers"], {}, "identifiers", "at least one identifier"),
        ("page_viewed", ["payload", "colour"], "red", "payload.colour", "Extra inputs"),
        (
            "location_reported",
            ["payload", "latitude"],
            123.0,
            "payload.latitude",
            "less than or equal to 90",
        ),
        ("consent_granted", ["payload", "channel"], "fax", "payload.channel", "'email'"),
        ("pos_purchased", ["payload", "items"], [], "payload.items", "at least 1 item"),
        (
            "order_completed",
            ["identifiers", "mall_customer_id"],
            "12345",
            "identifiers.mall_customer_id",
            "pattern",
        ),
    ],
)
def test_when_a_field_is_wrong_then_the_error_names_it(
    kind: str, path: list[str], value: object, field: str, message: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(RAW_EVENT_ADAPTER, _mutated(kind, path, value))

    assert caught.value.reason == "invalid"
    line = next((ln for ln in caught.value.detail.splitlines() if f"{kind}.{field}" in ln), None)
    assert line is not None, caught.value.detail
    assert message in line


def test_when_the_type_is_unknown_then_the_reason_is_unknown_type() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(RAW_EVENT_ADAPTER, b'{"type": "coupon_printed"}')

    assert caught.value.reason == "unknown_type"
    assert "coupon_printed" in caught.value.detail


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe\x00", b"[1, 2", b"null"])
def test_when_bytes_are_not_a_json_object_then_the_reason_is_clear(raw: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(RAW_EVENT_ADAPTER, raw)

    assert caught.value.reason in {"undecodable", "invalid"}
    assert caught.value.detail


def test_when_a_message_is_too_large_then_it_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(RAW_EVENT_ADAPTER, b" " * 2_000, max_bytes=1_000)

    assert caught.value.reason == "too_large"
    assert "2000 bytes" in caught.value.detail


def test_when_an_event_is_built_with_a_naive_datetime_then_it_is_refused() -> None:
    event = example("page_viewed")
    data = event.model_dump()
    data["occurred_at"] = datetime(2026, 11, 20, 10, 30)  # noqa: DTZ001 - the point of the test

    with pytest.raises(ValueError, match="timezone"):
        type(event).model_validate(data)


def test_when_an_event_is_frozen_then_it_cannot_be_changed() -> None:
    event = example("page_viewed")

    with pytest.raises(ValueError, match="frozen"):
        event.event_id = "other"  # type: ignore[misc]


def test_when_a_line_amount_exceeds_quantity_times_price_then_it_is_refused() -> None:
    document = orjson.loads(encode(example("order_completed")))
    document["payload"]["items"][0]["amount"] = 10**9

    with pytest.raises(DecodeError, match="amount exceeds"):
        decode(RAW_EVENT_ADAPTER, orjson.dumps(document))
