"""Moving one journey instance through its steps until it waits, ends or sends.

Times are scheduled times, not processing times: a step reached at ``inst.at`` waits
until ``inst.at + wait``, so a late tick never shifts the rest of the schedule, and a
replay computes the same schedule and the same notification ids.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.channels import Channel, Purpose
from schemas.notifications import SendNotification
from services.journey.domain.catalogue import Context
from services.journey.domain.outputs import Output, Requested, Skipped
from services.journey.domain.policy import (
    cap_free_at,
    next_local_time,
    pick_variant,
    quiet_until,
    short_id,
)
from services.journey.domain.scenario import Condition, QuietHours, Scenario, Step
from services.journey.domain.state import CustomerState, Instance, SendRecord

MAX_HOPS = 64  # a scenario looping without a wait is stopped, not spun forever


def tz_of(state: CustomerState, ctx: Context) -> str:
    return state.timezone or ctx.policy.timezone


def goto(inst: Instance, scenario: Scenario, target: str | None) -> None:
    inst.step = scenario.index_of(target) if target is not None else inst.step + 1
    inst.due = None


def finish(inst: Instance) -> None:
    inst.status, inst.due = "done", None


def advance(
    inst: Instance,
    scenario: Scenario,
    state: CustomerState,
    customer_id: str,
    now: float,
    ctx: Context,
    out: list[Output],
) -> None:
    """Run ``inst`` forward as far as ``now`` allows."""
    for _ in range(MAX_HOPS):
        if inst.status != "active":
            return
        if inst.step >= len(scenario.steps):
            finish(inst)
            return
        step = scenario.steps[inst.step]
        if inst.due is not None:
            if inst.due > now:
                return
            if _resolve_due(inst, scenario, step):
                continue
        _enter_step(inst, scenario, step, state, customer_id, now, ctx, out)
    out.append(Skipped(scenario.id, inst.instance_id, None, "loop_without_wait", inst.at))
    finish(inst)


def _resolve_due(inst: Instance, scenario: Scenario, step: Step) -> bool:
    """A due time passed: True if that moved the instance on (wait over, timeout)."""
    inst.at, inst.due = inst.due or inst.at, None
    if step.wait is not None or step.wait_until is not None:
        goto(inst, scenario, None)
        return True
    if step.wait_for is not None:
        goto(inst, scenario, step.wait_for.on_timeout)
        return True
    return False  # a deferred send: evaluate it again now


def _enter_step(
    inst: Instance,
    scenario: Scenario,
    step: Step,
    state: CustomerState,
    customer_id: str,
    now: float,
    ctx: Context,
    out: list[Output],
) -> None:
    if step.wait is not None:
        inst.due = inst.at + step.wait
    elif step.wait_until is not None:
        rule = step.wait_until
        inst.due = next_local_time(inst.at, rule.days, rule.time, tz_of(state, ctx))
    elif step.wait_for is not None:
        inst.due = inst.at + step.wait_for.timeout
    elif step.branch is not None:
        held = holds(step.branch.condition, state, inst)
        goto(inst, scenario, step.branch.then if held else step.branch.otherwise)
    elif step.split is not None:
        variant = pick_variant(ctx.policy, customer_id, scenario.id, step.split.variants)
        if not inst.holdout:
            inst.variant = variant.name
        goto(inst, scenario, variant.goto)
    elif step.send is not None:
        deferred = deliver(inst, scenario, step, state, customer_id, now, ctx, out)
        if deferred is None:
            goto(inst, scenario, None)
        else:
            inst.due = deferred
    else:
        finish(inst)


def holds(condition: Condition, state: CustomerState, inst: Instance) -> bool:
    c = condition
    checks = [
        c.segment_in is None or state.rfm in c.segment_in,
        c.cpm_in is None or state.cpm in c.cpm_in,
        c.min_orders is None or state.orders >= c.min_orders,
        c.max_orders is None or state.orders <= c.max_orders,
        c.consented is None or state.consents.get(c.consented) is True,
        c.event_since_entry is None
        or any(state.recent_events.get(t, -1.0) >= inst.entered_at for t in c.event_since_entry),
    ]
    return all(checks)


def quiet_rule(scenario: Scenario, ctx: Context) -> QuietHours | None:
    if scenario.quiet_hours == "default":
        return ctx.policy.quiet_hours
    return scenario.quiet_hours


def deliver(
    inst: Instance,
    scenario: Scenario,
    step: Step,
    state: CustomerState,
    customer_id: str,
    now: float,
    ctx: Context,
    out: list[Output],
) -> float | None:
    """Send the step's message, skip it with a reason, or return when to try again."""
    send = step.send
    assert send is not None
    at, purpose = inst.at, send.purpose or scenario.purpose

    def skip(reason: str, final: bool = True) -> None:
        out.append(Skipped(scenario.id, inst.instance_id, step.id, reason, at, inst.variant, final))

    if inst.holdout:
        skip("holdout")
        return None
    if now > at + send.expires_after:
        skip("expired")
        return None
    channels = list(send.channels)
    if purpose is Purpose.MARKETING:
        channels = [c for c in channels if state.consents.get(c.value) is True]
        if not channels:
            skip("no_consent")
            return None
        quiet = quiet_rule(scenario, ctx)
        until = quiet_until(at, quiet, tz_of(state, ctx)) if quiet is not None else None
        if until is not None and quiet is not None:
            skip(
                "quiet_hours" if quiet.action == "drop" else "deferred_quiet_hours",
                final=quiet.action == "drop",
            )
            return None if quiet.action == "drop" else until
        free_at = _cap_free_at(state, channels, at, ctx)
        if isinstance(free_at, float):
            if free_at - at > send.expires_after:
                skip("capped")
                return None
            skip("deferred_capped", final=False)
            return free_at
        channels = free_at
    _request(inst, scenario, step, state, customer_id, tuple(channels), purpose, ctx, out)
    return None


