"""Where outcomes go, and how one is written down from a request and a provider answer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from schemas.codec import encode
from schemas.deadletter import DeadLetter
from schemas.notifications import NotificationOutcome, OutcomeStatus, SendNotification
from services.notifier.adapters.messages import SendResult
from services.notifier.domain.reach import Target

SERVICE = "notifier"


class OutcomeSink(Protocol):
    """Where outcomes and dead letters go (Kafka in the worker, a list in tests)."""

    async def outcome(self, outcome: NotificationOutcome, encoded: bytes) -> None:
        """Publish ``outcome``; ``encoded`` is its wire form (encoded once, also kept in Redis)."""

    async def dead_letter(self, letter: DeadLetter) -> None: ...

    async def flush(self) -> None: ...


def outcome_of(
    request: SendNotification,
    attempts: int,
    status: OutcomeStatus,
    at: float,
    target: Target | None = None,
    result: SendResult | None = None,
    latency: float | None = None,
    reason: str | None = None,
) -> NotificationOutcome:
    return NotificationOutcome(
        notification_id=request.notification_id,
        customer_id=request.customer_id,
        journey_id=request.journey_id,
        instance_id=request.instance_id,
        channel=target.channel if target else None,
        status=status,
        reason=reason[:1024] if reason else None,
        provider_message_id=(result.provider_message_id or None) if result else None,
        attempts=attempts,
        provider_latency_ms=round(latency * 1000, 3) if latency is not None else None,
        occurred_at=datetime.fromtimestamp(at, UTC),
    )


def dead_letter_of(request: SendNotification, error: str) -> DeadLetter:
    return DeadLetter.of(
        encode(request),
        reason="processing_failed",
        error=error,
        service=SERVICE,
        key=request.customer_id.encode(),
        occurred_at=datetime.now(UTC),
    )
