"""The scenarios a worker runs: the latest enabled version of each, every version that
people may still be inside, and the event types that can change anything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.journey.domain.geofence import Store
from services.journey.domain.policy import Policy
from services.journey.domain.scenario import Scenario

PURCHASES = frozenset({"order_completed", "pos_purchased"})
FACT_TYPES = PURCHASES | {
    "consent_granted",
    "consent_revoked",
    "line_followed",
    "line_unfollowed",
    "profile_updated",
    "identified",
}


@dataclass(frozen=True)
class Catalogue:
    live: dict[str, Scenario]
    versions: dict[str, Scenario] = field(default_factory=dict)
    by_event: dict[str, tuple[Scenario, ...]] = field(init=False, repr=False, compare=False)
    """The live scenarios each event type triggers (asked once per customer event)."""

    def __post_init__(self) -> None:
        by_event: dict[str, list[Scenario]] = {}
        for scenario in self.live.values():
            for event_type in dict.fromkeys(scenario.trigger.events):  # each once
                by_event.setdefault(event_type, []).append(scenario)
        object.__setattr__(self, "by_event", {t: tuple(s) for t, s in by_event.items()})

    @classmethod
    def of(cls, scenarios: Sequence[Scenario], archived: Sequence[Scenario] = ()) -> Catalogue:
        live = {s.id: s for s in scenarios if s.enabled}
        versions = {s.key: s for s in [*archived, *scenarios]}
        return cls(live=live, versions=versions)

    def version(self, journey: str, version: int) -> Scenario | None:
        return self.versions.get(f"{journey}@{version}")

    def event_triggered(self, event_type: str) -> tuple[Scenario, ...]:
        return self.by_event.get(event_type, ())

    def with_trigger(self, kind: str) -> list[Scenario]:
        return [s for s in self.live.values() if getattr(s.trigger, kind) is not None]

    def tracked_types(self) -> frozenset[str]:
        """Event types whose last time a condition may ask about."""
        found: set[str] = set()
        for scenario in self.versions.values():
            for step in scenario.steps:
                if step.branch and step.branch.condition.event_since_entry:
                    found.update(step.branch.condition.event_since_entry)
        return frozenset(found)

    def relevant_types(self) -> frozenset[str]:
        """Event types that can change any journey state; others are skipped unread."""
        found: set[str] = set(FACT_TYPES) | self.tracked_types()
        for scenario in self.versions.values():
            found.update(scenario.trigger.events)
            found.update(scenario.exit.events)
            if scenario.goal:
                found.update(scenario.goal.events)
            if scenario.trigger.geofence:
                found.add("location_reported")
            for step in scenario.steps:
                if step.wait_for:
                    found.update(step.wait_for.events)
        return frozenset(found)


@dataclass(frozen=True)
class Context:
    catalogue: Catalogue
    policy: Policy = field(default_factory=Policy)
    stores: tuple[Store, ...] = ()
    tracked: frozenset[str] = frozenset()

    @classmethod
    def of(cls, catalogue: Catalogue, policy: Policy, stores: tuple[Store, ...] = ()) -> Context:
        return cls(catalogue, policy, stores, catalogue.tracked_types())
