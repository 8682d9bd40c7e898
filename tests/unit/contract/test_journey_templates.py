"""The journey and the notifier agree: every message a shipped scenario asks for
renders on every channel it names, with the data the journey actually sends."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.channels import Channel
from services.journey.domain.facts import data_of
from services.journey.domain.scenario import Scenario
from services.journey.settings import JourneySettings
from services.notifier.adapters.rendering import TEMPLATES_DIR, Renderer, Sender
from tests.unit.journey.builders import T0, added, order, shipped, viewed

renderer = Renderer(Sender("絆茶舗", "news@example.jp", "東京都渋谷区1-2-3", "03-1234-5678"))
DEFAULTS = JourneySettings().policy().template_defaults


def trigger_data(scenario: Scenario) -> dict[str, Any]:
    events = scenario.trigger.events
    if "product_added" in events:
        return data_of(added(T0))
    if "product_viewed" in events:
        return data_of(viewed(T0))
    if "order_completed" in events:
        return data_of(order(T0))
    if scenario.trigger.geofence is not None:
        return {"store_id": "shibuya", "store_name": "渋谷店"}
    return {}


SENDS = [
    (scenario, step)
    for scenario in shipped().values()
    for step in scenario.steps
    if step.send is not None
]


@pytest.mark.parametrize(("scenario", "step"), SENDS, ids=[f"{s.id}.{t.id}" for s, t in SENDS])
def test_when_a_shipped_journey_sends_then_the_notifier_can_render_it(
    scenario: Any, step: Any
) -> None:
    assert (TEMPLATES_DIR / step.send.template).is_dir(), f"no template {step.send.template!r}"
    data = {**DEFAULTS, **trigger_data(scenario), **step.send.data}
    for channel in step.send.channels:
        content = renderer.render(step.send.template, Channel(channel), data, "https://u.example/u")
        assert content is not None
