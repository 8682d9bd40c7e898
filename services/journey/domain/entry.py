"""Entering a journey: audience, re-entry policy, per-key instances, holdout, and the
"already purchased" check that keeps a late cart event from starting a cart journey."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.journey.domain.catalogue import Context
from services.journey.domain.outputs import Entered, Output, Skipped
from services.journey.domain.policy import in_holdout, short_id
from services.journey.domain.scenario import Audience, Scenario
from services.journey.domain.state import CustomerState, Entries, Instance
from services.journey.domain.steps import advance

MAX_ITEMS = 5


@dataclass(frozen=True, slots=True)
class Trigger:
    """One reason to enter: a raw event, a segment change, a date, a store visit."""

    event_id: str
    at: float
    key: str | None = None
    value: int = 0
    data: dict[str, Any] = field(default_factory=dict)


def grow(data: dict[str, Any], more: dict[str, Any]) -> None:
    """Another item went into the same cart: list it (a few) and add to the total."""
    items = data.setdefault("items", [])
    items.extend(more.get("items", [])[: max(0, MAX_ITEMS - len(items))])
    data["total"] = data.get("total", 0) + more.get("total", 0)


def audience_allows(audience: Audience, state: CustomerState) -> bool:
    a = audience
    return (
        (not a.segments or state.rfm in a.segments)
        and (not a.cpm or state.cpm in a.cpm)
        and (a.customers == "any" or (state.orders == 0) == (a.customers == "new"))
        and (a.min_orders is None or state.orders >= a.min_orders)
        and (a.max_orders is None or state.orders <= a.max_orders)
        and (not a.consent or any(state.consents.values()))
    )


def key_matches(wanted: str | None, seen: str | None, scenario: Scenario) -> bool:
    return not scenario.exit.match_key or wanted is None or seen is None or wanted == seen


def bought_since(
    state: CustomerState, scenario: Scenario, at: float, key: str | None, trigger_order: Any
) -> bool:
    """A purchase that exits this journey already happened at or after entry (minus grace):
    the order reached us before the cart event did. The triggering order itself is not one."""
    return any(
        p.type in scenario.exit.events
        and p.order_id != trigger_order
        and p.at >= at - scenario.exit.grace
        and key_matches(key, p.cart_id, scenario)
        for p in state.purchases
    )


def enter(
    state: CustomerState,
    scenario: Scenario,
    customer_id: str,
    trigger: Trigger,
    now: float,
    ctx: Context,
    out: list[Output],
) -> None:
    previous = state.entries.get(scenario.id)
    if previous is not None and previous.last_event_id == trigger.event_id:
        return  # the same trigger delivered again
    active = state.active(scenario.id)
    if trigger.key is not None:
        same_key = [i for i in active if i.key == trigger.key]
        if same_key:  # the cart grew: more at stake, no new journey
            same_key[0].value += trigger.value
            grow(same_key[0].data, trigger.data)
            return
    elif active:
        return  # already inside
    reason = _refusal(state, scenario, previous, trigger)
    if reason is not None:
        out.append(Skipped(scenario.id, None, None, reason, trigger.at))
        return
    holdout = in_holdout(ctx.policy, customer_id, scenario.id, scenario.holdout)
    inst = Instance(
        journey=scenario.id,
        version=scenario.version,
        instance_id=short_id("i", scenario.id, customer_id, trigger.event_id),
        entered_at=trigger.at,
        at=trigger.at,
        key=trigger.key,
        variant="holdout" if holdout else "default",
        priority=scenario.priority,
        value=trigger.value,
        data=dict(trigger.data),
        goal_until=trigger.at + scenario.goal.window if scenario.goal else None,
    )
    count = previous.count if previous else 0
    state.entries[scenario.id] = Entries(count + 1, trigger.at, trigger.event_id)
    state.instances.append(inst)
    out.append(
        Entered(scenario.id, scenario.version, inst.instance_id, inst.variant, inst.value, inst.at)
    )
    advance(inst, scenario, state, customer_id, now, ctx, out)


def _refusal(
    state: CustomerState, scenario: Scenario, previous: Entries | None, trigger: Trigger
) -> str | None:
    entry = scenario.entry
    if not audience_allows(scenario.audience, state):
        return "audience"
    if previous is not None:
        if entry.policy == "once":
            return "entered_before"
        if entry.policy == "cooldown" and trigger.at - previous.last_at < entry.cooldown:
            return "cooldown"
        if entry.max_entries is not None and previous.count >= entry.max_entries:
            return "max_entries"
    if bought_since(state, scenario, trigger.at, trigger.key, trigger.data.get("order_id")):
        return "exited"
    return None
