"""Every step kind on a controllable clock: wait, wait until local time, wait for an
event (or its timeout), branch, random split, send, exit."""

from __future__ import annotations

from schemas.channels import Channel
from services.journey.domain.outputs import Fired
from tests.unit.journey.builders import (
    DAY,
    HOUR,
    MINUTE,
    T0,
    Story,
    added,
    context_factory,
    jst,
    opened,
    order,
    scenario_factory,
    shipped,
)


def story(**scenario: object) -> Story:
    return Story(context_factory(scenario_factory(**scenario))).opted_in(Channel.LINE)


def test_when_a_wait_passes_then_the_message_goes_out_at_entry_plus_the_wait() -> None:
    s = story()
    s.event(added(T0))
    assert s.sent() == []
    assert s.state is not None
    assert s.state.next_due() == T0 + HOUR
    s.tick(T0 + HOUR - 1)
    assert s.sent() == []
    s.tick(T0 + HOUR + 0.3)
    [request] = s.sent()
    assert request.requested_at.timestamp() == T0 + HOUR  # scheduled time, not tick time
    assert [round(o.lateness, 3) for o in s.outputs if isinstance(o, Fired)] == [0.3]


def test_when_cart_abandonment_runs_its_course_then_three_reminders_at_1h_1d_3d() -> None:
    s = Story(context_factory(shipped()["cart_abandonment"])).opted_in(Channel.LINE)
    s.event(added(T0 - 2 * HOUR))  # 10:00 JST
    s.run_until(T0 + 10 * DAY)
    times = [(r.requested_at.timestamp() - (T0 - 2 * HOUR)) / HOUR for r in s.sent()]
    assert times == [1.0, 24.0, 72.0]
    assert [r.data["reminder"] for r in s.sent()] == [1, 2, 3]
    assert len({r.notification_id for r in s.sent()}) == 3


def test_when_a_reminder_falls_in_quiet_hours_then_it_waits_for_morning_and_later_ones_follow() -> (
    None
):
    s = Story(context_factory(shipped()["cart_abandonment"])).opted_in(Channel.LINE)
    s.event(added(T0 - 13 * HOUR))  # 23:00 JST: the 1 h reminder would land at midnight
    s.run_until(T0 + 10 * DAY)
    times = [(r.requested_at.timestamp() - (T0 - 13 * HOUR)) / HOUR for r in s.sent()]
    # 00:00 is quiet (21:00-08:00): reminder 1 goes at 08:00; "wait 23h" then ends at
    # 07:00, quiet again, so 08:00; "wait 2d" ends at 08:00.
    assert times == [9.0, 33.0, 81.0]
    assert "deferred_quiet_hours" in s.skipped()


def test_when_waiting_until_a_local_time_then_it_is_that_time_in_the_customers_zone() -> None:
    s = story(
        steps=[
            {"id": "w", "wait_until": {"days": 1, "time": "10:00"}},
            {"id": "s", "send": {"template": "t", "channels": ["line"]}},
        ]
    )
    s.event(added(jst(2026, 3, 2, 23, 30)))
    s.run_until(T0 + 5 * DAY)
    [request] = s.sent()
    assert request.requested_at.timestamp() == jst(2026, 3, 3, 10, 0)


def test_when_the_awaited_event_comes_then_the_then_branch_runs_otherwise_the_timeout_path() -> (
    None
):
    steps = [
        {
            "id": "wait_open",
            "wait_for": {"events": ["app_opened"], "timeout": "2d", "on_timeout": "nudge"},
        },
        {"id": "welcome", "send": {"template": "welcome", "channels": ["line"]}},
        {"id": "stop", "exit": True},
        {"id": "nudge", "send": {"template": "nudge", "channels": ["line"]}},
    ]
    came = story(steps=steps)
    came.event(added(T0))
    came.event(opened(T0 + HOUR))
    came.run_until(T0 + 5 * DAY)
    assert [r.template for r in came.sent()] == ["welcome"]

    never = story(steps=steps)
    never.event(added(T0))
    never.run_until(T0 + 5 * DAY)
    [request] = never.sent()
    assert (request.template, request.requested_at.timestamp()) == ("nudge", T0 + 2 * DAY)


def test_when_a_branch_condition_holds_then_its_step_runs_else_the_other() -> None:
    steps = [
        {"id": "b", "branch": {"if": {"min_orders": 1}, "then": "loyal", "else": "newbie"}},
        {"id": "loyal", "send": {"template": "loyal", "channels": ["line"]}},
        {"id": "stop", "exit": True},
        {"id": "newbie", "send": {"template": "newbie", "channels": ["line"]}},
    ]
    new = story(steps=steps, exit={"events": []})
    new.event(added(T0))
    buyer = story(steps=steps, exit={"events": []})
    buyer.event(order(T0 - 30 * DAY))
    buyer.event(added(T0))
    assert [r.template for r in new.sent()] == ["newbie"]
    assert [r.template for r in buyer.sent()] == ["loyal"]


def test_when_a_random_split_assigns_variants_then_it_is_sticky_and_near_the_weights() -> None:
    steps = [
        {
            "id": "split",
            "split": {
                "variants": [
                    {"name": "a", "weight": 80, "goto": "sa"},
                    {"name": "b", "weight": 20, "goto": "sb"},
                ]
            },
        },
        {"id": "sa", "send": {"template": "a", "channels": ["line"]}},
        {"id": "stop", "exit": True},
        {"id": "sb", "send": {"template": "b", "channels": ["line"]}},
    ]
    ctx = context_factory(
        scenario_factory(steps=steps, entry={"policy": "every_time", "key": "cart_id"})
    )
    templates = []
    for n in range(1_000):
        s = Story(ctx, customer_id=f"c-{n}").opted_in(Channel.LINE)
        s.event(added(T0, cart_id="k1"))
        s.event(added(T0 + 20 * DAY, cart_id="k2"))  # enters again: same variant
        first, second = (r.template for r in s.sent())
        assert first == second
        templates.append(first)
    assert 0.75 < templates.count("a") / 1_000 < 0.85
    assert all(r.data["variant"] in {"a", "b"} for r in s.sent())


def test_when_an_exit_step_is_reached_then_nothing_after_it_is_sent() -> None:
    s = story(
        steps=[
            {"id": "s1", "send": {"template": "one", "channels": ["line"]}},
            {"id": "x", "exit": True},
            {"id": "s2", "send": {"template": "two", "channels": ["line"]}},
        ]
    )
    s.event(added(T0))
    s.run_until(T0 + 30 * DAY)
    assert [r.template for r in s.sent()] == ["one"]
    assert s.state is not None
    assert not s.state.active("test_journey")


def test_when_a_scenario_loops_without_waiting_then_it_stops_with_a_reason() -> None:
    s = story(steps=[{"id": "b", "branch": {"if": {}, "then": "b"}}])
    s.event(added(T0))
    assert "loop_without_wait" in s.skipped()


def test_when_delays_are_months_long_then_they_are_kept_to_the_second() -> None:
    s = story(
        steps=[
            {"id": "w", "wait": "120d"},
            {"id": "s", "send": {"template": "t", "channels": ["line"]}},
        ]
    )
    s.event(added(T0 + 30 * MINUTE))
    s.run_until(T0 + 200 * DAY)
    [request] = s.sent()
    assert request.requested_at.timestamp() == T0 + 30 * MINUTE + 120 * DAY
