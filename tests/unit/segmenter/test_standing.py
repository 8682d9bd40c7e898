"""Given a customer's purchases, when events arrive and time passes, then the segment
moves exactly as a hand-worked RFM/CPM table says — by events and by time alone."""

from __future__ import annotations

from functools import reduce
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import encode
from schemas.events import RawEvent
from schemas.segments import RfmScores, SegmentChanged
from services.segmenter.domain.calendar import BusinessCalendar, from_epoch
from services.segmenter.domain.facts import EMPTY, apply_event
from services.segmenter.domain.figures import Purchase, figures_of, purchases
from services.segmenter.domain.handlers import on_event, on_tick
from services.segmenter.domain.scoring import (
    CPM_GROUPS,
    RFM_SEGMENTS,
    Scores,
    Thresholds,
    recency_boundaries,
)
from services.segmenter.domain.standing import CustomerState, Policy, Reason, _change, next_due
from tests.unit.segmenter.builders import cancel, on_day, order, page, receipt, ts

POLICY = Policy()
CALENDAR = BusinessCalendar()


def feed(customer_id: str, *events: RawEvent) -> tuple[CustomerState | None, list[str]]:
    state: CustomerState | None = None
    moves = []
    for event in events:
        outcome = on_event(state, customer_id, event, ts(event.occurred_at), POLICY)
        state = outcome.state or state
        moves += [f"{c.dimension}:{c.from_segment}->{c.to_segment}" for c in outcome.changes]
    return state, moves


def test_when_an_ec_order_and_a_pos_receipt_arrive_then_f_is_2_and_the_customer_grows() -> None:
    state, moves = feed(
        "c1",
        order("o1", 4_000, on_day(0)),
        page(on_day(1)),
        receipt("umeda", "R7", 2_500, on_day(3)),
    )

    assert state is not None
    assert state.standing.scores == Scores(recency=5, frequency=2, monetary=2)
    assert moves == [
        "rfm:None->New Customers",
        "cpm:None->初回客/現役",
        "rfm:New Customers->Potential Loyalist",
        "cpm:初回客/現役->よちよち客/現役",
    ]
    assert state.standing.version == 4


def test_when_no_event_comes_then_time_alone_moves_the_customer_at_each_boundary() -> None:
    state, _ = feed(
        "c2",
        order("o1", 10_000, on_day(0)),
        receipt("ginza", "R1", 30_000, on_day(10)),
        order("o2", 15_000, on_day(40)),
    )
    assert state is not None
    assert state.standing.rfm == "Potential Loyalist"
    assert state.standing.scores == Scores(5, 3, 4)

    moves, due_days = [], []
    while state.standing.next_due is not None and len(due_days) < 10:
        due = state.standing.next_due
        due_days.append(CALENDAR.day(due) - CALENDAR.day(ts(on_day(0))))
        outcome = on_tick(state, due, POLICY)
        assert outcome.state is not None
        state = outcome.state
        moves += [(c.to_segment, c.reason) for c in outcome.changes]

    assert due_days == [71, 131, 221, 280, 365, 375, 405, 406]
    assert moves == [
        ("Need Attention", "time"),
        ("At Risk", "time"),
        ("よちよち客/離脱", "time"),
        ("Hibernating", "time"),
    ]


def test_when_a_tick_comes_twice_then_the_change_is_emitted_once() -> None:
    state, _ = feed("c3", order("o1", 1_000, on_day(0)))
    assert state is not None

    first = on_tick(state, ts(on_day(250)), POLICY)
    assert first.state is not None
    second = on_tick(first.state, ts(on_day(250)), POLICY)

    assert [c.to_segment for c in first.changes] == ["Hibernating", "初回客/離脱"]
    assert second.changes == ()


