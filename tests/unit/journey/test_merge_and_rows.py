"""Merges move journeys to the survivor without double sends; rows round-trip; reports."""

from __future__ import annotations

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from schemas.channels import Channel
from services.journey.adapters.codec import decode, encode, next_due_of
from services.journey.domain import engine
from services.journey.domain.facts import KEEP_PURCHASES
from services.journey.domain.measure import report_of
from services.journey.domain.outputs import Exited
from services.journey.domain.policy import Cap, Policy
from services.journey.domain.state import CustomerState, Instance, Purchase, SendRecord
from tests.unit.journey.builders import (
    DAY,
    HOUR,
    T0,
    Story,
    added,
    context_factory,
    receipt,
    shipped,
)


def test_when_the_absorbed_customer_was_mid_journey_then_the_survivor_continues_it_once() -> None:
    ctx = context_factory(shipped()["cart_abandonment"])
    web = Story(ctx, customer_id="c-1").opted_in(Channel.LINE)
    web.event(added(T0))
    web.tick(T0 + HOUR)  # reminder 1 sent to the web profile
    store = Story(ctx, customer_id="c-store").opted_in(Channel.EMAIL)
    assert web.state is not None
    merged = engine.merge(store.state, web.state, T0 + 2 * HOUR, ctx)
    survivor = Story(ctx, customer_id="c-store")
    survivor.state = merged.state
    survivor.run_until(T0 + 10 * DAY)
    reminders = [r.data["reminder"] for r in survivor.sent()]
    assert reminders == [2, 3]  # reminder 1 is not sent again
    assert {r.customer_id for r in survivor.sent()} == {"c-store"}
    first_id = web.sent()[0].notification_id
    assert first_id not in {r.notification_id for r in survivor.sent()}


def test_when_both_profiles_chase_the_same_cart_then_only_the_earlier_one_goes_on() -> None:
    ctx = context_factory(shipped()["cart_abandonment"])
    a = Story(ctx, customer_id="c-a").opted_in(Channel.LINE)
    a.event(added(T0))
    b = Story(ctx, customer_id="c-b").opted_in(Channel.LINE)
    b.event(added(T0 + 600))
    assert a.state is not None
    assert b.state is not None
    merged = engine.merge(a.state, b.state, T0 + 700, ctx)
    assert [o.reason for o in merged.outputs if isinstance(o, Exited)] == ["merged"]
    assert len(merged.state.active("cart_abandonment")) == 1


def test_when_the_absorbed_profile_bought_in_a_store_then_the_order_counts_after_merge() -> None:
    ctx = context_factory(shipped()["f2_nudge"])
    store = Story(ctx, customer_id="c-store")
    store.event(receipt(T0 - 50 * DAY))
    web = Story(ctx, customer_id="c-web")
    merged = engine.merge(web.state, store.state or web.state, T0, ctx)  # type: ignore[arg-type]
    assert merged.state.orders == 1


def test_when_a_row_is_encoded_then_it_decodes_to_the_same_state_and_is_small() -> None:
    s = Story(context_factory(shipped()["cart_abandonment"])).opted_in(Channel.LINE)
    s.event(added(T0))
    assert s.state is not None
    raw = encode(s.state, 5)
    assert decode(raw) == (s.state, 5)
    assert next_due_of(raw) == (T0 + HOUR, 5)
    assert len(raw) < 500


TIMES = st.floats(min_value=0, max_value=4e9, allow_nan=False)
INSTANCES = st.builds(
    Instance,
    journey=st.sampled_from(["cart_abandonment", "f2_nudge"]),
    version=st.integers(1, 9),
    instance_id=st.text(min_size=1, max_size=8),
    entered_at=TIMES,
    step=st.integers(0, 6),
    at=TIMES,
    due=st.none() | TIMES,
    key=st.none() | st.text(max_size=8),
    variant=st.sampled_from(["default", "holdout", "b"]),
    status=st.sampled_from(["active", "done"]),
    priority=st.integers(0, 9),
    value=st.integers(0, 10**7),
    data=st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3),
    sent=st.integers(0, 5),
    first_sent_at=st.none() | TIMES,
    goal_until=st.none() | TIMES,
    converted=st.booleans(),
)


