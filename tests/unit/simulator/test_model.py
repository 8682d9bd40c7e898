"""The simulated shop: reproducible for a seed, plausible, and speaking the gateway's language."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice

from schemas.codec import decode, encode
from schemas.events import RAW_EVENT_ADAPTER, OrderCompleted, PosPurchased, Source
from schemas.topics import raw_topic_for
from services.gateway.domain import line_webhook
from services.gateway.domain.segment_mapping import map_message
from simulator.messages import DirectEvent, Emission, LineEvent, SegmentCall
from simulator.model import Shop
from simulator.runner import Pace
from simulator.sessions import jst_hour
from simulator.sinks import line_signature

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # 09:00 in Japan
RECEIVED = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def story(seed: int, n: int = 3_000, customers: int = 500) -> list[Emission]:
    shop = Shop(seed, start=START, step=timedelta(seconds=60), customers=customers, run_id="t")
    return list(islice(shop.emissions(), n))


def as_data(emission: Emission) -> object:
    if isinstance(emission, DirectEvent):
        return emission.event.model_dump(mode="json")
    return emission


def test_when_the_seed_is_the_same_then_the_story_is_the_same() -> None:
    assert [as_data(e) for e in story(7)] == [as_data(e) for e in story(7)]


def test_when_the_seed_differs_then_the_story_differs() -> None:
    assert [as_data(e) for e in story(7, 200)] != [as_data(e) for e in story(8, 200)]


def test_when_the_gateway_maps_every_segment_call_then_none_is_rejected() -> None:
    calls = [e for e in story(3) if isinstance(e, SegmentCall)]
    mapped = [map_message(c.message, Source(c.source), RECEIVED) for c in calls]
    kinds = Counter(event.type for event in mapped)
    assert {"page_viewed", "product_viewed", "product_added", "identified"} <= kinds.keys()
    assert {"checkout_started", "order_completed", "app_opened"} <= kinds.keys()


def test_when_an_app_opens_then_its_device_and_push_token_reach_the_event() -> None:
    opened = next(
        map_message(e.message, Source.APP, RECEIVED)
        for e in story(3)
        if isinstance(e, SegmentCall) and e.message.get("event") == "Application Opened"
    )
    assert opened.identifiers.device_id is not None
    assert opened.payload.push_token.startswith("tok-")  # type: ignore[union-attr]


def test_when_a_member_checks_out_then_cookie_and_member_id_meet_in_one_call() -> None:
    stitched = [
        e.message
        for e in story(5)
        if isinstance(e, SegmentCall)
        and e.message["type"] == "identify"
        and "userId" in e.message
        and "anonymousId" in e.message
    ]
    assert len(stitched) > 20


def test_when_line_events_are_signed_and_mapped_then_the_webhook_accepts_them() -> None:
    events = [e for e in story(11, 6_000) if isinstance(e, LineEvent)]
    body = b'{"events": []}'
    assert line_webhook.verify_signature(b"s3cret", body, line_signature("s3cret", body))
    mapped = [
        line_webhook.map_event(
            e.event, channel_id="U1", provider="line", received_at=RECEIVED, members={}
        )
        for e in events
    ]
    assert {m.type for m in mapped if m is not None} >= {"line_followed", "line_account_linked"}
    assert all(e.link_member for e in events if e.event["type"] == "accountLink")


def test_when_events_go_straight_to_kafka_then_each_has_a_raw_topic_and_round_trips() -> None:
    direct = [e.event for e in story(3) if isinstance(e, DirectEvent)]
    kinds = Counter(event.type for event in direct)
    assert {"pos_purchased", "order_completed", "consent_granted", "location_reported"} <= set(
        kinds
    )
    for event in direct:
        raw_topic_for(event.type)
        assert decode(RAW_EVENT_ADAPTER, encode(event)) == event


def test_when_a_day_passes_then_proportions_look_like_a_shop() -> None:
    calls = Counter(
        e.message.get("event", e.message["type"]) for e in story(9) if isinstance(e, SegmentCall)
    )
    assert calls["Product Viewed"] > calls["Product Added"] > calls["Checkout Started"]
    assert calls["Checkout Started"] > calls["Order Completed"] > 0  # some carts are abandoned
    assert calls["Order Completed"] < calls["Product Viewed"] * 0.15


def test_when_receipts_are_printed_then_stores_are_open_and_amounts_are_integer_yen() -> None:
    receipts = [
        e.event
        for e in story(9, 6_000)
        if isinstance(e, DirectEvent) and isinstance(e.event, PosPurchased)
    ]
    assert receipts
    for receipt in receipts:
        assert 10 <= jst_hour(receipt.occurred_at) <= 21
        assert receipt.payload.money.total == sum(item.amount for item in receipt.payload.items)
        assert receipt.event_id.startswith(f"pos:{receipt.payload.store_id}:")


def test_when_mall_orders_arrive_then_they_carry_the_mall_customer_id() -> None:
    orders = [
        e.event
        for e in story(9)
        if isinstance(e, DirectEvent) and isinstance(e.event, OrderCompleted)
    ]
    assert orders
    for order in orders:
        mall_id = order.identifiers.mall_customer_id
        assert mall_id is not None
        assert mall_id.split(":")[0] == order.payload.mall


def test_when_the_pace_is_set_then_each_event_advances_the_clock_by_speed_over_rate() -> None:
    assert Pace(rate=50, speed=3600).step == timedelta(seconds=72)
