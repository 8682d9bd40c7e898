"""What a journey step produces besides the new state: commands and facts to record."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.notifications import SendNotification


@dataclass(frozen=True, slots=True)
class Requested:
    request: SendNotification
    variant: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A "why was this not sent / not entered" record for the customer's history.

    ``final`` False means the message was deferred, not dropped.
    """

    journey: str
    instance_id: str | None
    step: str | None
    reason: str
    at: float
    variant: str = "default"
    final: bool = True


@dataclass(frozen=True, slots=True)
class Entered:
    journey: str
    version: int
    instance_id: str
    variant: str
    value: int
    at: float


@dataclass(frozen=True, slots=True)
class Exited:
    journey: str
    instance_id: str
    variant: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class Converted:
    journey: str
    instance_id: str
    variant: str
    order_id: str | None
    amount: int
    at: float
    recovered: bool  # the order came after a message was sent


@dataclass(frozen=True, slots=True)
class Fired:
    """A timer resolved: ``lateness`` seconds after its due time."""

    journey: str
    lateness: float


Output = Requested | Skipped | Entered | Exited | Converted | Fired
