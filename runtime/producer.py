"""A confluent-kafka producer for asyncio workers: produce now, await the acks once.

Used where a worker emits many messages per input batch: ``produce`` only buffers
(microseconds), ``flush`` waits until Kafka acknowledged every one of them (acks=all,
idempotent) or raises, so the caller acknowledges its input only after its output is safe.

``mark()`` / ``acknowledged(mark)`` let a caller commit an input later, once anything
flushed what it produced: a batch's outputs are usually acknowledged by the next batch's
own flush, at no extra wait (``runtime.consumer``'s ``settle``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from typing import Any

from confluent_kafka import KafkaError, Message

from runtime.kafka import create_producer
from schemas.customer import HeaderList


class DeliveryError(RuntimeError):
    """Kafka did not acknowledge some messages; the input must be processed again."""


class AsyncProducer:
    def __init__(self, bootstrap: str, **extra: Any) -> None:
        # Only failures call back into Python: a report per delivered message would cost
        # the worker ~1 µs of GIL each, and flush() already says when all are delivered.
        # The callback is the producer's default (config), not an argument of each
        # produce: with positional arguments a call costs ~0.9 µs instead of ~1.4.
        self._producer = create_producer(
            bootstrap,
            **{
                "linger.ms": 2,
                "delivery.report.only.error": True,
                "on_delivery": self._delivered,
                **extra,
            },
        )
        self._errors: list[str] = []
        self._round: _Round | None = None
        self._produced = 0  # messages buffered so far
        self._acked = 0  # every message up to this count is acknowledged
        self._refused = 0  # deliveries Kafka refused, ever (whichever flush reported them)

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        *,
        partition: int | None = None,
        headers: HeaderList | None = None,
    ) -> None:
        """Buffer one message (the key's partition unless ``partition`` is given)."""
        # confluent-kafka's positional order: topic, value, key, partition (-1: the
        # key's), callback, on_delivery (None: the default), timestamp (0: now), headers
        produce = self._producer.produce
        while True:
            try:
                if headers is not None:
                    part = -1 if partition is None else partition
                    produce(topic, value, key, part, None, None, 0, headers)
                elif partition is None:
                    produce(topic, value, key)
                else:
                    produce(topic, value, key, partition)
                self._produced += 1
                return
            except BufferError:
                self._producer.poll(0.05)

    def _delivered(self, err: KafkaError | None, message: Message) -> None:
        if err is not None:
            self._refused += 1
            self._errors.append(f"{message.topic()}: {err}")

    async def flush(self, wait_seconds: float = 60.0) -> None:
        upto = self._produced
        loop = asyncio.get_running_loop()
        remaining = await loop.run_in_executor(None, self._producer.flush, wait_seconds)
        errors, self._errors = self._errors, []
        if remaining or errors:
            raise DeliveryError(f"{remaining} unacknowledged, errors: {errors[:5]}")
        self._acked = max(self._acked, upto)

    def mark(self) -> int:
        """The position of everything produced so far, for :meth:`acknowledged`."""
        return self._produced

    async def acknowledged(self, mark: int) -> None:
        """Everything produced before ``mark`` is acknowledged (or this raises): at once
        when a flush since covered it, else one flush. Once any delivery was refused this
        always raises: which messages it lost is not known, and another caller's flush
        may have taken its error (the caller stops; the inputs are read again)."""
        if self._acked < mark:
            await self.flush()
        if self._refused:
            raise DeliveryError(f"{self._refused} deliveries refused since the start")

    def acknowledged_blocking(self, mark: int, wait_seconds: float) -> bool:
        """:meth:`acknowledged` from a thread that must not leave it (a rebalance
        callback); False when not all of it was acknowledged in time."""
        if self._acked < mark:
            remaining = self._producer.flush(wait_seconds)
            if remaining or self._errors:  # the next flush raises them
                return False
            self._acked = max(self._acked, mark)
        return not self._refused  # (as in acknowledged: read after the flush's reports)

    def acks(self) -> Awaitable[None]:
        """Awaits "Kafka acknowledged everything produced so far": one flush, shared by
        every holder of the same round (a batch's hundred sends wait on one flush)."""
        if self._round is None or self._round.started:
            self._round = _Round(self)
        return self._round


class _Round:
    def __init__(self, producer: AsyncProducer) -> None:
        self.producer = producer
        self._task: asyncio.Future[None] | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    def __await__(self) -> Generator[Any, None, None]:
        if self._task is None:
            self._task = asyncio.ensure_future(self.producer.flush())
        return self._task.__await__()
