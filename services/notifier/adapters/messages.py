"""Rendered messages, ready for a provider, and the provider interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.channels import Channel
from services.notifier.domain.retry import Verdict


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str
    unsubscribe_url: str | None  # set for marketing mail: List-Unsubscribe + footer link


@dataclass(frozen=True)
class LineContent:
    messages: tuple[dict[str, Any], ...]  # 1..5 LINE message objects (text / flex)


@dataclass(frozen=True)
class PushContent:
    title: str
    body: str
    link: str | None


Content = EmailContent | LineContent | PushContent


@dataclass(frozen=True)
class Outbound:
    """One message to one address on one channel; ``notification_id`` is the idempotency key."""

    notification_id: str
    customer_id: str
    channel: Channel
    address: str
    content: Content


@dataclass(frozen=True)
class SendResult:
    verdict: Verdict
    detail: str = ""
    provider_message_id: str | None = None
    retry_after_s: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


class Provider(Protocol):
    """Sends one message on one channel and says how the provider answered."""

    channel: Channel

    async def send(self, message: Outbound) -> SendResult: ...


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (HTTP dates are rare from these APIs: treated as absent)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
