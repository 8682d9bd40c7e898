"""Exits judged by event time, re-entry policies and per-key instances."""

from __future__ import annotations

from schemas.channels import Channel
from services.journey.domain.outputs import Converted, Exited
from services.journey.domain.policy import in_holdout
from tests.unit.journey.builders import (
    DAY,
    HOUR,
    MINUTE,
    T0,
    Story,
    added,
    context_factory,
    jst,
    order,
    receipt,
    scenario_factory,
    shipped,
)


def cart_story() -> Story:
    return Story(context_factory(shipped()["cart_abandonment"])).opted_in(Channel.LINE)


def test_when_the_customer_buys_in_a_store_then_no_cart_reminder_goes_out() -> None:
    s = cart_story()
    s.event(added(T0))
    s.event(receipt(T0 + 20 * MINUTE))
    s.run_until(T0 + 10 * DAY)
    assert s.sent() == []
    assert [o.reason for o in s.outputs if isinstance(o, Exited)] == ["exit:pos_purchased"]


def test_when_the_order_arrives_late_with_an_earlier_event_time_then_it_still_cancels() -> None:
    s = cart_story()
    s.event(added(T0))
    s.tick(T0 + HOUR)  # reminder 1 went out
    # the order happened at 12:40 but reached us at 14:00
    s.event(order(T0 + 40 * MINUTE, cart_id="cart-1"), now=T0 + 2 * HOUR)
    s.run_until(T0 + 10 * DAY)
    assert [r.data["reminder"] for r in s.sent()] == [1]
    [conversion] = [o for o in s.outputs if isinstance(o, Converted)]
    assert not conversion.recovered  # bought before the reminder: not a recovery


def test_when_the_order_reaches_us_before_the_cart_event_then_the_journey_never_starts() -> None:
    s = cart_story()
    s.event(order(T0 + 10 * MINUTE, cart_id="cart-1"))
    s.event(added(T0), now=T0 + 15 * MINUTE)  # the app sent its cart event late
    s.run_until(T0 + 10 * DAY)
    assert s.sent() == []
    assert "exited" in s.skipped()


def test_when_an_older_order_exists_then_a_new_cart_still_starts_the_journey() -> None:
    s = cart_story()
    s.event(order(T0 - 2 * DAY, order_id="o-old"))
    s.event(added(T0))
    s.run_until(T0 + 10 * DAY)
    assert len(s.sent()) == 3


def test_when_an_order_for_another_cart_comes_then_this_carts_reminders_continue() -> None:
    s = cart_story()
    s.event(added(T0, cart_id="cart-A"))
    s.event(order(T0 + 10 * MINUTE, order_id="o-b", cart_id="cart-B"))
    s.run_until(T0 + 10 * DAY)
    assert len(s.sent()) == 3


def test_when_a_reminder_is_followed_by_a_purchase_then_it_counts_as_recovered_revenue() -> None:
    s = cart_story()
    s.event(added(T0, price=8_000))
    s.tick(T0 + HOUR)
    s.event(order(T0 + 3 * HOUR, cart_id="cart-1", total=8_000))
    [conversion] = [o for o in s.outputs if isinstance(o, Converted)]
    assert (conversion.recovered, conversion.amount) == (True, 8_000)


def test_when_the_same_cart_gets_more_items_then_one_journey_with_the_cart_value_grows() -> None:
    s = cart_story()
    s.event(added(T0, price=3_000))
    s.event(added(T0 + MINUTE, price=2_000))
    assert s.state is not None
    [inst] = s.state.active("cart_abandonment")
    assert inst.value == 5_000


def test_when_the_same_event_is_delivered_twice_then_it_enters_once() -> None:
    s = cart_story()
    event = added(T0, event_id="e-dup")
    s.event(event)
    s.event(event)
    assert s.state is not None
    assert len(s.state.instances) == 1


def test_when_entry_is_once_then_a_second_trigger_is_refused_with_a_reason() -> None:
    s = Story(context_factory(scenario_factory(entry={"policy": "once"}))).opted_in(Channel.LINE)
    s.event(added(T0))
    s.run_until(T0 + 2 * DAY)
    s.event(added(T0 + 3 * DAY, cart_id="cart-2"))
    assert len(s.sent()) == 1
    assert "entered_before" in s.skipped()


def test_when_entry_has_a_cooldown_then_only_after_it_passes_can_the_customer_reenter() -> None:
    scenario = scenario_factory(entry={"policy": "cooldown", "cooldown": "7d"})
    s = Story(context_factory(scenario)).opted_in(Channel.LINE)
    s.event(added(T0))
    s.run_until(T0 + 2 * DAY)
    s.event(added(T0 + 3 * DAY))
    s.run_until(T0 + 5 * DAY)
    s.event(added(T0 + 8 * DAY))
    s.run_until(T0 + 10 * DAY)
    assert len(s.sent()) == 2
    assert s.skipped().count("cooldown") == 1


def test_when_max_entries_is_reached_then_no_more_entries() -> None:
    scenario = scenario_factory(entry={"policy": "every_time", "max_entries": 2})
    s = Story(context_factory(scenario)).opted_in(Channel.LINE)
    for day in range(4):
        s.event(added(T0 + day * 3 * DAY))
        s.run_until(T0 + day * 3 * DAY + 2 * DAY)
    assert len(s.sent()) == 2
    assert s.skipped().count("max_entries") == 2


def test_when_a_loyal_customer_buys_then_the_first_purchase_journey_does_not_take_them() -> None:
    f2 = shipped()["f2_nudge"]
    s = Story(context_factory(f2)).opted_in(Channel.LINE)
    s.event(receipt(T0 - 100 * DAY, receipt_id="r-0"))  # a store regular
    s.event(order(T0))
    s.run_until(T0 + 60 * DAY)
    assert s.sent() == []
    assert "audience" in s.skipped()


def test_when_a_first_time_buyer_does_not_return_then_the_f2_nudge_goes_out_once() -> None:
    f2 = shipped()["f2_nudge"]
    ctx = context_factory(f2)
    treated = next(
        f"c-{n}" for n in range(100) if not in_holdout(ctx.policy, f"c-{n}", f2.id, f2.holdout)
    )
    s = Story(ctx, customer_id=treated).opted_in(Channel.LINE)
    first = order(T0)
    s.event(first)
    s.event(first)  # the same order delivered again ends nothing
    s.run_until(T0 + 60 * DAY)
    [request] = s.sent()
    assert request.data["coupon_code"] in {"F2-500", "F2-10PCT"}
    assert request.requested_at.timestamp() == jst(2026, 3, 16, 12, 0)  # 14 days, 12:00
