"""A customer's standing (RFM segment, CPM group, scores) and how it moves.

``reevaluate`` is the one place a segment changes: after an event, a merge, or the
passage of time. It returns the new state, the :class:`SegmentChanged` events to emit
(one per changed dimension, each with the next version) and the next moment the standing
could change with no new event (``next_due``, for the time index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Literal, NamedTuple

from schemas.base import SCHEMA_VERSION, assembled, new_tuple
from schemas.segments import RfmScores, SegmentChanged
from services.segmenter.domain.calendar import BusinessCalendar, from_epoch
from services.segmenter.domain.facts import EMPTY, Facts
from services.segmenter.domain.figures import Figures, Purchase, figures_of, purchases
from services.segmenter.domain.scoring import (
    CpmRules,
    Scores,
    Thresholds,
    cpm_group,
    recency_boundaries,
    rfm_scores,
    rfm_segment,
)

Reason = Literal["event", "time", "merge", "split", "thresholds"]


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything configurable about scoring: calendar, window, thresholds, CPM rules."""

    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    window_days: int = 365
    thresholds: Thresholds = field(default_factory=Thresholds)
    cpm: CpmRules = field(default_factory=CpmRules)
    age_marks: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """Days after the last purchase at which R or the CPM churn mark may move, ascending
    (worked out once: :func:`next_due` asks for them per evaluated customer)."""

    def __post_init__(self) -> None:
        marks = tuple(sorted({*recency_boundaries(self.thresholds), self.cpm.churn_days}))
        object.__setattr__(self, "age_marks", marks)


class Standing(NamedTuple):
    rfm: str | None = None
    cpm: str | None = None
    scores: Scores | None = None
    version: int = 0
    thresholds_version: int = 0
    next_due: int | None = None
    evaluated_day: int | None = None


class CustomerState(NamedTuple):
    customer_id: str
    facts: Facts = EMPTY
    standing: Standing = Standing()
    absorbed_into: str | None = None
    survivor_partition: int | None = None


def effective_now(now: int, facts: Facts) -> int:
    """Never judge a customer before their own latest event (clock behind event time)."""
    return effective_at(now, facts.last_seen)


def effective_at(now: int, last_seen: int | None) -> int:
    return now if last_seen is None or last_seen < now else last_seen


def reevaluate(
    state: CustomerState, now: int, reason: Reason, policy: Policy
) -> tuple[CustomerState, list[SegmentChanged]]:
    standing, changes, _ = restand(
        state.customer_id, purchases(state.facts), state.standing, now, reason, policy
    )
    return _with_standing(state, standing), changes


def restand(
    customer_id: str,
    bought: list[Purchase],
    old: Standing,
    now: int,
    reason: Reason,
    policy: Policy,
) -> tuple[Standing, list[SegmentChanged], Figures | None]:
    """The standing of a customer with these purchases (oldest first) at ``now``, the
    changes from ``old``, and the figures it was judged on (None if she never bought).
    What :func:`reevaluate` does with a state; a sweep's tick calls it on a stored row's
    purchases alone, without decoding the rest of its facts."""
    today = policy.calendar.day(now)
    figures = figures_of(bought, today, policy.calendar, policy.window_days)
    if figures is None:
        return old._replace(scores=None, next_due=None, evaluated_day=today), [], None
    thresholds = policy.thresholds
    scores = rfm_scores(
        figures.recency_days,
        figures.window_frequency,
        figures.window_monetary,
        thresholds,
        old.scores,
    )
    rfm = rfm_segment(scores.recency, scores.frequency)
    cpm = cpm_group(
        figures.lifetime_orders,
        figures.tenure_days,
        figures.lifetime_amount,
        figures.recency_days,
        policy.cpm,
    )
    changes: list[SegmentChanged] = []
    version = old.version
    rfm_moved, cpm_moved = rfm != old.rfm, cpm is not None and cpm != old.cpm
    if rfm_moved or cpm_moved:  # the same moment and scores on both
        as_of, wire, tv = _as_of(now), _wire(scores), thresholds.version
        if rfm_moved:
            version += 1
            changes.append(
                _change(customer_id, "rfm", old.rfm, rfm, reason, version, tv, as_of, wire)
            )
        if cpm_moved and cpm is not None:  # (the second test for the type checker)
            version += 1
            changes.append(
                _change(customer_id, "cpm", old.cpm, cpm, reason, version, tv, as_of, wire)
            )
    due = next_due(bought, figures, today, policy)
    standing = new_tuple(
        Standing, (rfm, cpm or old.cpm, scores, version, thresholds.version, due, today)
    )
    return standing, changes, figures


def _change(
    customer_id: str,
    dimension: Literal["rfm", "cpm"],
    before: str | None,
    after: str,
    reason: Reason,
    version: int,
    thresholds_version: int,
    as_of: datetime,
    scores: RfmScores,
) -> SegmentChanged:
    """``SegmentChanged(...)`` without validating again (``schemas.base.assembled``: a
    sweep of every customer makes ~1.35 changes per due one). Every field is valid by
    construction: the id came in validated, the segments and the reason are constants,
    the versions are counted here, the scores are a validated model
    (tests/unit/segmenter/test_standing.py holds it to validation)."""
    fields = {
        "customer_id": customer_id,
        "dimension": dimension,
        "from_segment": before,
        "to_segment": after,
        "reason": reason,
        "version": version,
        "thresholds_version": thresholds_version,
        "as_of": as_of,
        "scores": scores,
        "schema_version": SCHEMA_VERSION,
    }
    return assembled(SegmentChanged, fields, _CHANGE_GIVEN)


_CHANGE_GIVEN = frozenset(SegmentChanged.model_fields) - {"schema_version"}
"""The fields a change counts as set: all but the schema version, left to its default
(as a validated ``SegmentChanged(...)`` without it has them)."""


def _with_standing(state: CustomerState, standing: Standing) -> CustomerState:
    return CustomerState(
        state.customer_id, state.facts, standing, state.absorbed_into, state.survivor_partition
    )


@lru_cache(maxsize=16)  # a sweep stamps every change with the same moment
def _as_of(now: int) -> datetime:
    return from_epoch(now)


@lru_cache(maxsize=125)  # every (R, F, M): frozen, so one instance each is shared
def _wire(scores: Scores) -> RfmScores:
    return RfmScores(recency=scores.recency, frequency=scores.frequency, monetary=scores.monetary)


def next_due(bought: list[Purchase], figures: Figures, today: int, policy: Policy) -> int | None:
    """Start of the first business day after ``today`` on which R, F/M (an order leaving
    the window) or the CPM churn mark can change by time alone; None if never."""
    calendar = policy.calendar
    last_day = calendar.day(figures.last_at)
    soonest = None
    for days in policy.age_marks:
        if last_day + days > today:
            soonest = last_day + days
            break
    if figures.window_frequency:  # oldest first: the first still in the window leaves first
        first_inside = bought[len(bought) - figures.window_frequency].at
        leaves = calendar.day(first_inside) + policy.window_days
        if leaves > today:  # not so only where a day's clock once ran back across midnight
            soonest = leaves if soonest is None else min(soonest, leaves)
    return None if soonest is None else calendar.start(soonest)
