"""RFM scores, the R×F segment grid and the CPM groups (domain.md, RFM and CPM).

Scores are 1–5. Recency uses *edges* in days (``days <= edge`` keeps the better score),
frequency and monetary use *cuts* (``value >= cut`` earns the next score). Thresholds are
a versioned snapshot: fixed bands (version 0) or population quantiles. Hysteresis keeps
a customer's previous score while the value sits within ``hysteresis`` (a fraction of the
cut) of the cut between the two scores, so customers at a cut point do not flap.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from schemas.base import new_tuple

RFM_SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About to Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
)

_LOW_R = ("Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them")
# Row = R score, column = F score 1..5; exactly the grid of domain.md.
RFM_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("New Customers", "Potential Loyalist", "Potential Loyalist", "Champions", "Champions"),
    4: ("Promising", "Potential Loyalist", "Potential Loyalist", "Loyal", "Loyal"),
    3: ("About to Sleep", "About to Sleep", "Need Attention", "Loyal", "Loyal"),
    2: _LOW_R,
    1: _LOW_R,
}

CPM_STAGES = ("初回客", "よちよち客", "コツコツ客", "流行客", "優良客")
CPM_ACTIVE, CPM_CHURNED = "現役", "離脱"
_GROUPS_OF = {stage: (f"{stage}/{CPM_ACTIVE}", f"{stage}/{CPM_CHURNED}") for stage in CPM_STAGES}
"""A stage's (active, churned) groups: one string each, not one per call (a sweep asks
per due customer, and compares the result with the stored group)."""
CPM_GROUPS = tuple(group for pair in _GROUPS_OF.values() for group in pair)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """One versioned threshold snapshot; version 0 is the configured fixed bands."""

    version: int = 0
    recency_edges: tuple[float, ...] = (30, 90, 180, 365)
    frequency_cuts: tuple[float, ...] = (2, 3, 5, 10)
    monetary_cuts: tuple[float, ...] = (5_000, 20_000, 50_000, 100_000)
    hysteresis: float = 0.0

    def __post_init__(self) -> None:
        for name in ("recency_edges", "frequency_cuts", "monetary_cuts"):
            bounds = getattr(self, name)
            if list(bounds) != sorted(bounds):
                raise ValueError(f"{name} must be in ascending order: {bounds!r}")


@dataclass(frozen=True, slots=True)
class CpmRules:
    churn_days: int = 240
    young_tenure_days: int = 90
    mature_tenure_days: int = 210
    big_spender_yen: int = 70_000


class Scores(NamedTuple):
    recency: int
    frequency: int
    monetary: int


def score_at_least(value: float, cuts: tuple[float, ...]) -> int:
    """1 + the number of cuts ``value`` reaches (F and M; cuts ascending)."""
    return 1 + bisect_right(cuts, value)


def score_at_most(days: float, edges: tuple[float, ...]) -> int:
    """5 minus the number of edges ``days`` has passed (R: fewer days is better; edges
    ascending)."""
    return 1 + len(edges) - bisect_left(edges, days)


def sticky(
    raw: int, previous: int | None, value: float, bounds: tuple[float, ...], margin: float
) -> int:
    """``raw``, unless it is one step from ``previous`` and ``value`` is within the
    hysteresis margin of the bound between them; then the previous score stays."""
    if previous is None or margin <= 0 or abs(raw - previous) != 1:
        return raw
    for bound in bounds:
        if abs(value - bound) <= abs(bound) * margin:
            return previous
    return raw


def rfm_scores(
    recency_days: int,
    frequency: int,
    monetary: int,
    thresholds: Thresholds,
    previous: Scores | None = None,
) -> Scores:
    t, h = thresholds, thresholds.hysteresis
    r = score_at_most(recency_days, t.recency_edges)
    f = score_at_least(frequency, t.frequency_cuts)
    m = score_at_least(monetary, t.monetary_cuts)
    if previous is None or h <= 0:  # no margin: sticky would give the raw scores
        return new_tuple(Scores, (r, f, m))
    return Scores(
        sticky(r, previous.recency, recency_days, t.recency_edges, h),
        sticky(f, previous.frequency, frequency, t.frequency_cuts, h),
        sticky(m, previous.monetary, monetary, t.monetary_cuts, h),
    )


def rfm_segment(recency: int, frequency: int) -> str:
    """The segment of an R×F score pair (each 1–5): every pair has exactly one."""
    return RFM_GRID[recency][frequency - 1]


def cpm_group(
    lifetime_orders: int, tenure_days: int, lifetime_amount: int, recency_days: int, rules: CpmRules
) -> str | None:
    """The CPM group (``stage/現役|離脱``), checked in the order of domain.md; None
    before the first purchase."""
    if lifetime_orders < 1:
        return None
    if lifetime_orders == 1:
        stage = "初回客"
    elif tenure_days < rules.young_tenure_days:
        stage = "よちよち客"
    elif lifetime_amount < rules.big_spender_yen:
        stage = "コツコツ客"
    elif tenure_days < rules.mature_tenure_days:
        stage = "流行客"
    else:
        stage = "優良客"
    return _GROUPS_OF[stage][recency_days >= rules.churn_days]


@lru_cache(maxsize=64)  # one per threshold version in use: a sweep asks per customer
def recency_boundaries(thresholds: Thresholds) -> tuple[int, ...]:
    """Days since the last purchase at which the R score may change with no new event
    (the day after each edge, and after each edge widened by hysteresis)."""
    days = set()
    for edge in thresholds.recency_edges:
        days.add(math.floor(edge) + 1)
        if thresholds.hysteresis > 0:
            days.add(math.floor(edge * (1 + thresholds.hysteresis)) + 1)
    return tuple(sorted(days))
