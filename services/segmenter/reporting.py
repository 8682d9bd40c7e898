"""Reports from the profile view: load every customer's purchases, compute, render."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import redis.asyncio as aioredis
from rich.table import Table

from services.segmenter.adapters.profiles import read_histories
from services.segmenter.domain import reports
from services.segmenter.domain.reports import History, Lens, Report
from services.segmenter.domain.standing import Policy

ReportFunction = Callable[[list[History], Lens], Report]


def report_functions(policy: Policy, f2_within_days: int) -> dict[str, ReportFunction]:
    return {
        "deciles": lambda h, lens: reports.deciles(h, lens, policy.window_days),
        "cpm": lambda h, lens: reports.cpm_distribution(h, lens, policy.cpm),
        "f2": lambda h, lens: reports.f2_conversion(h, lens, f2_within_days),
        "repeat": reports.repeat_rate,
        "churn": lambda h, lens: reports.churn_rate(h, lens, rules=policy.cpm),
        "ltv": reports.realised_ltv,
    }


REPORT_NAMES = ("deciles", "cpm", "f2", "repeat", "churn", "ltv")


async def build_report(
    redis: aioredis.Redis,
    namespace: str,
    name: str,
    as_of: date,
    policy: Policy,
    f2_within_days: int = 90,
) -> Report:
    functions = report_functions(policy, f2_within_days)
    if name not in functions:
        raise KeyError(name)
    histories = [history async for history in read_histories(redis, namespace)]
    return functions[name](histories, Lens(as_of.toordinal(), policy.calendar))


def render(report: Report) -> Table:
    table = Table(title=f"{report.name} as of {report.as_of}")
    for column in report.columns:
        table.add_column(column, justify="left" if column in {"group", "cohort"} else "right")
    for row in report.rows:
        table.add_row(*(_cell(value) for value in row))
    if report.summary:
        table.caption = "  ".join(f"{k}: {_cell(v)}" for k, v in report.summary.items())
    return table


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.2%}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
