"""A notifier delivery pipeline on the real Redis, with scripted in-memory providers."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from runtime.redis import create_redis
from runtime.settings import Settings
from schemas.channels import Channel, Purpose
from schemas.customer import CustomerEvent
from schemas.deadletter import DeadLetter
from schemas.events import (
    AppOpened,
    ConsentGranted,
    ConsentRevoked,
    Identified,
    LineFollowed,
    Source,
)
from schemas.identifiers import Identifiers
from schemas.notifications import NotificationOutcome, SendNotification
from schemas.payloads import AppOpenedPayload, ConsentPayload, LinePayload
from services.notifier.adapters.http import HttpClient
from services.notifier.adapters.ledger import LedgerStore
from services.notifier.adapters.messages import Outbound, SendResult
from services.notifier.adapters.ratelimit import RateLimiter
from services.notifier.adapters.state import NotificationStore
from services.notifier.bootstrap import build_renderer
from services.notifier.delivery import Delivery
from services.notifier.domain.ledger import ledger_updates
from services.notifier.domain.retry import RetryPolicy, Verdict
from services.notifier.settings import NotifierSettings
from tests.integration.notifier.fakes import FakeProvider, start

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
LINE_USER = "U4af4980629a0c3c5d3c2ea8d5f1a6b7c"


@dataclass
class ScriptedProvider:
    channel: Channel
    script: deque[Verdict] = field(default_factory=deque)
    sent: list[Outbound] = field(default_factory=list)
    retry_after_s: float | None = None

    async def send(self, message: Outbound) -> SendResult:
        self.sent.append(message)
        verdict = self.script.popleft() if self.script else Verdict.ACCEPTED
        return SendResult(
            verdict,
            detail=f"scripted {verdict}",
            retry_after_s=self.retry_after_s,
            provider_message_id=f"{self.channel}-{len(self.sent)}",
        )


@dataclass
class ListSink:
    outcomes: list[NotificationOutcome] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)

    async def outcome(self, outcome: NotificationOutcome, encoded: bytes) -> None:
        self.outcomes.append(outcome)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    async def flush(self) -> None:
        return None

    def statuses(self) -> list[tuple[str, str | None]]:
        return [(o.status, o.reason) for o in self.outcomes]


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    delivery: Delivery
    ledger: LedgerStore
    store: NotificationStore
    sink: ListSink
    clock: Clock
    providers: dict[Channel, ScriptedProvider]

    async def customer(self, customer_id: str, *events: Any) -> None:
        for event in events:
            item = CustomerEvent(
                customer_id=customer_id, identity_version=1, resolved_at=T0, event=event
            )
            writes, record = ledger_updates(item)
            await self.ledger.apply(customer_id, writes, record)


@pytest.fixture
async def harness(settings: Settings, redis_client: redis.Redis) -> AsyncIterator[Harness]:
    client = create_redis(settings)
    config = NotifierSettings(dry_run=False)
    clock, sink = Clock(), ListSink()
    providers = {c: ScriptedProvider(c) for c in (Channel.EMAIL, Channel.LINE, Channel.PUSH)}
    ledger = LedgerStore(client, settings.namespace)
    store = NotificationStore(client, settings.namespace, lease_s=30, ttl_s=3600)
    delivery = Delivery(
        store=store,
        ledger=ledger,
        limiter=RateLimiter(client, settings.namespace, {}),
        renderer=build_renderer(config),
        providers=dict(providers),
        sink=sink,
        unsubscribe_url=lambda cid, ch: f"https://kizuna.example/unsubscribe/{cid}.{ch}",
        policy=RetryPolicy(max_attempts=3, base_s=1.0, cap_s=10.0),
        clock=clock,
    )
    yield Harness(delivery, ledger, store, sink, clock, providers)
    await client.aclose()


_n = iter(range(10**9))


def envelope(at: datetime, **identifiers: str) -> dict[str, Any]:
    return {
        "event_id": f"e-{next(_n)}",
        "occurred_at": at,
        "received_at": at,
        "source": Source.WEB,
        "identifiers": Identifiers(**identifiers),
    }


def consent(
    granted: bool, channel: Channel, at: datetime = T0, purpose: Purpose = Purpose.MARKETING
) -> ConsentGranted | ConsentRevoked:
    payload = ConsentPayload(
        channel=channel,
        purpose=purpose,
        method="web_form",
        shown_text="お得な情報を受け取る",
        wording_version="2026-04",
    )
    cls = ConsentGranted if granted else ConsentRevoked
    return cls(**envelope(at, member_id="M1"), payload=payload)


def email_known(address: str = "hanako@example.jp", at: datetime = T0) -> Identified:
    return Identified(**envelope(at, member_id="M1", email=address))


def line_followed(at: datetime = T0) -> LineFollowed:
    return LineFollowed(
        **envelope(at, line_user_id=f"shop:{LINE_USER}"),
        payload=LinePayload(channel_id="1650000000"),
    )


def app_opened(token: str, at: datetime = T0) -> AppOpened:
    return AppOpened(
        **envelope(at, device_id="d-1"),
        payload=AppOpenedPayload(platform="ios", push_token=token, push_enabled=True),
    )


CART_DATA = {
    "store_name": "絆茶舗",
    "items": [{"name": "静岡煎茶 100g", "quantity": 1, "price": 1080}],
    "total": 1080,
    "cart_url": "https://kizuna.example/cart/1",
}


def request_factory() -> Callable[..., SendNotification]:
    def make(
        notification_id: str = "n-1", customer_id: str = "c-1", **fields: Any
    ) -> SendNotification:
        values: dict[str, Any] = {
            "notification_id": notification_id,
            "customer_id": customer_id,
            "purpose": Purpose.MARKETING,
            "channels": (Channel.EMAIL,),
            "template": "cart_abandoned",
            "data": CART_DATA,
            "requested_at": T0,
        }
        values.update(fields)
        return SendNotification(**values)

    return make


@pytest.fixture
def request_() -> Callable[..., SendNotification]:
    return request_factory()


__all__ = ["T0", "timedelta"]


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeProvider, str]]:
    """A local LINE + FCM server that records every request (``fakes.py``)."""
    provider = FakeProvider(hang_s=2.0)
    runner, url = await start(provider)
    yield provider, url
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    yield client
    await client.aclose()
