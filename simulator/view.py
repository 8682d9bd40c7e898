"""The live view: one screen of rich tables built from scrapes, lag and simulator counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from simulator.observe import Scrape

DASH = "-"
STAGES: tuple[tuple[str, str, str, str | None], ...] = (
    ("gateway", "accepted", "kizuna_gateway_events_accepted_total", None),
    ("identity", "resolved", "kizuna_identity_events_resolved_total", "identity"),
    ("segmenter", "applied", "kizuna_segmenter_events_applied_total", "segmenter"),
    ("journey", "events", "kizuna_journey_events_total", "journey"),
    ("notifier", "sends", "kizuna_notifier_sends_total", "notifier"),
)


@dataclass
class Observation:
    at: float
    scrapes: dict[str, Scrape]
    lag: dict[str, int | None]
    sim: dict[str, Any] | None


@dataclass
class Rates:
    """Per-second rates between the previous observation and this one."""

    previous: dict[str, tuple[float, float]] = field(default_factory=dict)

    def rate(self, key: str, value: float | None, at: float) -> float | None:
        if value is None:
            return None
        before = self.previous.get(key)
        self.previous[key] = (at, value)
        if before is None or at <= before[0]:
            return None
        return max(0.0, (value - before[1]) / (at - before[0]))


def fmt(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return DASH
    return f"{value:,.{digits}f}"


def render(obs: Observation, rates: Rates, title: str) -> Group:
    return Group(
        Text(title, style="bold cyan"),
        _header(obs),
        _pipeline(obs, rates),
        _side_by_side(_identity(obs), _segments(obs)),
        _journeys(obs),
        _side_by_side(_messages(obs), _deadletters(obs)),
    )


def _header(obs: Observation) -> Text:
    sim = obs.sim
    if sim is None:
        return Text("simulator: -", style="dim")
    at = datetime.fromisoformat(sim["simulated_at"]).strftime("%Y-%m-%d %H:%M")
    counts = sim.get("counts", {})
    failed = sum(v for k, v in counts.items() if k.endswith("failed"))
    sessions = ", ".join(f"{k} {v:,}" for k, v in sim.get("sessions", {}).items())
    return Text(
        f"shop clock {at} · {sim['rate']:g} events/s · ×{sim['speed']:g} · "
        f"running {sim['elapsed_s']:.0f}s · sent {counts.get('emitted', 0):,} "
        f"(failed {failed:,}) · sessions: {sessions}",
        style="dim",
    )


def _pipeline(obs: Observation, rates: Rates) -> Table:
    table = Table(title="pipeline", title_justify="left", expand=False)
    for column in ("stage", "", "total", "per s", "lag"):
        table.add_column(column, justify="left" if column in ("stage", "") else "right")
    sent = obs.sim["counts"].get("emitted") if obs.sim else None
    table.add_row("simulator", "emitted", fmt(sent), fmt(rates.rate("sim", sent, obs.at), 1), "")
    for worker, verb, metric, group in STAGES:
        scrape = obs.scrapes.get(worker, Scrape(None))
        total = scrape.total(metric)
        lag = obs.lag.get(group) if group else None
        per_s = rates.rate(worker, total, obs.at)
        table.add_row(worker, verb, fmt(total), fmt(per_s, 1), fmt(lag) if group else "")
    gateway = obs.scrapes.get("gateway", Scrape(None))
    rejected = gateway.total("kizuna_gateway_events_rejected_total")
    duplicate = gateway.total("kizuna_gateway_events_duplicate_total")
    table.add_row("gateway", "rejected / dup", f"{fmt(rejected)} / {fmt(duplicate)}", "", "")
    return table


def _identity(obs: Observation) -> Table:
    scrape = obs.scrapes.get("identity", Scrape(None))
    table = Table(title="identity", title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    for label, metric in (
        ("customers created", "kizuna_identity_customers_created_total"),
        ("merges", "kizuna_identity_merges_total"),
        ("splits", "kizuna_identity_splits_total"),
        ("conflicts", "kizuna_identity_conflicts_total"),
        ("graph customers", "kizuna_identity_graph_customers"),
        ("graph identifiers", "kizuna_identity_graph_identifiers"),
    ):
        table.add_row(label, fmt(scrape.total(metric)))
    return table


def segment_counts(scrape: Scrape) -> dict[tuple[str, str], float]:
    """Customers per (dimension, segment): arrivals minus departures over the transitions."""
    net: dict[tuple[str, str], float] = {}
    name = "kizuna_segmenter_segment_transitions_total"
    for (dimension, before, after), n in scrape.by(
        name, "dimension", "from_segment", "to_segment"
    ).items():
        net[(dimension, after)] = net.get((dimension, after), 0.0) + n
        if before:
            net[(dimension, before)] = net.get((dimension, before), 0.0) - n
    return {k: v for k, v in sorted(net.items()) if v > 0}


def _segments(obs: Observation) -> Table:
    scrape = obs.scrapes.get("segmenter", Scrape(None))
    table = Table(title="segments", title_justify="left")
    for column in ("dimension", "segment", "customers"):
        table.add_column(column, justify="right" if column == "customers" else "left")
    counts = segment_counts(scrape)
    for (dimension, segment), n in counts.items():
        table.add_row(dimension, segment, fmt(n))
    if not counts:
        table.add_row(DASH, DASH, DASH)
    return table


def _journeys(obs: Observation) -> Table:
    """Per journey: entries, requested messages, conversions; recovered carts; why skipped."""
    scrape = obs.scrapes.get("journey", Scrape(None))
    pending = scrape.total("kizuna_journey_timers_pending")
    table = Table(title=f"journeys (pending timers {fmt(pending)})", title_justify="left")
    for column in ("journey", "entered", "requested", "converted", "revenue ¥"):
        table.add_column(column, justify="left" if column == "journey" else "right")
    entered = scrape.by("kizuna_journey_entered_total", "journey")
    requested = scrape.by("kizuna_journey_notifications_requested_total", "journey")
    converted = scrape.by("kizuna_journey_conversions_total", "journey")
    revenue = scrape.by("kizuna_journey_conversion_revenue_yen_total", "journey")
    names = sorted({k[0] for k in (*entered, *requested, *converted)})
    for name in names:
        key = (name,)
        table.add_row(
            name,
            fmt(entered.get(key)),
            fmt(requested.get(key)),
            fmt(converted.get(key)),
            fmt(revenue.get(key)),
        )
    if not names:
        table.add_row(DASH, DASH, DASH, DASH, DASH)
    recovered = scrape.total("kizuna_journey_recovered_total", journey="cart_abandonment")
    revenue_back = scrape.total(
        "kizuna_journey_recovered_revenue_yen_total", journey="cart_abandonment"
    )
    caption = [f"recovered carts {fmt(recovered)} (¥{fmt(revenue_back)})"]
    skipped = scrape.by("kizuna_journey_skipped_total", "reason")
    if skipped:
        reasons = ", ".join(f"{r} {fmt(n)}" for (r,), n in sorted(skipped.items()))
        caption.append(f"skipped or deferred: {reasons}")
    table.caption = "\n".join(caption)
    return table


def _messages(obs: Observation) -> Table:
    scrape = obs.scrapes.get("notifier", Scrape(None))
    table = Table(title="messages", title_justify="left")
    for column in ("channel", "outcome", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    rows = scrape.by("kizuna_notifier_sends_total", "channel", "outcome")
    rows |= {
        ("suppressed", r): n
        for (r,), n in scrape.by("kizuna_notifier_suppressed_total", "reason").items()
    }
    consents = scrape.by("kizuna_notifier_consent_changes_total", "channel", "state")
    rows |= {(f"consent {c}", s): n for (c, s), n in consents.items()}
    for (channel, outcome), n in sorted(rows.items()):
        table.add_row(channel, outcome, fmt(n))
    if not rows:
        table.add_row(DASH, DASH, DASH)
    return table


def _deadletters(obs: Observation) -> Table:
    table = Table(title="dead letters", title_justify="left")
    for column in ("worker", "reason", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    any_row = False
    for worker, scrape in obs.scrapes.items():
        for (reason,), n in scrape.by("kizuna_deadletters_total", "reason").items():
            table.add_row(worker, reason, fmt(n))
            any_row = True
    if not any_row:
        up = any(scrape.up for scrape in obs.scrapes.values())
        table.add_row(DASH, DASH, "0" if up else DASH)
    return table


def _side_by_side(*tables: Table) -> Table:
    grid = Table.grid(padding=(0, 4))
    for _ in tables:
        grid.add_column(vertical="top")
    grid.add_row(*tables)
    return grid
