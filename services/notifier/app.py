"""The notifier worker: faust wiring only (topics, agents, timer, web page).

notifications.requested ─▶ deliver (confluent-kafka batches, customers in parallel) ─▶ outcomes
customer.events ─────────▶ ledger (consent + contact points in Redis; push receipts ->
                           delivered outcomes)
timer ───────────────────▶ due retries / crashed sends from the Redis schedule
POST /unsubscribe/{token} ▶ opt-out in Redis now + consent_revoked on raw.profile

A batch of requests is acknowledged (its offsets may be committed) only after it ran to
the end: outcomes acknowledged by Kafka, ids marked reported. Redis or Kafka outages
retry the batch (every step is idempotent on ``notification_id``); anything else stops
the worker before its offsets are committed (``runtime.consumer``). The worker's clients (HTTP
session, Redis pool, outcome producers) are closed when the app stops, after its
agents and timers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import aclosing
from functools import cache, partial
from typing import Any

import redis.exceptions
from faust.web import Request, Response, View

from runtime.app import create_app
from runtime.batches import retry_forever, skip_tick_on_outage
from runtime.consumer import BatchConsumer, Record
from runtime.deadletter import FaustDeadLetters
from runtime.intake import decode_batch, decoded
from runtime.producer import AsyncProducer, DeliveryError
from runtime.redis import REDIS_OUTAGE
from runtime.settings import load_settings
from schemas.deadletter import DeadLetter
from schemas.notifications import NotificationOutcome
from schemas.topics import (
    CUSTOMER_EVENTS,
    NOTIFICATIONS_OUTCOMES,
    NOTIFICATIONS_REQUESTED,
    RAW_PROFILE,
)
from services.notifier.bootstrap import Notifier, build_notifier
from services.notifier.domain.receipts import receipt_of
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


_raw_topic(NOTIFICATIONS_REQUESTED.name(ns))  # declared for faust; read by BatchConsumer
customer_topic = _raw_topic(CUSTOMER_EVENTS.name(ns))
outcomes_name = NOTIFICATIONS_OUTCOMES.name(ns)
outcomes_topic = _raw_topic(outcomes_name)  # declared for faust; written by KafkaSink
raw_profile_topic = _raw_topic(RAW_PROFILE.name(ns))
dead_letters = FaustDeadLetters(app, ns)


class KafkaSink:
    """Outcomes through a confluent-kafka producer: ``produce`` only buffers (librdkafka
    does the Kafka work on its own threads, off the event loop); ``flush`` returns once
    Kafka acknowledged every outcome (acks=all, idempotent), or raises."""

    def __init__(self, producer: AsyncProducer) -> None:
        self._producer = producer

    async def outcome(self, outcome: NotificationOutcome, encoded: bytes) -> None:
        self._producer.produce(outcomes_name, outcome.customer_id.encode(), encoded)

    async def dead_letter(self, letter: DeadLetter) -> None:
        await dead_letters.send(letter)

    async def flush(self) -> None:
        await self._producer.flush()


# Infrastructure outages retry the batch (backpressure); nothing is lost or sent twice.
OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, DeliveryError)


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
            # Closed when the app stops, after its agents and timers (no unclosed clients).
            await app.add_async_context(aclosing(_built))
        return _built


def _sink() -> KafkaSink:
    return KafkaSink(AsyncProducer(settings.kafka))


requests_consumer = BatchConsumer(  # its Kafka client is made when it runs
    settings.kafka,
    f"{ns}-{SERVICE}-deliver",
    [NOTIFICATIONS_REQUESTED.name(ns)],
    service=SERVICE,
    max_batch=config.batch_size,
    within_seconds=config.batch_within_s,
    session_timeout_seconds=config.session_timeout_s,
    carry_over_from=f"{ns}-{SERVICE}",  # the faust agent that read the requests before
)


@app.task
async def deliver() -> None:
    """notifications.requested in batches straight from confluent-kafka (no faust
    agent: the notifier's state is in Redis), offsets committed after each batch."""
    delivery = (await notifier()).delivery(_sink())

    async def handle(records: Sequence[Record]) -> None:
        received = await decode_batch(
            records,
            NOTIFICATIONS_REQUESTED.adapter,
            dead_letters,
            service=SERVICE,
            max_bytes=settings.max_message_bytes,
        )
        batch = partial(delivery.handle_many, [r.value for r in received], "request")
        await retry_forever(batch, retryable=OUTAGES, what="deliver")

    await requests_consumer.run(handle)


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
        # faust acks an event even when the agent raises on it: a Redis outage must block
        # here (an opt-out is never skipped), not crash past the event.
        apply = partial(built.apply_customer_event, received.value)
        await retry_forever(apply, retryable=OUTAGES, what="ledger")
        receipt = receipt_of(received.value)
        if receipt is not None:  # the app says a push arrived: sent -> delivered
            confirm = partial(built.delivery(_receipt_sink()).confirm, receipt)
            await retry_forever(confirm, retryable=OUTAGES, what="receipt")


@cache
def _retry_sink() -> KafkaSink:
    """The retry timer's own producer, made on its first tick (so its flushes and
    delivery errors are about its outcomes only)."""
    return _sink()


@cache
def _receipt_sink() -> KafkaSink:
    """The ledger agent's producer for ``delivered`` outcomes."""
    return _sink()


@app.timer(interval=config.retry_poll_s)
async def due_retries() -> None:
    async def run() -> None:
        delivery = (await notifier()).delivery(_retry_sink())
        while await delivery.run_due(config.batch_size) >= config.batch_size:
            pass

    await skip_tick_on_outage(run, outage=REDIS_OUTAGE, what="notifier due retries")


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