def test_when_an_order_is_a_year_old_then_it_leaves_the_window_but_not_the_lifetime() -> None:
    facts = reduce(
        apply_event, [order("o1", 8_000, on_day(0)), order("o2", 2_000, on_day(100))], EMPTY
    )
    bought = purchases(facts)
    start = CALENDAR.day(ts(on_day(0)))

    inside = figures_of(bought, start + 364, CALENDAR, 365)
    outside = figures_of(bought, start + 365, CALENDAR, 365)

    assert inside is not None
    assert outside is not None
    assert (inside.window_frequency, inside.window_monetary) == (2, 10_000)
    assert (outside.window_frequency, outside.window_monetary) == (1, 2_000)
    assert (outside.lifetime_orders, outside.lifetime_amount) == (2, 10_000)
    assert outside.tenure_days == 100
    assert outside.recency_days == 265


def test_when_business_days_are_counted_then_tokyo_midnight_not_utc_decides() -> None:
    late_evening = on_day(0, hour=23)  # 14:00 UTC, same UTC day as the next morning's 08:00
    next_morning = on_day(1, hour=8)

    assert CALENDAR.day(ts(next_morning)) - CALENDAR.day(ts(late_evening)) == 1


def test_when_the_only_order_is_cancelled_then_the_customer_is_no_longer_scored() -> None:
    state, moves = feed("c4", order("o1", 1_000, on_day(0)), cancel("o1", on_day(1)))

    assert state is not None
    assert state.standing.scores is None
    assert state.standing.next_due is None
    assert moves == ["rfm:None->New Customers", "cpm:None->初回客/現役"]  # nothing to move to


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 800), min_size=1, max_size=6),
    st.integers(0, 1_200),
    st.sampled_from([0.0, 0.1]),
)
def test_when_next_due_is_computed_then_it_is_the_soonest_of_every_time_boundary(
    purchase_days: list[int], today_offset: int, hysteresis: float
) -> None:
    policy = Policy(thresholds=Thresholds(hysteresis=hysteresis))
    bought = [
        Purchase(ts(on_day(day)) + 3_600 * n, 1_000, "online")
        for n, day in enumerate(purchase_days)
    ]
    bought.sort()
    today = CALENDAR.day(bought[0].at) + today_offset
    figures = figures_of(bought, today, CALENDAR, policy.window_days)
    assert figures is not None
    last_day = CALENDAR.day(figures.last_at)
    every = [last_day + days for days in recency_boundaries(policy.thresholds)]
    every.append(last_day + policy.cpm.churn_days)
    every += [CALENDAR.day(p.at) + policy.window_days for p in bought]
    upcoming = [day for day in every if day > today]

    expected = CALENDAR.start(min(upcoming)) if upcoming else None
    assert next_due(bought, figures, today, policy) == expected


@given(
    st.sampled_from(["rfm", "cpm"]),
    st.none() | st.sampled_from(RFM_SEGMENTS + CPM_GROUPS),
    st.sampled_from(RFM_SEGMENTS + CPM_GROUPS),
    st.sampled_from(["event", "time", "merge", "split", "thresholds"]),
    st.integers(1, 10_000),
    st.integers(0, 50),
    st.integers(1_600_000_000, 1_900_000_000),
    st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
)
def test_a_change_built_without_validation_is_the_validated_one(
    dimension: Literal["rfm", "cpm"],
    before: str | None,
    after: str,
    reason: Reason,
    version: int,
    thresholds_version: int,
    now: int,
    scores: tuple[int, int, int],
) -> None:
    wire = RfmScores(recency=scores[0], frequency=scores[1], monetary=scores[2])
    as_of = from_epoch(now)
    built = _change(
        "c-1", dimension, before, after, reason, version, thresholds_version, as_of, wire
    )
    validated = SegmentChanged(
        customer_id="c-1",
        dimension=dimension,
        from_segment=before,
        to_segment=after,
        reason=reason,
        version=version,
        thresholds_version=thresholds_version,
        as_of=from_epoch(now),
        scores=RfmScores(recency=scores[0], frequency=scores[1], monetary=scores[2]),
    )
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set
    assert encode(built) == encode(validated)
