"""A customer's journey state: one row of the journey table, everything timers need.

The due time of every pending step lives inside the row (``Instance.due``), so state
and timer are written together and the in-memory due index can be rebuilt from the
table alone after a restart or a rebalance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["active", "done"]


@dataclass(slots=True)
class Instance:
    journey: str
    version: int
    instance_id: str
    entered_at: float
    step: int = 0
    at: float = 0.0  # when the instance reached the current step (scheduled time)
    due: float | None = None  # when the current step resolves; None = evaluate now
    key: str | None = None
    variant: str = "default"
    status: Status = "active"
    priority: int = 5
    value: int = 0  # yen at stake when entering (cart value): lost-opportunity amount
    data: dict[str, Any] = field(default_factory=dict)
    sent: int = 0
    first_sent_at: float | None = None
    goal_until: float | None = None
    converted: bool = False

    @property
    def holdout(self) -> bool:
        return self.variant == "holdout"

    def next_due(self) -> float | None:
        return self.due if self.status == "active" else self.goal_until


@dataclass(slots=True)
class Purchase:
    at: float
    type: str
    order_id: str | None
    cart_id: str | None
    amount: int


@dataclass(slots=True)
class SendRecord:
    at: float
    notification_id: str
    channel: str | None  # None until the notifier says which channel carried it


@dataclass(slots=True)
class Visit:
    first_inside: float
    last_inside: float
    last_triggered: float | None = None


@dataclass(slots=True)
class Entries:
    count: int
    last_at: float
    last_event_id: str


@dataclass(slots=True)
class CustomerState:
    instances: list[Instance] = field(default_factory=list)
    entries: dict[str, Entries] = field(default_factory=dict)
    sends: list[SendRecord] = field(default_factory=list)
    purchases: list[Purchase] = field(default_factory=list)
    orders: int = 0
    rfm: str | None = None
    cpm: str | None = None
    consents: dict[str, bool] = field(default_factory=dict)
    birthday: str | None = None  # "MM-DD"
    timezone: str | None = None
    scheduled: dict[str, float] = field(default_factory=dict)  # date triggers: journey -> due
    visits: dict[str, Visit] = field(default_factory=dict)  # geofence, per store
    recent_events: dict[str, float] = field(default_factory=dict)  # type -> last event time
    absorbed_into: str | None = None

    def next_due(self) -> float | None:
        if self.absorbed_into is not None:
            return None
        dues = [d for i in self.instances if (d := i.next_due()) is not None]
        dues += self.scheduled.values()
        return min(dues) if dues else None

    def active(self, journey: str) -> list[Instance]:
        return [i for i in self.instances if i.journey == journey and i.status == "active"]

    def is_empty(self) -> bool:
        return not (
            self.instances
            or self.entries
            or self.sends
            or self.purchases
            or self.orders
            or self.rfm
            or self.cpm
            or self.consents
            or self.birthday
            or self.timezone
            or self.scheduled
            or self.visits
        )
