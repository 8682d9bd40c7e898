"""The segmenter's steps, shaped ``(state, input, now) -> Outcome``.

Merge hand-off (the absorbed customer lives on another partition than the survivor):

    identity.changes merged(S, absorbed=A)  --on S's partition-->  FoldRequested(A -> S)
    FoldRequested on A's partition: A becomes a tombstone pointing at S (its facts kept,
        so a replay can hand them off again) and HandOff(A's facts) goes to S's partition
    HandOff on S's partition: S's facts := fold(S, A)  (union by order id: idempotent)
    a late event for A: forwarded to S (tombstones never score or emit)
"""

from __future__ import annotations

from typing import NamedTuple

from schemas.base import new_tuple
from schemas.events import RawEvent
from schemas.segments import SegmentChanged
from services.segmenter.domain.facts import EMPTY, Facts, Seen, apply_event, fold
from services.segmenter.domain.figures import Figures, Purchase
from services.segmenter.domain.standing import (
    CustomerState,
    Policy,
    Standing,
    effective_at,
    effective_now,
    reevaluate,
    restand,
)


class HandOff(NamedTuple):
    """Give an absorbed customer's facts to the survivor (on the survivor's partition)."""

    survivor: str
    survivor_partition: int
    absorbed: str
    facts: Facts


class Forward(NamedTuple):
    """An event of an absorbed customer, re-addressed to the survivor."""

    survivor: str
    survivor_partition: int
    event: RawEvent | Seen


Command = HandOff | Forward


class Outcome(NamedTuple):
    state: CustomerState | None = None  # None: nothing to write
    changes: tuple[SegmentChanged, ...] = ()
    commands: tuple[Command, ...] = ()


NOTHING = Outcome()


def on_event(
    state: CustomerState | None,
    customer_id: str,
    event: RawEvent | Seen,
    now: int,
    policy: Policy,
) -> Outcome:
    """Apply one customer event; re-score when orders changed or a new day began."""
    if state is not None and state.absorbed_into is not None:
        forward = Forward(state.absorbed_into, state.survivor_partition or 0, event)
        return Outcome(commands=(forward,))
    current = state or CustomerState(customer_id)
    facts = apply_event(current.facts, event)
    if facts is current.facts:
        return NOTHING
    updated = new_tuple(  # (every event builds these: without the Python-level __new__)
        CustomerState,
        (
            current.customer_id,
            facts,
            current.standing,
            current.absorbed_into,
            current.survivor_partition,
        ),
    )
    at = effective_now(now, facts)
    orders_same = facts.orders is current.facts.orders
    if orders_same and current.standing.evaluated_day == policy.calendar.day(at):
        return new_tuple(Outcome, (updated, (), ()))
    scored, changes = reevaluate(updated, at, "event", policy)
    return new_tuple(Outcome, (scored, tuple(changes), ()))


def on_tick(state: CustomerState | None, now: int, policy: Policy) -> Outcome:
    """The time index says this customer's standing may have changed by time alone."""
    if state is None or state.absorbed_into is not None:
        return NOTHING
    scored, changes = reevaluate(state, effective_now(now, state.facts), "time", policy)
    return Outcome(scored, tuple(changes))


class Reticked(NamedTuple):
    """A tick's result for a customer known by her stored purchases and standing."""

    standing: Standing
    changes: tuple[SegmentChanged, ...]
    figures: Figures | None  # what the standing was judged on
    at: int  # the moment it was judged at (never before her latest event)


def on_stored_tick(
    customer_id: str,
    bought: list[Purchase],
    standing: Standing,
    last_seen: int | None,
    now: int,
    policy: Policy,
) -> Reticked:
    """:func:`on_tick` for a live customer given by parts: her purchases (oldest first),
    standing and last seen time. A sweep ticks customers whose rows nobody decoded yet;
    this re-scores them from the stored purchases, leaving the rest of the facts as
    they were stored."""
    at = effective_at(now, last_seen)
    scored, changes, figures = restand(customer_id, bought, standing, at, "time", policy)
    return new_tuple(Reticked, (scored, tuple(changes), figures, at))  # named, without __new__


def on_fold_requested(
    state: CustomerState | None, absorbed: str, survivor: str, survivor_partition: int
) -> Outcome:
    """On the absorbed customer's partition: become a tombstone, hand the facts over."""
    current = state or CustomerState(absorbed)
    tombstone = CustomerState(absorbed, current.facts, Standing(), survivor, survivor_partition)
    handoff = (HandOff(survivor, survivor_partition, absorbed, current.facts),)
    commands = handoff if current.facts != EMPTY else ()
    if state == tombstone:
        return Outcome(commands=commands)  # a replay: hand off again, fold is idempotent
    return Outcome(tombstone, commands=commands)


def on_handed_off(
    state: CustomerState | None,
    survivor: str,
    facts: Facts,
    absorbed: str,
    now: int,
    policy: Policy,
) -> Outcome:
    """On the survivor's partition: fold the absorbed customer's facts in."""
    if state is not None and state.absorbed_into is not None:
        onward = HandOff(state.absorbed_into, state.survivor_partition or 0, absorbed, facts)
        return Outcome(commands=(onward,))
    current = state or CustomerState(survivor)
    folded = fold(current.facts, facts)
    if folded == current.facts:
        return NOTHING
    merged = current._replace(facts=folded)
    scored, changes = reevaluate(merged, effective_now(now, folded), "merge", policy)
    return Outcome(scored, tuple(changes))
