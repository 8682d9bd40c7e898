"""Scenarios as code: who enters, when, what is sent, how it ends — validated on load.

A scenario is a YAML document (``services/journey/scenarios/*.yaml``) parsed into these
frozen models. Every error names the field and says what was expected, so a marketer
editing a file sees exactly what to fix. ``(id, version)`` identifies a definition:
people already inside a journey keep following the version they entered.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.channels import Channel, Purpose
from services.journey.domain.durations import parse_duration

Slug = str
_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _duration(value: Any) -> float:
    return parse_duration(value)


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    match = re.match(r"^(\d{1,2}):(\d{2})(?::00)?$", str(value))
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{value!r} is not a local time: write HH:MM, e.g. '10:00'")
    return time(int(match[1]), int(match[2]))


class SegmentTrigger(Strict):
    dimension: Literal["rfm", "cpm"]
    enter: tuple[str, ...] = Field(min_length=1, description="Segments whose entry triggers")


class DateTrigger(Strict):
    field: Literal["birthday"] = "birthday"
    days_before: int = Field(default=0, ge=0, le=60)
    at: time = time(10, 0)

    _at = field_validator("at", mode="before")(_clock)


class GeofenceTrigger(Strict):
    stores: tuple[str, ...] | Literal["all"] = "all"
    dwell: float = 0.0
    debounce: float = Field(default=900.0, description="A gap this long ends a visit")
    cooldown: float = 7 * 86_400.0
    max_accuracy_m: float = Field(default=100.0, gt=0)

    _durations = field_validator("dwell", "debounce", "cooldown", mode="before")(_duration)


class Trigger(Strict):
    events: tuple[str, ...] = ()
    where: dict[str, Any] = Field(
        default_factory=dict, description="payload fields (dotted paths) that must be equal"
    )
    segment: SegmentTrigger | None = None
    date: DateTrigger | None = None
    geofence: GeofenceTrigger | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        kinds = [bool(self.events), self.segment is not None, self.date is not None]
        kinds.append(self.geofence is not None)
        if sum(kinds) != 1:
            raise ValueError("a trigger has exactly one of: events, segment, date, geofence")
        return self


class Audience(Strict):
    segments: tuple[str, ...] = Field(default=(), description="RFM segments allowed")
    cpm: tuple[str, ...] = Field(default=(), description="CPM groups allowed")
    customers: Literal["any", "new", "existing"] = "any"
    min_orders: int | None = Field(default=None, ge=0)
    max_orders: int | None = Field(default=None, ge=0)
    consent: bool = Field(default=False, description="require a marketing opt-in on a channel")


class Entry(Strict):
    policy: Literal["once", "every_time", "cooldown"] = "every_time"
    cooldown: float = 0.0
    key: str | None = Field(default=None, description="payload path: one instance per value")
    max_entries: int | None = Field(default=None, ge=1)

    _cooldown = field_validator("cooldown", mode="before")(_duration)

    @model_validator(mode="after")
    def _cooldown_given(self) -> Entry:
        if self.policy == "cooldown" and self.cooldown <= 0:
            raise ValueError("entry policy 'cooldown' needs a cooldown, e.g. cooldown: 7d")
        return self


class Exit(Strict):
    events: tuple[str, ...] = ()
    match_key: bool = Field(
        default=True, description="events carrying the entry key must carry the same value"
    )
    grace: float = Field(default=300.0, description="events this much before entry still count")

    _grace = field_validator("grace", mode="before")(_duration)


class Goal(Strict):
    events: tuple[str, ...] = Field(min_length=1)
    window: float = 7 * 86_400.0

    _window = field_validator("window", mode="before")(_duration)


class QuietHours(Strict):
    start: time = time(21, 0)
    end: time = time(8, 0)
    action: Literal["defer", "drop"] = "defer"

    _clocks = field_validator("start", "end", mode="before")(_clock)


class Condition(Strict):
    segment_in: tuple[str, ...] | None = None
    cpm_in: tuple[str, ...] | None = None
    min_orders: int | None = None
    max_orders: int | None = None
    consented: Channel | None = None
    event_since_entry: tuple[str, ...] | None = None


class WaitUntil(Strict):
    time: Any
    days: int = Field(default=0, ge=0, le=400)

    _time = field_validator("time", mode="before")(_clock)


class WaitFor(Strict):
    events: tuple[str, ...] = Field(min_length=1)
    timeout: float
    then: Slug | None = Field(default=None, description="step after the event (default: next)")
    on_timeout: Slug | None = Field(default=None, description="step after the timeout")

    _timeout = field_validator("timeout", mode="before")(_duration)


class Branch(Strict):
    condition: Condition = Field(alias="if")
    then: Slug | None = None
    otherwise: Slug | None = Field(default=None, alias="else")


class Variant(Strict):
    name: Slug
    weight: float = Field(gt=0)
    goto: Slug | None = None


class Split(Strict):
    variants: tuple[Variant, ...] = Field(min_length=2)


class Send(Strict):
    template: str = Field(min_length=1, max_length=128)
    channels: tuple[Channel, ...] = Field(min_length=1, description="preference order")
    purpose: Purpose | None = None
    priority: int | None = Field(default=None, ge=0, le=9)
    data: dict[str, Any] = Field(default_factory=dict)
    expires_after: float = Field(default=86_400.0, description="stale after this long")

    _expires = field_validator("expires_after", mode="before")(_duration)


class Step(Strict):
    id: Slug
    wait: float | None = None
    wait_until: WaitUntil | None = None
    wait_for: WaitFor | None = None
    branch: Branch | None = None
    split: Split | None = None
    send: Send | None = None
    exit: bool | None = None

    _wait = field_validator("wait", mode="before")(
        lambda v: None if v is None else parse_duration(v)
    )

    @property
    def kind(self) -> str:
        for name in ("wait", "wait_until", "wait_for", "branch", "split", "send", "exit"):
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated to have one kind")

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = ("wait", "wait_until", "wait_for", "branch", "split", "send", "exit")
        given = [k for k in kinds if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"step {self.id!r} must have exactly one of {kinds}, got {given}")
        return self

    def targets(self) -> list[str]:
        found: list[str | None] = []
        if self.wait_for:
            found += [self.wait_for.then, self.wait_for.on_timeout]
        if self.branch:
            found += [self.branch.then, self.branch.otherwise]
        if self.split:
            found += [v.goto for v in self.split.variants]
        return [t for t in found if t is not None]


class Scenario(Strict):
    id: Slug
    version: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    enabled: bool = True
    purpose: Purpose = Purpose.MARKETING
    priority: int = Field(default=5, ge=0, le=9, description="0 = most urgent")
    trigger: Trigger
    audience: Audience = Audience()
    entry: Entry = Entry()
    exit: Exit = Exit()
    goal: Goal | None = None
    holdout: float = Field(default=0.0, ge=0.0, le=0.5)
    quiet_hours: QuietHours | Literal["default"] | None = "default"
    steps: tuple[Step, ...] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"{value!r}: use lower-case letters, digits and _ (max 64)")
        return value

    @model_validator(mode="after")
    def _steps_link_up(self) -> Scenario:
        ids = [s.id for s in self.steps]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"step ids must be unique; repeated: {duplicated}")
        for step in self.steps:
            missing = [t for t in step.targets() if t not in ids]
            if missing:
                raise ValueError(f"step {step.id!r} goes to unknown step(s) {missing}")
        return self

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    def index_of(self, step_id: str) -> int:
        return [s.id for s in self.steps].index(step_id)