def _cap_free_at(
    state: CustomerState, channels: list[Channel], at: float, ctx: Context
) -> float | list[Channel]:
    """The channels a marketing message may use at ``at``, or when the caps free up."""
    policy = ctx.policy
    if policy.global_cap is not None:
        free = cap_free_at(state.sends, policy.global_cap, at, None)
        if free is not None:
            return free
    allowed: list[Channel] = []
    frees: list[float] = []
    for channel in channels:
        cap = policy.channel_caps.get(channel.value)
        free = None if cap is None else cap_free_at(state.sends, cap, at, channel.value)
        if free is None:
            allowed.append(channel)
        else:
            frees.append(free)
    return allowed if allowed else min(frees)


def _request(
    inst: Instance,
    scenario: Scenario,
    step: Step,
    state: CustomerState,
    customer_id: str,
    channels: tuple[Channel, ...],
    purpose: Purpose,
    ctx: Context,
    out: list[Output],
) -> None:
    send = step.send
    assert send is not None
    at = inst.at
    notification_id = short_id("n", inst.instance_id, step.id)
    request = SendNotification(
        notification_id=notification_id,
        customer_id=customer_id,
        journey_id=scenario.id,
        journey_version=scenario.version,
        instance_id=inst.instance_id,
        step_id=step.id,
        purpose=purpose,
        channels=channels,
        template=send.template,
        data={
            **ctx.policy.template_defaults,
            **inst.data,
            **send.data,
            "journey": scenario.id,
            "variant": inst.variant,
        },
        priority=send.priority if send.priority is not None else scenario.priority,
        requested_at=datetime.fromtimestamp(at, UTC),
        expires_at=datetime.fromtimestamp(at + send.expires_after, UTC),
    )
    if purpose is Purpose.MARKETING:
        state.sends.append(SendRecord(at, notification_id, None))
    inst.sent += 1
    if inst.first_sent_at is None:
        inst.first_sent_at = at
    out.append(Requested(request, inst.variant))
