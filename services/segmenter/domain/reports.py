"""Marketer reports as of a business day, computed from each customer's purchases.

Every function takes the purchase histories and the as-of day and returns a
:class:`Report` (columns + rows + summary) that the CLI and HTTP render as JSON or a
table. Only purchases placed on or before the as-of day count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.segmenter.domain.calendar import BusinessCalendar
from services.segmenter.domain.figures import Purchase
from services.segmenter.domain.scoring import CPM_GROUPS, CpmRules, cpm_group

DEFAULT_RULES = CpmRules()


@dataclass(frozen=True, slots=True)
class History:
    customer_id: str
    purchases: tuple[Purchase, ...]  # oldest first


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    as_of: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "report": self.name,
            "as_of": self.as_of,
            "rows": [dict(zip(self.columns, row, strict=True)) for row in self.rows],
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class Lens:
    """The as-of day and the calendar every report judges days with."""

    as_of: int
    calendar: BusinessCalendar

    def days(self, history: History) -> list[tuple[int, int]]:
        """(business day, net yen) of the purchases up to and including the as-of day."""
        day = self.calendar.day
        return [(day(p.at), p.net) for p in history.purchases if day(p.at) <= self.as_of]

    @property
    def label(self) -> str:
        return date.fromordinal(self.as_of).isoformat()


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def ntile(count: int, tiles: int = 10) -> list[int]:
    """Group sizes of SQL NTILE: the first ``count % tiles`` groups get one more row."""
    base, extra = divmod(count, tiles)
    return [base + (1 if index < extra else 0) for index in range(tiles)]


def deciles(histories: Iterable[History], lens: Lens, window_days: int = 365) -> Report:
    """Customers by net amount in the trailing window (desc, then id) in ten NTILE groups."""
    amounts = []
    for history in histories:
        spent = sum(net for day, net in lens.days(history) if lens.as_of - day < window_days)
        if any(lens.as_of - day < window_days for day, _ in lens.days(history)):
            amounts.append((-spent, history.customer_id))
    amounts.sort()
    total = -sum(amount for amount, _ in amounts)
    rows, start, cumulative = [], 0, 0
    for decile, size in enumerate(ntile(len(amounts)), start=1):
        group = [-amount for amount, _ in amounts[start : start + size]]
        start += size
        revenue = sum(group)
        cumulative += revenue
        rows.append((decile, size, revenue, rate(revenue, total), rate(cumulative, total)))
    columns = ("decile", "customers", "revenue_yen", "share", "cumulative_share")
    return Report("deciles", lens.label, columns, tuple(rows), {"revenue_yen": total})


def cpm_distribution(
    histories: Iterable[History], lens: Lens, rules: CpmRules = DEFAULT_RULES
) -> Report:
    counts: Counter[str] = Counter()
    for history in histories:
        days = lens.days(history)
        if not days:
            continue
        first, last = days[0][0], days[-1][0]
        group = cpm_group(
            len(days), last - first, sum(n for _, n in days), lens.as_of - last, rules
        )
        counts[group or ""] += 1
    total = sum(counts.values())
    rows = tuple((group, counts[group], rate(counts[group], total)) for group in CPM_GROUPS)
    return Report("cpm", lens.label, ("group", "customers", "share"), rows, {"customers": total})


def _cohort(day: int) -> str:
    return date.fromordinal(day).strftime("%Y-%m")


def f2_conversion(histories: Iterable[History], lens: Lens, within_days: int = 90) -> Report:
    """Second-time buyers ÷ first-time buyers per first-purchase month, the second
    purchase within ``within_days`` of the first (F2転換率)."""
    firsts: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    for history in histories:
        days = lens.days(history)
        if not days:
            continue
        cohort = _cohort(days[0][0])
        firsts[cohort] += 1
        if len(days) >= 2 and days[1][0] - days[0][0] <= within_days:
            seconds[cohort] += 1
    rows = tuple(
        (cohort, firsts[cohort], seconds[cohort], rate(seconds[cohort], firsts[cohort]))
        for cohort in sorted(firsts)
    )
    summary = {
        "within_days": within_days,
        "rate": rate(sum(seconds.values()), sum(firsts.values())),
    }
    columns = ("cohort", "first_buyers", "second_buyers", "f2_rate")
    return Report("f2", lens.label, columns, rows, summary)


def repeat_rate(histories: Iterable[History], lens: Lens) -> Report:
    """Customers with two or more purchases ÷ customers with at least one."""
    buyers = repeaters = 0
    for history in histories:
        count = len(lens.days(history))
        buyers += count >= 1
        repeaters += count >= 2
    row = (buyers, repeaters, rate(repeaters, buyers))
    columns = ("buyers", "repeaters", "repeat_rate")
    return Report("repeat", lens.label, columns, (row,), {"rate": row[2]})


def churn_rate(
    histories: Iterable[History], lens: Lens, period_days: int = 30, rules: CpmRules = DEFAULT_RULES
) -> Report:
    """Active customers at the period's start who are churned at its end ÷ active at start."""
    start = lens.as_of - period_days
    active = churned = 0
    for history in histories:
        days = [day for day, _ in lens.days(history)]
        before = [day for day in days if day <= start]
        if not before or start - before[-1] >= rules.churn_days:
            continue
        active += 1
        churned += lens.as_of - days[-1] >= rules.churn_days
    row = (date.fromordinal(start).isoformat(), active, churned, rate(churned, active))
    columns = ("period_start", "active_at_start", "churned", "churn_rate")
    return Report("churn", lens.label, columns, (row,), {"rate": row[3]})


def realised_ltv(
    histories: Iterable[History], lens: Lens, horizons_days: tuple[int, ...] = (365, 730)
) -> Report:
    """Net revenue per customer within 12 / 24 months (365 / 730 days) of the first
    purchase, per first-purchase month; None until every customer of the cohort has
    had the full horizon by the as-of day."""
    size: Counter[str] = Counter()
    revenue: dict[int, Counter[str]] = {h: Counter() for h in horizons_days}
    latest_first: dict[str, int] = {}
    for history in histories:
        days = lens.days(history)
        if not days:
            continue
        first = days[0][0]
        cohort = _cohort(first)
        size[cohort] += 1
        latest_first[cohort] = max(latest_first.get(cohort, first), first)
        for horizon in horizons_days:
            revenue[horizon][cohort] += sum(net for day, net in days if day - first < horizon)
    rows = []
    for cohort in sorted(size):
        mature = [lens.as_of - latest_first[cohort] >= h for h in horizons_days]
        values = [
            round(revenue[h][cohort] / size[cohort]) if ok else None
            for h, ok in zip(horizons_days, mature, strict=True)
        ]
        rows.append((cohort, size[cohort], *values))
    columns = ("cohort", "customers", *(f"ltv_{h // 365 * 12}m_yen" for h in horizons_days))
    return Report("ltv", lens.label, columns, tuple(rows))
