"""The journey engine: ``(state, input, now) -> (state, outputs)``, pure.

Inputs are a customer's events, the time passing (ticks), segment changes, notification
outcomes and merges. Event time decides: an order judged "since entry" by its
``occurred_at`` cancels a cart journey even when it arrives after a reminder went out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import repeat
from operator import attrgetter
from typing import Any

from schemas.notifications import NotificationOutcome
from schemas.segments import SegmentChanged
from services.journey.domain import facts
from services.journey.domain.catalogue import Context
from services.journey.domain.entry import Trigger, enter, key_matches
from services.journey.domain.geofence import observe, should_trigger, stores_containing
from services.journey.domain.outputs import Converted, Exited, Fired, Output, Skipped
from services.journey.domain.policy import local, zone
from services.journey.domain.scenario import Scenario
from services.journey.domain.state import CustomerState, Instance
from services.journey.domain.steps import advance, finish, goto, tz_of


@dataclass(slots=True)
class Result:
    state: CustomerState
    outputs: list[Output] = field(default_factory=list)


def on_event(
    state: CustomerState | None, customer_id: str, event: facts.Event, now: float, ctx: Context
) -> Result:
    state = state if state is not None else CustomerState()
    result = Result(state)
    at = event.occurred_at.timestamp()
    purchase = facts.learn(state, event, at, ctx)
    _resolve_waits(state, customer_id, event.type, at, now, ctx, result.outputs)
    _exit_and_convert(state, event, purchase, at, ctx, result.outputs)
    for scenario in ctx.catalogue.event_triggered(event.type):
        if facts.where_matches(scenario.trigger.where, event):
            trigger = facts.trigger_of(scenario, event, at)
            enter(state, scenario, customer_id, trigger, now, ctx, result.outputs)
    if event.type == "location_reported":
        _visit_stores(state, customer_id, event, at, now, ctx, result.outputs)
    schedule_dates(state, at, ctx)
    prune(state, now, ctx)
    return result


def on_tick(state: CustomerState | None, customer_id: str, now: float, ctx: Context) -> Result:
    state = state if state is not None else CustomerState()
    result = Result(state)
    for journey, due in sorted(state.scheduled.items()):
        scenario = ctx.catalogue.live.get(journey)
        if due > now:
            continue
        del state.scheduled[journey]
        if scenario is not None and scenario.trigger.date is not None:
            result.outputs.append(Fired(journey, now - due))
            year = local(due, tz_of(state, ctx)).year
            trigger = Trigger(event_id=f"date:{journey}:{year}", at=due)
            enter(state, scenario, customer_id, trigger, now, ctx, result.outputs)
    schedule_dates(state, now, ctx)
    due_now = [i for i in state.instances if i.status == "active" and i.due is not None]
    for inst in sorted(due_now, key=lambda i: (i.priority, i.due or 0.0, i.instance_id)):
        if inst.due is None or inst.due > now:
            continue
        scenario = ctx.catalogue.version(inst.journey, inst.version)
        if scenario is None:
            result.outputs.append(
                Skipped(inst.journey, inst.instance_id, None, "unknown_version", now)
            )
            finish(inst)
            continue
        result.outputs.append(Fired(inst.journey, now - inst.due))
        advance(inst, scenario, state, customer_id, now, ctx, result.outputs)
    prune(state, now, ctx)
    return result


def on_segment(
    state: CustomerState | None, customer_id: str, change: SegmentChanged, now: float, ctx: Context
) -> Result:
    state = state if state is not None else CustomerState()
    result = Result(state)
    if change.dimension == "rfm":
        state.rfm = change.to_segment
    else:
        state.cpm = change.to_segment
    at = change.as_of.timestamp()
    for scenario in ctx.catalogue.with_trigger("segment"):
        rule = scenario.trigger.segment
        assert rule is not None
        if rule.dimension == change.dimension and change.to_segment in rule.enter:
            if change.from_segment == change.to_segment:
                continue
            event_id = f"segment:{change.dimension}:{change.version}"
            enter(state, scenario, customer_id, Trigger(event_id, at), now, ctx, result.outputs)
    return result


def on_outcome(state: CustomerState | None, outcome: NotificationOutcome) -> Result:
    """A channel carried the message (per-channel caps count it there), or nothing did
    (it no longer counts against any cap)."""
    state = state if state is not None else CustomerState()
    for record in state.sends:
        if record.notification_id != outcome.notification_id:
            continue
        if outcome.status in ("sent", "delivered") and outcome.channel is not None:
            record.channel = outcome.channel.value
        elif outcome.status in ("suppressed", "failed", "expired"):
            state.sends.remove(record)
        break
    return Result(state)


def merge(
    survivor: CustomerState | None, absorbed: CustomerState, now: float, ctx: Context
) -> Result:
    """The absorbed customer's journeys continue under the survivor; where both are in
    the same journey for the same key, the earlier entry goes on and the other stops."""
    state = survivor if survivor is not None else CustomerState()
    result = Result(state)
    facts.fold(state, absorbed)
    kept: dict[tuple[str, str | None], Instance] = {}
    for inst in sorted(
        [*state.instances, *absorbed.instances], key=lambda i: (i.entered_at, i.instance_id)
    ):
        slot = (inst.journey, inst.key)
        if inst.status == "active" and slot in kept:
            finish(inst)
            result.outputs.append(
                Exited(inst.journey, inst.instance_id, inst.variant, "merged", now)
            )
        elif inst.status == "active":
            kept[slot] = inst
    known = {i.instance_id for i in state.instances}
    state.instances.extend(i for i in absorbed.instances if i.instance_id not in known)
    for journey, entries in absorbed.entries.items():
        mine = state.entries.get(journey)
        if mine is None or entries.last_at > mine.last_at:
            count = entries.count + (mine.count if mine else 0)
            state.entries[journey] = type(entries)(count, entries.last_at, entries.last_event_id)
        else:
            mine.count += entries.count
    prune(state, now, ctx)
    return result


def _resolve_waits(
    state: CustomerState,
    customer_id: str,
    event_type: str,
    at: float,
    now: float,
    ctx: Context,
    out: list[Output],
) -> None:
    for inst in list(state.instances):
        if inst.status != "active":
            continue
        scenario = ctx.catalogue.version(inst.journey, inst.version)
        if scenario is None or inst.step >= len(scenario.steps):
            continue
        rule = scenario.steps[inst.step].wait_for
        if rule is None or inst.due is None or event_type not in rule.events or at < inst.at:
            continue
        if at > inst.due:
            continue  # happened after the timeout: the timeout path already applies
        inst.at = at
        goto(inst, scenario, rule.then)
        advance(inst, scenario, state, customer_id, now, ctx, out)


def _exit_and_convert(
    state: CustomerState,
    event: facts.Event,
    purchase: facts.PurchaseFact | None,
    at: float,
    ctx: Context,
    out: list[Output],
) -> None:
    kind = event.type
    for inst in state.instances:
        scenario = ctx.catalogue.version(inst.journey, inst.version)
        if scenario is None:
            continue
        exits = inst.status == "active" and kind in scenario.exit.events
        goal = scenario.goal
        converts = goal is not None and not inst.converted and kind in goal.events
        if not (exits or converts):
            continue  # (most events: nothing to judge)
        if purchase is not None and purchase.order_id == inst.data.get("order_id"):
            continue  # the order that started this journey (delivered again) ends nothing
        since_entry = at >= inst.entered_at - scenario.exit.grace
        if exits and since_entry:
            key = facts.value_at(event.payload, scenario.entry.key) if scenario.entry.key else None
            if key_matches(inst.key, key if isinstance(key, str) else None, scenario):
                finish(inst)
                out.append(Exited(inst.journey, inst.instance_id, inst.variant, f"exit:{kind}", at))
        if goal is not None and converts and since_entry and at <= inst.entered_at + goal.window:
            inst.converted = True
            recovered = inst.first_sent_at is not None and at >= inst.first_sent_at
            order_id = purchase.order_id if purchase else None
            amount = purchase.amount if purchase else 0
            out.append(
                Converted(
                    inst.journey, inst.instance_id, inst.variant, order_id, amount, at, recovered
                )
            )


def _visit_stores(
    state: CustomerState,
    customer_id: str,
    event: facts.Event,
    at: float,
    now: float,
    ctx: Context,
    out: list[Output],
) -> None:
    payload: Any = event.payload
    for scenario in ctx.catalogue.with_trigger("geofence"):
        rule = scenario.trigger.geofence
        assert rule is not None
        inside = stores_containing(
            ctx.stores, payload.latitude, payload.longitude, payload.accuracy_m, rule
        )
        for store in inside:
            visit = observe(state.visits.get(store.store_id), at, rule)
            state.visits[store.store_id] = visit
            if should_trigger(visit, at, rule, store):
                visit.last_triggered = at
                data = {"store_id": store.store_id, "store_name": store.name}
                trigger = Trigger(f"{event.event_id}:{store.store_id}", at, store.store_id, 0, data)
                enter(state, scenario, customer_id, trigger, now, ctx, out)


def schedule_dates(state: CustomerState, after: float, ctx: Context) -> None:
    """Make sure every date-triggered journey has its next date in the table."""
    if state.birthday is None:
        return
    for scenario in ctx.catalogue.with_trigger("date"):
        if scenario.id not in state.scheduled:
            state.scheduled[scenario.id] = next_birthday(
                state.birthday, after, scenario, tz_of(state, ctx)
            )


def next_birthday(birthday: str, after: float, scenario: Scenario, tz: str) -> float:
    rule = scenario.trigger.date
    assert rule is not None
    month, day = (int(p) for p in birthday.split("-"))
    year = local(after, tz).year
    for candidate_year in (year, year + 1, year + 2):
        try:
            day_of = date(candidate_year, month, day)
        except ValueError:  # 29 February in a common year: celebrate on the 28th
            day_of = date(candidate_year, month, 28)
        send_day = day_of - timedelta(days=rule.days_before)
        at = datetime.combine(send_day, rule.at, zone(tz)).timestamp()
        if at > after:
            return at
    raise AssertionError("a birthday recurs within two years")


def prune(state: CustomerState, now: float, ctx: Context) -> None:
    """Forget what no rule can ask about any more: finished measurement windows, sends
    older than the longest cap window, all but the last few purchases."""
    if not all(map(_kept, state.instances, repeat(now))):  # (lists rebuilt only to drop)
        state.instances = [i for i in state.instances if _kept(i, now)]
    horizon = now - ctx.policy.longest_cap_window()
    if any(s.at <= horizon for s in state.sends):
        state.sends = [s for s in state.sends if s.at > horizon]
    purchases = state.purchases
    if len(purchases) > 1:
        purchases.sort(key=_purchase_time)  # appended in arrival order: sorted as a rule
        del purchases[: -facts.KEEP_PURCHASES]


def _kept(inst: Instance, now: float) -> bool:
    """Active, or inside a measurement window still open."""
    return inst.status == "active" or (
        inst.goal_until is not None and inst.goal_until > now and not inst.converted
    )


_purchase_time = attrgetter("at")


def as_datetime(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)
