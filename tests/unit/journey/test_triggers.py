"""Geofence visits (dwell, debounce, per-store cooldown, opening hours), birthdays and
segment entries as triggers."""

from __future__ import annotations

from datetime import UTC, date, datetime

from schemas.channels import Channel
from schemas.segments import SegmentChanged
from services.journey.domain import engine
from services.journey.domain.geofence import distance_m
from tests.unit.journey.builders import (
    DAY,
    MINUTE,
    T0,
    Story,
    birthday,
    context_factory,
    jst,
    ping,
    shipped,
)

SHIBUYA = (35.6595, 139.7005)
NEAR_SHIBUYA = (35.6600, 139.7010)  # ~70 m from the centre, inside the 120 m radius
FAR = (35.6700, 139.7005)  # ~1.2 km away


def geo_story() -> Story:
    return Story(context_factory(shipped()["geo_push"])).opted_in(Channel.PUSH)


def test_when_distances_are_measured_then_they_are_metres_on_the_globe() -> None:
    assert 60 < distance_m(*SHIBUYA, *NEAR_SHIBUYA) < 80
    assert 1_100 < distance_m(*SHIBUYA, *FAR) < 1_200


def test_when_someone_dwells_in_the_store_area_then_one_push_and_none_within_cooldown() -> None:
    s = geo_story()
    s.event(ping(T0, *NEAR_SHIBUYA))
    assert s.sent() == []  # just passing by so far
    s.event(ping(T0 + 3 * MINUTE, *NEAR_SHIBUYA))
    [push] = s.sent()
    assert push.channels == (Channel.PUSH,)
    assert push.data["store_name"] == "渋谷店"
    s.event(ping(T0 + 10 * MINUTE, *NEAR_SHIBUYA))
    s.event(ping(T0 + 2 * DAY, *NEAR_SHIBUYA))
    s.event(ping(T0 + 2 * DAY + 3 * MINUTE, *NEAR_SHIBUYA))
    assert len(s.sent()) == 1
    s.event(ping(T0 + 8 * DAY, *NEAR_SHIBUYA))
    s.event(ping(T0 + 8 * DAY + 3 * MINUTE, *NEAR_SHIBUYA))
    assert len(s.sent()) == 2  # cooldown (7 days) over


def test_when_pings_are_far_inaccurate_or_gapped_then_no_push() -> None:
    s = geo_story()
    s.event(ping(T0, *FAR))
    s.event(ping(T0 + 3 * MINUTE, *FAR))
    s.event(ping(T0 + 6 * MINUTE, *NEAR_SHIBUYA, accuracy_m=500))
    s.event(ping(T0 + 9 * MINUTE, *NEAR_SHIBUYA, accuracy_m=500))
    s.event(ping(T0 + 12 * MINUTE, *NEAR_SHIBUYA))
    s.event(ping(T0 + 40 * MINUTE, *NEAR_SHIBUYA))  # a 28 min gap: a new visit, no dwell yet
    assert s.sent() == []


def test_when_the_store_is_closed_then_no_push() -> None:
    s = geo_story()
    s.event(ping(jst(2026, 3, 2, 22, 0), *NEAR_SHIBUYA))
    s.event(ping(jst(2026, 3, 2, 22, 5), *NEAR_SHIBUYA))
    assert s.sent() == []


def test_when_a_birthday_is_known_then_the_coupon_goes_three_days_before_at_ten() -> None:
    s = Story(context_factory(shipped()["birthday_coupon"])).opted_in(Channel.LINE)
    s.event(birthday(T0, date(1990, 3, 20)))
    s.run_until(T0 + 400 * DAY)
    times = [r.requested_at.timestamp() for r in s.sent()]
    assert times == [jst(2026, 3, 17, 10, 0), jst(2027, 3, 17, 10, 0)]


def test_when_born_on_29_february_then_common_years_celebrate_on_the_28th() -> None:
    s = Story(context_factory(shipped()["birthday_coupon"])).opted_in(Channel.LINE)
    s.event(birthday(T0 - 30 * DAY, date(2000, 2, 29)))
    s.run_until(T0 + 10 * DAY)
    [request] = s.sent()
    assert request.requested_at.timestamp() == jst(2026, 2, 25, 10, 0)  # 28 Feb - 3 days


def test_when_a_customer_enters_at_risk_then_the_reactivation_journey_starts() -> None:
    ctx = context_factory(shipped()["dormant_reactivation"])
    s = Story(ctx, customer_id="c-7").opted_in(Channel.EMAIL)
    change = SegmentChanged(
        customer_id="c-7",
        dimension="rfm",
        from_segment="Need Attention",
        to_segment="At Risk",
        reason="time",
        version=4,
        thresholds_version=0,
        as_of=datetime.fromtimestamp(T0, UTC),
    )
    s._keep(engine.on_segment(s.state, "c-7", change, T0, ctx))
    s._keep(engine.on_segment(s.state, "c-7", change, T0, ctx))  # delivered twice
    assert s.state is not None
    assert s.state.rfm == "At Risk"
    entered = [o for o in s.outputs if type(o).__name__ == "Entered"]
    assert len(entered) == 1


def test_when_a_path_is_read_from_a_payload_then_fields_extras_and_alternatives_resolve() -> None:
    from pydantic import ConfigDict

    from schemas.base import Frozen
    from schemas.examples import example
    from services.journey.domain.facts import value_at

    order = example("order_completed").payload
    pos = example("pos_purchased").payload
    assert value_at(order, "order_id") == order.order_id  # type: ignore[attr-defined]
    assert value_at(order, "receipt_id") is None  # not a field of an order
    assert value_at(order, "receipt_id|order_id") == order.order_id  # type: ignore[attr-defined]
    assert value_at(pos, "order_id|receipt_id") == pos.receipt_id  # type: ignore[attr-defined]
    assert value_at(order, "order_id.nested") is None
    assert value_at({"product": {"category": "shoes"}}, "product.category") == "shoes"

    class Open(Frozen):
        model_config = ConfigDict(frozen=True, extra="allow")
        known: str = "k"

    assert value_at(Open(shade="navy"), "shade") == "navy"  # type: ignore[call-arg]
    assert value_at(Open(), "known") == "k"
    assert value_at(Open(), "model_fields") is None  # a field name only, never an attribute