@given(instances=st.lists(INSTANCES, max_size=4), partition=st.integers(0, 1_000))
@example(  # a time of 0.0 last: not a default (None), so it is written
    instances=[Instance("cart_abandonment", 1, "i-1", 0.0, first_sent_at=0.0, goal_until=0.0)],
    partition=0,
)
def test_when_any_journey_instances_are_stored_then_they_read_back_the_same(
    instances: list[Instance], partition: int
) -> None:
    """Every field, set or left at its default (trailing defaults are not written)."""
    state = CustomerState(instances=instances)

    assert decode(encode(state, partition)) == (state, partition)


@given(
    partition=st.integers(min_value=0, max_value=100_000),
    due=st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(0, 2**40),
)
def test_when_only_the_head_of_a_row_is_read_then_it_says_what_the_whole_row_says(
    partition: int, due: float | None
) -> None:
    raw = orjson.dumps([1, partition, due, [["cart_abandonment", "i-1"]], {}, [], [], []])

    assert next_due_of(raw) == (due, partition)


def test_when_counters_are_read_then_the_report_compares_treated_and_holdout() -> None:
    counters = {
        "entered:default": 900,
        "entered:holdout": 100,
        "converted:default": 45,
        "converted:holdout": 2,
        "value:default": 9_000_000,
        "value:holdout": 1_000_000,
        "recovered:default": 30,
        "recovered_revenue:default": 240_000,
        "sent:default": 2_400,
        "skipped:capped": 12,
    }
    report = report_of("cart_abandonment", counters)
    assert report.recovery.abandoned_carts == 1_000
    assert report.recovery.lost_opportunity_yen == 10_000_000
    assert report.recovery.recovery_rate == 0.03
    assert report.incremental_conversion is not None
    assert round(report.incremental_conversion, 4) == 0.03  # 5 % vs 2 %
    assert report.skipped == {"capped": 12}


def test_prune_keeps_what_a_rule_can_still_ask_about_and_the_last_purchases_in_time_order() -> None:
    policy = Policy(global_cap=Cap(HOUR, 1), channel_caps={"email": Cap(3 * HOUR, 1)})
    assert policy.longest_cap_window() == 3 * HOUR
    now = T0 + DAY

    def inst(name: str, status: str, goal_until: float | None, converted: bool = False) -> Instance:
        return Instance(
            journey=name,
            version=1,
            instance_id=name,
            entered_at=T0,
            status=status,  # type: ignore[arg-type]
            goal_until=goal_until,
            converted=converted,
        )

    kept = [inst("active", "active", None), inst("measuring", "done", now + 1)]
    dropped = [
        inst("finished", "done", None),
        inst("window_over", "done", now),
        inst("converted", "done", now + 1, converted=True),
    ]
    bought = [Purchase(T0 + n * 60, "order_completed", f"o{n}", None, 100) for n in range(12)]
    state = CustomerState(
        instances=[dropped[0], kept[0], dropped[1], kept[1], dropped[2]],
        sends=[SendRecord(now - 3 * HOUR, "old", "email"), SendRecord(now - HOUR, "new", None)],
        purchases=bought[5:] + bought[:5],  # arrival order is not time order
    )
    engine.prune(state, now, context_factory(policy=policy))
    assert [i.journey for i in state.instances] == ["active", "measuring"]
    assert [s.notification_id for s in state.sends] == ["new"]
    assert state.purchases == bought[-KEEP_PURCHASES:]
    engine.prune(state, now, context_factory(policy=policy))  # nothing more to drop
    assert [i.journey for i in state.instances] == ["active", "measuring"]
    assert len(state.sends) == 1
    assert state.purchases == bought[-KEEP_PURCHASES:]
