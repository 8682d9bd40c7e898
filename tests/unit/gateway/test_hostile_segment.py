"""Whatever a Segment SDK, a broken tag or an attacker sends, each call is either a valid
kizuna event that every worker downstream can read back, or one clear error naming the
field: the mapping never crashes, and never accepts what identity would then dead-letter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import decode, encode
from schemas.events import RAW_EVENT_ADAPTER, CustomTracked, Identified, OrderCompleted, Source
from services.gateway.domain.segment_mapping import map_message
from services.gateway.domain.segment_values import MAX_NESTING, MappingError
from services.gateway.handlers import segment_messages
from services.gateway.http_edge import Refused, parse_json
from services.gateway.ingest import original_bytes
from tests.hostile import (
    NEGATIVE_AMOUNTS,
    SHIFT_JIS_BYTES,
    TEMPLATE_INJECTIONS,
    ZERO_AND_FAR_TIMES,
    hostile_text,
    hostile_value,
    json_values,
    mutated,
    nested,
)

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
REASONS = {"invalid", "unknown_type", "too_large"}

ORDER: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "messageId": "m-order",
    "userId": "M1",
    "anonymousId": "anon-1",
    "timestamp": "2026-11-20T10:29:00+09:00",
    "context": {"page": {"url": "https://shop.example.jp/"}, "device": {"id": "d-1"}},
    "properties": {
        "order_id": "o-1",
        "total": 2160,
        "discount": 0,
        "shipping": 0,
        "currency": "JPY",
        "products": [{"product_id": "tea-001", "name": "煎茶", "price": 1080, "quantity": 2}],
    },
}
IDENTIFY: dict[str, Any] = {
    "type": "identify",
    "messageId": "m-identify",
    "userId": "M1",
    "traits": {"email": "hanako@example.jp", "name": "山田 花子", "gender": "女性"},
}
CALLS = [
    ORDER,
    IDENTIFY,
    {"type": "page", "messageId": "m-page", "anonymousId": "a", "properties": {"url": "https://x"}},
    {"type": "alias", "messageId": "m-alias", "previousId": "anon-1", "userId": "M1"},
    {
        "type": "track",
        "event": "Product Added",
        "messageId": "m-add",
        "anonymousId": "a",
        "properties": {"cart_id": "c1", "product_id": "p1", "price": 990, "quantity": 1},
    },
]


def outcome(message: Any) -> Any:
    """The event, or the MappingError; any other exception fails the test."""
    try:
        return map_message(message, Source.WEB, NOW)
    except MappingError as err:
        return err


def assert_clear_error_or_readable_event(result: Any) -> None:
    if isinstance(result, MappingError):
        assert result.reason in REASONS
        assert ": " in str(result)  # 'field: problem'
        return
    assert decode(RAW_EVENT_ADAPTER, encode(result)) == result


def broken_calls() -> st.SearchStrategy[Any]:
    """Valid calls with hostile values anywhere; with text only, many still map."""
    return st.sampled_from(CALLS).flatmap(
        lambda call: st.one_of(mutated(call), mutated(call, hostile_text))
    )


@settings(max_examples=300, deadline=None)
@given(broken_calls())
def test_when_a_valid_call_is_broken_anywhere_then_it_is_an_event_or_a_named_error(
    message: Any,
) -> None:
    assert_clear_error_or_readable_event(outcome(message))


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_when_any_json_value_arrives_as_a_call_then_it_is_an_event_or_a_named_error(
    message: Any,
) -> None:
    assert_clear_error_or_readable_event(outcome(message))


@settings(max_examples=150, deadline=None)
@given(hostile_value, st.sampled_from(["track", None]))
def test_when_a_request_body_has_any_shape_then_it_is_split_into_calls_or_refused_with_4xx(
    document: Any, kind: str | None
) -> None:
    try:
        result: list[Any] | Refused = segment_messages(document, kind, max_events=100)
    except Refused as refused:
        result = refused

    if isinstance(result, Refused):
        assert result.status in {400, 413}
        assert result.message
    else:
        assert len(result) >= 1
        assert all(original_bytes(call) for call in result)  # a dead letter can keep each


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 199, 500, 1000])
def test_when_a_call_is_nested_deeper_than_workers_can_parse_then_it_is_refused_here(
    depth: int,
) -> None:
    message = ORDER | {"properties": ORDER["properties"] | {"extra": nested(depth)}}

    result = outcome(message)

    assert isinstance(result, MappingError)
    assert str(result) == f"(event): is nested deeper than {MAX_NESTING} levels"
    assert original_bytes(message)  # the dead letter still gets something to keep


def test_when_custom_properties_are_nested_within_the_limit_then_they_are_kept() -> None:
    custom = {**ORDER, "event": "Coupon Applied", "properties": {"deep": nested(MAX_NESTING - 3)}}

    event = outcome(custom)

    assert isinstance(event, CustomTracked)
    assert decode(RAW_EVENT_ADAPTER, encode(event)) == event


@pytest.mark.parametrize("amount", NEGATIVE_AMOUNTS)
@pytest.mark.parametrize("field", ["total", "discount", "shipping"])
def test_when_an_order_has_a_negative_amount_then_it_is_rejected_naming_the_field(
    field: str, amount: float
) -> None:
    message = ORDER | {"properties": ORDER["properties"] | {field: amount}}

    result = outcome(message)

    assert isinstance(result, MappingError)
    assert field in str(result)


def test_when_a_product_price_or_quantity_is_negative_then_the_order_is_rejected() -> None:
    for key, value in (("price", -1080), ("quantity", -2), ("quantity", 0)):
        product = ORDER["properties"]["products"][0] | {key: value}
        message = ORDER | {"properties": ORDER["properties"] | {"products": [product]}}

        result = outcome(message)

        assert isinstance(result, MappingError), (key, value)
        assert "products" in str(result) or key in str(result)


@pytest.mark.parametrize("timestamp", ZERO_AND_FAR_TIMES)
def test_when_the_timestamp_is_a_zero_value_far_off_or_not_a_time_then_it_is_rejected(
    timestamp: str,
) -> None:
    result = outcome(ORDER | {"timestamp": timestamp})

    assert isinstance(result, MappingError)
    assert str(result).startswith("timestamp: ")


@pytest.mark.parametrize("timestamp", [10**20, -(10**15), 253402300800])
def test_when_the_timestamp_is_a_number_out_of_range_then_it_is_rejected(timestamp: int) -> None:
    result = outcome(ORDER | {"timestamp": timestamp})

    assert isinstance(result, MappingError)
    assert str(result).startswith("timestamp: ")


@pytest.mark.parametrize("injection", TEMPLATE_INJECTIONS)
def test_when_names_hold_template_syntax_then_they_are_stored_literally(injection: str) -> None:
    product = ORDER["properties"]["products"][0] | {"name": injection}
    order = outcome(ORDER | {"properties": ORDER["properties"] | {"products": [product]}})
    identify = outcome(IDENTIFY | {"traits": IDENTIFY["traits"] | {"name": injection}})

    assert isinstance(order, OrderCompleted)
    assert order.payload.items[0].product.name == injection
    assert isinstance(identify, Identified)
    assert identify.payload.traits.name == injection


def test_when_a_product_name_is_a_megabyte_then_the_error_names_the_field() -> None:
    product = ORDER["properties"]["products"][0] | {"name": "茶" * 1_000_000}

    result = outcome(ORDER | {"properties": ORDER["properties"] | {"products": [product]}})

    assert isinstance(result, MappingError)
    assert "properties.products[0].name" in str(result) or "name" in str(result)
    assert len(str(result)) < 2_000  # the error quotes the value, but never all of it


@pytest.mark.parametrize(
    "body",
    [
        orjson.dumps({"batch": [ORDER]}).replace("煎茶".encode(), "煎茶".encode("cp932")),
        b'{"batch": [{"type": "page", "name": "\xff\xfe"}]}',
        SHIFT_JIS_BYTES,
        b'{"a": "\\ud800"}',
        b"[" * 2_000 + b"]" * 2_000,
        b"NaN",
        b'{"a": 1e400}',
    ],
)
def test_when_the_body_is_not_valid_utf8_json_then_it_is_refused_with_400(body: bytes) -> None:
    with pytest.raises(Refused) as refused:
        parse_json(body)

    assert refused.value.status == 400
    assert refused.value.code == "invalid_json"
