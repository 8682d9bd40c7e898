"""The notifier worker: faust wiring only (topics, agents, timer, web page).

notifications.requested ─▶ deliver (batches, customers in parallel) ─▶ notifications.outcomes
customer.events ─────────▶ ledger (consent + contact points in Redis)
timer ───────────────────▶ due retries / crashed sends from the Redis schedule
POST /unsubscribe/{token} ▶ opt-out in Redis now + consent_revoked on raw.profile
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any

from faust.web import Request, Response, View

from runtime.app import create_app
from runtime.deadletter import FaustDeadLetters
from runtime.intake import decoded
from runtime.settings import load_settings
from schemas.codec import encode
from schemas.deadletter import DeadLetter
from schemas.notifications import NotificationOutcome
from schemas.topics import (
    CUSTOMER_EVENTS,
    NOTIFICATIONS_OUTCOMES,
    NOTIFICATIONS_REQUESTED,
    RAW_PROFILE,
)
from services.notifier.bootstrap import Notifier, build_notifier
from services.notifier.settings import load_notifier_settings

SERVICE = "notifier"
settings = load_settings()
config = load_notifier_settings()
app = create_app(
    SERVICE,
    settings,
    broker_session_timeout=config.session_timeout_s,
    broker_heartbeat_interval=min(3.0, config.session_timeout_s / 4),
)
ns = settings.namespace


def _raw_topic(name: str) -> Any:
    return app.topic(name, key_serializer="raw", value_serializer="raw")


requests_topic = _raw_topic(NOTIFICATIONS_REQUESTED.name(ns))
customer_topic = _raw_topic(CUSTOMER_EVENTS.name(ns))
outcomes_topic = _raw_topic(NOTIFICATIONS_OUTCOMES.name(ns))
raw_profile_topic = _raw_topic(RAW_PROFILE.name(ns))
dead_letters = FaustDeadLetters(app, ns)


class FaustSink:
    """Outcomes through the app's producer; ``flush`` waits until Kafka has them all."""

    def __init__(self) -> None:
        self._pending: list[Awaitable[Any]] = []

    async def outcome(self, outcome: NotificationOutcome) -> None:
        key = outcome.customer_id.encode()
        self._pending.append(await outcomes_topic.send(key=key, value=encode(outcome)))

    async def dead_letter(self, letter: DeadLetter) -> None:
        await dead_letters.send(letter)

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        for delivery in pending:
            await delivery


async def _publish_raw(key: bytes, value: bytes) -> None:
    await (await raw_profile_topic.send(key=key, value=value))


_built: Notifier | None = None
_lock = asyncio.Lock()


async def notifier() -> Notifier:
    """Built once, inside the running worker (no client exists at import time)."""
    global _built
    async with _lock:
        if _built is None:
            _built = build_notifier(settings, config, _publish_raw)
        return _built


class _Events:
    """Lets runtime.intake.decoded read one batch taken by ``take_events``."""

    def __init__(self, events: Sequence[Any]) -> None:
        self._events = events

    async def events(self) -> AsyncIterator[Any]:
        for event in self._events:
            yield event


@app.agent(requests_topic)
async def deliver(stream: Any) -> None:
    delivery = (await notifier()).delivery(FaustSink())
    async for events in stream.take_events(config.batch_size, within=config.batch_within_s):
        batch = [
            received.value
            async for received in decoded(
                _Events(events),
                NOTIFICATIONS_REQUESTED.adapter,
                dead_letters,
                service=SERVICE,
                max_bytes=settings.max_message_bytes,
            )
        ]
        await delivery.handle_many(batch, "request")


@app.agent(customer_topic)
async def ledger(stream: Any) -> None:
    built = await notifier()
    async for received in decoded(
        stream,
        CUSTOMER_EVENTS.adapter,
        dead_letters,
        service=SERVICE,
        max_bytes=settings.max_message_bytes,
    ):
        await built.apply_customer_event(received.value)


_retry_sink = FaustSink()


@app.timer(interval=config.retry_poll_s)
async def due_retries() -> None:
    delivery = (await notifier()).delivery(_retry_sink)
    while await delivery.run_due(config.batch_size) >= config.batch_size:
        pass


@app.page("/unsubscribe/{token}")
class Unsubscribe(View):
    """RFC 8058: POST unsubscribes (mail clients' one-click); GET only shows a form."""

    async def get(self, request: Request, token: str) -> Response:
        return self.html(
            '<!DOCTYPE html><html lang="ja"><meta charset="utf-8"><body>'
            "<p>メール配信を停止しますか？</p>"
            f'<form method="post" action="{self._escape(token)}">'
            '<button type="submit">配信を停止する</button></form></body></html>'
        )

    async def post(self, request: Request, token: str) -> Response:
        if not await (await notifier()).unsubscriber.unsubscribe(token):
            return self.json({"status": "invalid token"}, status=400)
        return self.json({"status": "unsubscribed"})

    @staticmethod
    def _escape(token: str) -> str:
        return "".join(c for c in token if c.isalnum() or c in "-_.")
