"""Produce records and learn, per request, when Kafka acknowledged all of them.

confluent-kafka reports deliveries from ``poll()``; a background thread polls and each
request waits on one asyncio future that the last delivery report resolves, so the
event loop never blocks on Kafka. ``message.timeout.ms`` is bounded by the request
timeout: when the broker is away, deliveries fail in time and the request gets a 503.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from runtime.kafka import create_producer
from services.gateway.ingest import KafkaUnavailable, Record

log = logging.getLogger(__name__)


class _Pending:
    """The delivery reports still awaited for one request (updated by the poll thread)."""

    __slots__ = ("errors", "future", "loop", "remaining")

    def __init__(self, count: int, loop: asyncio.AbstractEventLoop) -> None:
        self.remaining = count
        self.errors: list[KafkaError] = []
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self.errors.append(err)
        self.remaining -= 1
        if self.remaining == 0:
            self.loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class KafkaSink:
    """The gateway's producer: idempotent, acks=all (see runtime.kafka.producer_config)."""

    def __init__(self, bootstrap: str, timeout_s: float, **extra: Any) -> None:
        self._timeout_s = timeout_s
        self.reachable = True
        config = {
            "message.timeout.ms": max(1000, int(timeout_s * 1000) - 500),
            "reconnect.backoff.max.ms": 1000,
            "error_cb": self._on_error,
            **extra,
        }
        self._producer: Producer = create_producer(bootstrap, **config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._thread.start()

    async def deliver(self, records: Sequence[Record]) -> None:
        if not records:
            return
        pending = _Pending(len(records), asyncio.get_running_loop())
        produce = self._producer.produce
        try:
            for record in records:
                produce(record.topic, record.value, record.key, on_delivery=pending.delivered)
        except (BufferError, KafkaException) as err:
            raise KafkaUnavailable(f"producer refused the records: {err}") from None
        try:
            await asyncio.wait_for(pending.future, self._timeout_s)
        except TimeoutError:
            raise KafkaUnavailable(f"not acknowledged within {self._timeout_s}s") from None
        if pending.errors:
            raise KafkaUnavailable(f"{len(pending.errors)} not acknowledged: {pending.errors[0]}")
        self.reachable = True

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        left = self._producer.flush(timeout_s)
        if left:
            log.error("producer closed with %d undelivered records", left)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.reachable = False
        log.warning("kafka: %s", err)
