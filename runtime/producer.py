"""A confluent-kafka producer for asyncio workers: produce now, await the acks once.

Used where a worker emits many messages per input batch: ``produce`` only buffers
(microseconds), ``flush`` waits until Kafka acknowledged every one of them (acks=all,
idempotent) or raises, so the caller acknowledges its input only after its output is safe.
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaError, Message

from runtime.kafka import create_producer


class DeliveryError(RuntimeError):
    """Kafka did not acknowledge some messages; the input must be processed again."""


class AsyncProducer:
    def __init__(self, bootstrap: str, **extra: Any) -> None:
        self._producer = create_producer(bootstrap, **{"linger.ms": 2, **extra})
        self._errors: list[str] = []

    def produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=self._delivered)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _delivered(self, err: KafkaError | None, message: Message) -> None:
        if err is not None:
            self._errors.append(f"{message.topic()}: {err}")

    async def flush(self, wait_seconds: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        remaining = await loop.run_in_executor(None, self._producer.flush, wait_seconds)
        errors, self._errors = self._errors, []
        if remaining or errors:
            raise DeliveryError(f"{remaining} unacknowledged, errors: {errors[:5]}")
