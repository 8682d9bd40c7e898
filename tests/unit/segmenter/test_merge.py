"""Given two customers identity found to be one person, when their facts are folded,
then the survivor looks exactly like one customer who placed all the orders."""

from __future__ import annotations

from functools import reduce

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import RawEvent
from services.segmenter.domain.facts import EMPTY, Facts, apply_event, fold
from services.segmenter.domain.handlers import (
    Forward,
    HandOff,
    on_event,
    on_fold_requested,
    on_handed_off,
)
from services.segmenter.domain.standing import CustomerState, Policy, reevaluate
from tests.unit.segmenter.builders import cancel, on_day, order, page, profile, receipt, refund, ts

POLICY = Policy()
ORDER_IDS = st.sampled_from(["o1", "o2", "o3", "pos:s1:r1"])


@st.composite
def events(draw: st.DrawFn) -> RawEvent:
    day = draw(st.integers(0, 400))
    at = on_day(day, hour=draw(st.integers(0, 23)))
    kind = draw(st.sampled_from(["order", "receipt", "cancel", "refund", "profile", "page"]))
    order_id = draw(ORDER_IDS)
    amount = draw(st.integers(0, 50_000))
    if kind == "order":
        return order(order_id.replace("pos:s1:r1", "o4"), amount, at)
    if kind == "receipt":
        return receipt("s1", "r1", amount, at)
    if kind == "cancel":
        return cancel(order_id, at)
    if kind == "refund":
        return refund(order_id, amount, at)
    if kind == "profile":
        return profile(at, channel=draw(st.sampled_from(["line", "email", "push"])))
    return page(at)


def facts_of(history: list[RawEvent]) -> Facts:
    return reduce(apply_event, history, EMPTY)


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), max_size=12), st.lists(events(), max_size=12))
def test_when_two_histories_are_folded_then_it_equals_the_combined_history(
    mine: list[RawEvent], theirs: list[RawEvent]
) -> None:
    combined = facts_of(mine + theirs)

    folded = fold(facts_of(mine), facts_of(theirs))

    assert folded == combined
    assert fold(facts_of(theirs), facts_of(mine)) == combined
    assert fold(folded, facts_of(theirs)) == combined  # a replayed hand-off changes nothing
    now = ts(on_day(420))
    one = reevaluate(CustomerState("s", combined), now, "merge", POLICY)[0].standing
    two = reevaluate(CustomerState("s", folded), now, "merge", POLICY)[0].standing
    assert one == two


def test_when_the_absorbed_partition_gets_a_fold_request_then_it_hands_off_and_tombstones() -> None:
    absorbed = on_event(
        None, "pos-card-7", receipt("s1", "r1", 3_000, on_day(0)), ts(on_day(0)), POLICY
    )
    assert absorbed.state is not None

    requested = on_fold_requested(absorbed.state, "pos-card-7", "member-1", 1)
    replayed = on_fold_requested(requested.state, "pos-card-7", "member-1", 1)

    assert requested.state is not None
    assert requested.state.absorbed_into == "member-1"
    assert requested.commands == (HandOff("member-1", 1, "pos-card-7", absorbed.state.facts),)
    assert replayed.state is None
    assert replayed.commands == requested.commands


def test_when_the_survivor_folds_the_hand_off_then_f_counts_both_and_the_change_says_merge() -> (
    None
):
    survivor = on_event(None, "member-1", order("o1", 5_000, on_day(0)), ts(on_day(0)), POLICY)
    handed = reduce(apply_event, [receipt("s1", "r1", 3_000, on_day(2))], EMPTY)

    merged = on_handed_off(survivor.state, "member-1", handed, "pos-card-7", ts(on_day(2)), POLICY)
    again = on_handed_off(merged.state, "member-1", handed, "pos-card-7", ts(on_day(2)), POLICY)

    assert merged.state is not None
    assert merged.state.standing.scores is not None
    assert merged.state.standing.scores.frequency == 2
    assert [(c.to_segment, c.reason) for c in merged.changes] == [
        ("Potential Loyalist", "merge"),
        ("よちよち客/現役", "merge"),
    ]
    assert again.state is None
    assert again.changes == ()


def test_when_an_absorbed_customer_gets_a_late_event_then_it_is_forwarded_to_the_survivor() -> None:
    tombstone = CustomerState("pos-card-7", absorbed_into="member-1", survivor_partition=0)
    late = order("o9", 1_000, on_day(5))

    outcome = on_event(tombstone, "pos-card-7", late, ts(on_day(5)), POLICY)

    assert outcome.state is None
    assert outcome.changes == ()
    assert outcome.commands == (Forward("member-1", 0, late),)
