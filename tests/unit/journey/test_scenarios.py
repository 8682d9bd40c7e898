"""Scenario files: shipped ones load; mistakes are refused with the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.journey.adapters.scenarios import ScenarioError, load_scenario, load_scenarios
from services.journey.domain.durations import parse_duration
from tests.unit.journey.builders import SHIPPED, scenario_factory

DAY_ONE = {
    "cart_abandonment",
    "post_purchase",
    "f2_nudge",
    "dormant_reactivation",
    "birthday_coupon",
    "browse_abandonment",
    "geo_push",
}


def test_when_loading_the_shipped_scenarios_then_every_day_one_journey_is_there() -> None:
    scenarios = {s.id: s for s in load_scenarios(SHIPPED / "scenarios")}
    assert set(scenarios) == DAY_ONE
    cart = scenarios["cart_abandonment"]
    assert [s.kind for s in cart.steps].count("send") == 3
    assert set(cart.exit.events) == {"order_completed", "pos_purchased"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15), ("30m", 1800), ("1h", 3600), ("3d", 259_200), ("1d12h", 129_600), (90, 90)],
)
def test_when_durations_are_written_like_marketers_do_then_they_parse(
    text: str, seconds: float
) -> None:
    assert parse_duration(text) == seconds


def test_when_a_duration_is_nonsense_then_the_error_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match=r"write e\.g\."):
        parse_duration("soon")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_when_a_step_goes_to_an_unknown_step_then_the_file_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """
id: broken
version: 1
name: broken
trigger: {events: [product_added]}
steps:
  - {id: split, split: {variants: [{name: a, weight: 1, goto: nowhere}, {name: b, weight: 1}]}}
""",
    )
    with pytest.raises(ScenarioError, match=r"broken.yaml.*nowhere"):
        load_scenario(path)


def test_when_a_trigger_has_two_kinds_then_the_error_says_only_one_is_allowed(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        """
id: broken
version: 1
name: broken
trigger: {events: [product_added], date: {field: birthday}}
steps: [{id: s, send: {template: t, channels: [line]}}]
""",
    )
    with pytest.raises(ScenarioError, match="exactly one of: events, segment, date, geofence"):
        load_scenario(path)


def test_when_a_field_is_misspelt_then_the_error_names_the_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
id: broken
version: 1
name: broken
trigger: {events: [product_added]}
steps: [{id: s, wiat: 1h}]
""",
    )
    with pytest.raises(ScenarioError, match=r"steps\.0\.wiat"):
        load_scenario(path)


def test_when_a_local_time_is_impossible_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        scenario_factory(steps=[{"id": "w", "wait_until": {"time": "25:00"}}])


def test_when_cooldown_policy_has_no_cooldown_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a cooldown"):
        scenario_factory(entry={"policy": "cooldown"})
