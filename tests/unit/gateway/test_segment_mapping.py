"""Segment calls as the SDKs send them become kizuna events a marketer recognises."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.events import (
    CartViewed,
    CustomTracked,
    Identified,
    LocationReported,
    OrderCompleted,
    OrderRefunded,
    PageViewed,
    ProductAdded,
    ProductViewed,
    Source,
)
from services.gateway.domain.segment_mapping import map_message
from services.gateway.domain.segment_values import MappingError

NOW = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)


def call(**fields: Any) -> dict[str, Any]:
    return {
        "messageId": "msg-1",
        "anonymousId": "anon-1",
        "timestamp": "2026-11-20T10:29:00+09:00",
    } | fields


def order(**properties: Any) -> dict[str, Any]:
    base = {
        "order_id": "o-1",
        "total": 5400,
        "coupon": "AKI10",
        "products": [{"product_id": "tea-001", "price": 1080, "quantity": 5, "name": "煎茶"}],
    }
    return call(type="track", event="Order Completed", userId="M1", properties=base | properties)


def test_when_an_order_completes_then_items_and_money_are_integer_yen() -> None:
    event = map_message(order(), Source.WEB, NOW)

    assert isinstance(event, OrderCompleted)
    assert event.event_id == "msg-1"
    assert event.identifiers.member_id == "M1"
    assert event.identifiers.anonymous_id == "anon-1"
    assert event.payload.money.total == 5400
    assert event.payload.money.subtotal == 5400
    assert event.payload.items[0].amount == 5400
    assert event.payload.coupon == "AKI10"
    assert event.occurred_at == datetime(2026, 11, 20, 1, 29, tzinfo=UTC)
    assert event.received_at == NOW


def test_when_a_yen_amount_is_an_integral_float_then_it_is_accepted_as_an_integer() -> None:
    event = map_message(order(total=5400.0), Source.WEB, NOW)

    assert isinstance(event, OrderCompleted)
    assert event.payload.money.total == 5400


def test_when_a_yen_amount_has_a_fraction_then_the_event_is_rejected_naming_the_field() -> None:
    with pytest.raises(MappingError, match=r"properties.total: must be whole yen \(got 5400.5\)"):
        map_message(order(total=5400.5), Source.WEB, NOW)


def test_when_the_timestamp_has_no_zone_then_the_event_is_rejected() -> None:
    with pytest.raises(MappingError, match="timestamp: Input should have timezone info"):
        map_message(order() | {"timestamp": "2026-11-20T10:29:00"}, Source.WEB, NOW)


def test_when_a_product_is_viewed_or_added_then_the_cart_events_carry_the_product() -> None:
    viewed = map_message(
        call(type="track", event="Product Viewed", properties={"product_id": "p1", "price": 990}),
        Source.APP,
        NOW,
    )
    added = map_message(
        call(type="track", event="product_added", properties={"sku": "S1", "cart_id": "c1"}),
        Source.WEB,
        NOW,
    )

    assert isinstance(viewed, ProductViewed)
    assert viewed.payload.product.price == 990
    assert viewed.source is Source.APP
    assert isinstance(added, ProductAdded)
    assert added.payload.product.product_id == "S1"
    assert added.payload.cart_id == "c1"


def test_when_the_cart_is_viewed_then_its_total_is_the_sum_of_its_lines() -> None:
    products = [{"id": "a", "price": 100, "quantity": 2}, {"id": "b", "price": 50}]
    event = map_message(
        call(type="track", event="Cart Viewed", properties={"cart_id": "c1", "products": products}),
        Source.WEB,
        NOW,
    )

    assert isinstance(event, CartViewed)
    assert event.payload.total == 250


def test_when_an_order_is_refunded_without_a_total_then_the_products_give_the_amount() -> None:
    properties = {"order_id": "o-1", "products": [{"product_id": "p", "price": 700}]}
    event = map_message(
        call(type="track", event="Order Refunded", properties=properties), Source.WEB, NOW
    )

    assert isinstance(event, OrderRefunded)
    assert event.payload.amount == 700


def test_when_an_unknown_event_is_tracked_then_it_is_kept_as_a_custom_event() -> None:
    event = map_message(
        call(type="track", event="Coupon Applied", properties={"coupon": "AKI10"}), Source.WEB, NOW
    )

    assert isinstance(event, CustomTracked)
    assert event.payload.name == "Coupon Applied"
    assert event.payload.properties == {"coupon": "AKI10"}


def test_when_a_user_identifies_then_email_and_phone_become_identifiers_and_traits_map() -> None:
    traits = {
        "email": "Hanako@Example.jp",
        "phone": "090-1234-5678",
        "lastName": "山田",
        "firstName": "花子",
        "gender": "女性",
        "birthday": "1990-04-01T00:00:00.000Z",
        "address": {"state": "東京都"},
        "plan": "gold",
    }
    event = map_message(call(type="identify", userId="M7", traits=traits), Source.WEB, NOW)

    assert isinstance(event, Identified)
    assert event.identifiers.email == "Hanako@Example.jp"
    assert event.identifiers.phone == "090-1234-5678"
    assert event.identifiers.member_id == "M7"
    assert event.payload.traits.name == "山田 花子"
    assert event.payload.traits.gender == "female"
    assert str(event.payload.traits.birthday) == "1990-04-01"
    assert event.payload.traits.prefecture == "東京都"
    assert event.payload.traits.custom["plan"] == "gold"


def test_when_an_alias_arrives_then_previous_id_and_user_id_are_linked() -> None:
    message = {"type": "alias", "messageId": "a-1", "previousId": "anon-9", "userId": "M9"}

    event = map_message(message, Source.WEB, NOW)

    assert isinstance(event, Identified)
    assert event.identifiers.member_id == "M9"
    assert event.identifiers.anonymous_id == "anon-9"


def test_when_a_page_is_viewed_then_url_comes_from_properties_or_context() -> None:
    context = {
        "page": {"url": "https://shop.example.jp/", "referrer": "https://google.com/"},
        "userAgent": "UA",
        "campaign": {"source": "line", "medium": "social", "id": "x"},
        "library": {"name": "analytics.js"},
        "device": {"id": "dev-1"},
    }
    event = map_message(call(type="page", name="トップ", context=context), Source.WEB, NOW)

    assert isinstance(event, PageViewed)
    assert event.payload.url == "https://shop.example.jp/"
    assert event.payload.title == "トップ"
    assert event.payload.referrer == "https://google.com/"
    assert event.context.user_agent == "UA"
    assert event.context.campaign is not None
    assert event.context.campaign.source == "line"
    assert event.identifiers.device_id == "dev-1"
    assert event.context.model_extra == {
        "library": {"name": "analytics.js"},
        "device": {"id": "dev-1"},
    }


@pytest.mark.parametrize(
    ("message", "fragment", "reason"),
    [
        ({"type": "track", "event": "X", "messageId": "m"}, "userId or anonymousId", "invalid"),
        (call(type="track", event="X", messageId="has space"), "messageId: must be", "invalid"),
        (call(type="track", event="X", messageId=None), "messageId: is required", "invalid"),
        (call(type="fly"), "unknown Segment call 'fly'", "unknown_type"),
        (call(type="page"), "properties.url: is required", "invalid"),
        (call(type="track"), "event: is required", "invalid"),
        ([1, 2], "must be a JSON object", "invalid"),
    ],
)
def test_when_a_call_is_malformed_then_the_error_names_the_segment_field(
    message: Any, fragment: str, reason: str
) -> None:
    with pytest.raises(MappingError) as caught:
        map_message(message, Source.WEB, NOW)

    assert fragment in str(caught.value)
    assert caught.value.reason == reason


def test_when_the_app_reports_a_location_then_it_becomes_a_location_event() -> None:
    ping = call(
        type="track",
        event="Location Reported",
        userId="M1",
        properties={"latitude": 35.66, "longitude": 139.701, "accuracy": 15},
    )
    event = map_message(ping, Source.APP, NOW)

    assert isinstance(event, LocationReported)
    payload = event.payload
    assert (payload.latitude, payload.longitude, payload.accuracy_m) == (35.66, 139.701, 15)


def test_when_the_location_is_in_the_sdk_context_then_it_is_taken_from_there() -> None:
    context = {"location": {"latitude": 35.66, "longitude": 139.701, "accuracy": 30}}
    ping = call(type="track", event="Location Reported", properties={}, context=context)
    event = map_message(ping, Source.APP, NOW)

    assert isinstance(event, LocationReported)
    assert event.payload.accuracy_m == 30


def test_when_a_location_has_no_accuracy_then_it_is_rejected_naming_the_field() -> None:
    ping = call(
        type="track",
        event="Location Reported",
        properties={"latitude": 35.66, "longitude": 139.701},
    )
    with pytest.raises(MappingError, match=r"properties\.accuracy"):
        map_message(ping, Source.APP, NOW)
