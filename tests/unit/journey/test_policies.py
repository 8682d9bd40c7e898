"""Policies across journeys: caps defer instead of dropping, quiet hours in the
recipient's zone, consent, transactional exemptions, sticky holdout."""

from __future__ import annotations

from datetime import date

from schemas.channels import Channel, Purpose
from services.journey.domain.outputs import Converted
from services.journey.domain.policy import Cap, Policy, in_holdout, quiet_until
from services.journey.domain.scenario import QuietHours
from tests.unit.journey.builders import (
    DAY,
    HOUR,
    T0,
    Story,
    added,
    birthday,
    context_factory,
    jst,
    order,
    scenario_factory,
)

SEND_NOW = [{"id": "send", "send": {"template": "t", "channels": ["line", "email"]}}]


def two_journeys(policy: Policy) -> Story:
    urgent = scenario_factory(
        id="urgent", priority=1, steps=SEND_NOW, trigger={"events": ["product_added"]}
    )
    later = scenario_factory(
        id="later", priority=7, steps=SEND_NOW, trigger={"events": ["product_added"]}
    )
    return Story(context_factory(urgent, later, policy=policy)).opted_in(
        Channel.LINE, Channel.EMAIL
    )


def test_when_the_global_cap_is_reached_then_the_lower_priority_message_is_deferred_not_lost() -> (
    None
):
    s = two_journeys(Policy(global_cap=Cap(16 * HOUR, 1), channel_caps={}))
    s.event(added(T0))
    assert [r.journey_id for r in s.sent()] == ["urgent"]
    assert "deferred_capped" in s.skipped()
    s.run_until(T0 + 2 * DAY)
    later = [r for r in s.sent() if r.journey_id == "later"]
    assert [r.requested_at.timestamp() for r in later] == [T0 + 16 * HOUR]


def test_when_the_cap_frees_only_after_the_message_is_stale_then_it_is_skipped_as_capped() -> None:
    s = two_journeys(Policy(global_cap=Cap(3 * DAY, 1), channel_caps={}))
    s.event(added(T0))
    s.run_until(T0 + 5 * DAY)
    assert [r.journey_id for r in s.sent()] == ["urgent"]
    assert "capped" in s.skipped()


def test_when_one_channel_is_capped_then_the_message_goes_on_the_other_channels() -> None:
    s = two_journeys(Policy(global_cap=None, channel_caps={"line": Cap(DAY, 1)}))
    s.event(added(T0))
    first, second = s.sent()
    assert first.channels == (Channel.LINE, Channel.EMAIL)
    assert second.channels == (Channel.EMAIL,)


def test_when_messages_are_transactional_then_caps_do_not_hold_them_back() -> None:
    steps = [
        {"id": "send", "send": {"template": "t", "channels": ["email"], "purpose": "transactional"}}
    ]
    a = scenario_factory(id="a", steps=steps)
    b = scenario_factory(id="b", steps=steps)
    s = Story(context_factory(a, b, policy=Policy(global_cap=Cap(DAY, 1))))
    s.event(added(T0))  # no marketing consent either: transactional needs none here
    assert [r.purpose for r in s.sent()] == [Purpose.TRANSACTIONAL] * 2


def test_when_there_is_no_marketing_opt_in_then_nothing_marketing_is_sent() -> None:
    s = Story(context_factory(scenario_factory(steps=SEND_NOW)))
    s.event(added(T0))
    assert s.sent() == []
    assert s.skipped() == ["no_consent"]


def test_when_the_customer_opted_out_of_one_channel_then_only_the_other_is_asked_for() -> None:
    s = Story(context_factory(scenario_factory(steps=SEND_NOW))).opted_in(
        Channel.LINE, Channel.EMAIL
    )
    from tests.unit.journey.builders import consent

    s.event(consent(T0 - HOUR, Channel.LINE, granted=False))
    s.event(added(T0))
    [request] = s.sent()
    assert request.channels == (Channel.EMAIL,)


def test_when_quiet_hours_cross_midnight_then_late_evening_and_early_morning_are_quiet() -> None:
    quiet, tz = QuietHours(), "Asia/Tokyo"
    assert quiet_until(jst(2026, 3, 2, 22, 0), quiet, tz) == jst(2026, 3, 3, 8, 0)
    assert quiet_until(jst(2026, 3, 3, 7, 59), quiet, tz) == jst(2026, 3, 3, 8, 0)
    assert quiet_until(jst(2026, 3, 3, 8, 0), quiet, tz) is None
    assert quiet_until(jst(2026, 3, 2, 20, 59), quiet, tz) is None


def test_when_the_customer_lives_in_another_zone_then_quiet_hours_are_their_local_night() -> None:
    scenario = scenario_factory(
        quiet_hours={"start": "21:00", "end": "08:00", "action": "defer"}, steps=SEND_NOW
    )
    s = Story(context_factory(scenario)).opted_in(Channel.LINE)
    s.event(birthday(T0 - DAY, date(1990, 1, 1), timezone="Europe/London"))
    s.event(added(jst(2026, 3, 2, 15, 0)))  # 15:00 Tokyo = 06:00 London: night there
    s.run_until(T0 + 2 * DAY)
    [request] = s.sent()
    assert request.requested_at.timestamp() == jst(2026, 3, 2, 17, 0)  # 08:00 London


def test_when_quiet_hours_say_drop_then_the_message_is_dropped_with_the_reason() -> None:
    scenario = scenario_factory(quiet_hours={"action": "drop"}, steps=SEND_NOW)
    s = Story(context_factory(scenario)).opted_in(Channel.LINE)
    s.event(added(jst(2026, 3, 2, 23, 0)))
    s.run_until(T0 + 2 * DAY)
    assert s.sent() == []
    assert "quiet_hours" in s.skipped()


def test_when_assigning_the_holdout_then_it_is_sticky_and_about_the_share() -> None:
    policy = Policy(global_holdout=0.05)
    first = [in_holdout(policy, f"c-{n}", "j", 0.10) for n in range(20_000)]
    again = [in_holdout(policy, f"c-{n}", "j", 0.10) for n in range(20_000)]
    assert first == again
    assert 0.13 < sum(first) / 20_000 < 0.16  # 5 % global + 10 % of the rest


def test_when_a_customer_is_held_out_then_they_enter_and_are_measured_but_get_nothing() -> None:
    goal = {"events": ["order_completed"], "window": "7d"}
    scenario = scenario_factory(holdout=0.5, steps=SEND_NOW, goal=goal)
    ctx = context_factory(scenario)
    held = next(f"c-{n}" for n in range(100) if in_holdout(ctx.policy, f"c-{n}", scenario.id, 0.5))
    s = Story(ctx, customer_id=held).opted_in(Channel.LINE)
    s.event(added(T0))
    assert s.sent() == []
    assert s.skipped() == ["holdout"]
    s.event(order(T0 + DAY))
    [conversion] = [o for o in s.outputs if isinstance(o, Converted)]
    assert conversion.variant == "holdout"  # the baseline the treated group is compared with
