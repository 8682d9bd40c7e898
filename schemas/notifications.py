"""Notification commands and their outcomes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.base import SCHEMA_VERSION, Frozen, Id, Timestamp
from schemas.channels import Channel, Purpose


class SendNotification(Frozen):
    """Journey -> notifier: send this message, once (``notification_id`` is the key).

    ``notification_id`` is derived from journey instance + step + channel so that
    replaying the journey asks for the very same notification again.
    """

    notification_id: Id
    customer_id: Id
    journey_id: Id | None = None
    journey_version: int | None = Field(default=None, ge=1)
    instance_id: Id | None = None
    step_id: Id | None = None
    purpose: Purpose
    channels: tuple[Channel, ...] = Field(min_length=1, description="Preference order")
    allow_fallback: bool = True
    template: Id
    data: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(default=5, ge=0, le=9, description="0 = most urgent")
    requested_at: Timestamp
    expires_at: Timestamp | None = None
    schema_version: Literal[1] = SCHEMA_VERSION


OutcomeStatus = Literal[
    "sent", "delivered", "failed", "suppressed", "deferred", "expired", "duplicate"
]


class NotificationOutcome(Frozen):
    notification_id: Id
    customer_id: Id
    journey_id: Id | None = None
    instance_id: Id | None = None
    channel: Channel | None = None
    status: OutcomeStatus
    reason: str | None = Field(default=None, max_length=1024)
    provider_message_id: str | None = Field(default=None, max_length=256)
    attempts: int = Field(default=0, ge=0)
    provider_latency_ms: float | None = Field(default=None, ge=0)
    occurred_at: Timestamp
    schema_version: Literal[1] = SCHEMA_VERSION
