"""The dead-letter topic: where input goes that cannot be processed, with the reason.

Nothing is dropped silently: an agent either processes a message or hands it here, and
the send is acknowledged by Kafka before the agent moves on (and so before its offset
is committed).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import Producer

from runtime.metrics import DEADLETTERS
from schemas.codec import encode
from schemas.deadletter import DeadLetter
from schemas.topics import DEADLETTER

log = logging.getLogger(__name__)


class DeadLetterSink(Protocol):
    async def send(self, letter: DeadLetter) -> None: ...


def _record(letter: DeadLetter) -> None:
    DEADLETTERS.labels(letter.service, letter.reason).inc()
    log.warning(
        "dead letter",
        extra={
            "reason": letter.reason,
            "error": letter.error[:500],
            "source_topic": letter.source_topic,
            "source_offset": letter.source_offset,
        },
    )


def _key(letter: DeadLetter) -> bytes:
    return (letter.source_topic or letter.service).encode()


class FaustDeadLetters:
    """Dead letters from inside a faust app, through the app's own producer."""

    def __init__(self, app: Any, namespace: str) -> None:
        self._topic = app.topic(
            DEADLETTER.name(namespace), key_serializer="raw", value_serializer="raw"
        )

    async def send(self, letter: DeadLetter) -> None:
        delivery = await self._topic.send(key=_key(letter), value=encode(letter))
        await delivery  # acknowledged before the agent acks the source message
        _record(letter)


class ProducerDeadLetters:
    """Dead letters from plain confluent-kafka code (gateway, importers, CLIs)."""

    def __init__(self, producer: Producer, namespace: str, flush_timeout: float = 10.0) -> None:
        self._producer = producer
        self._topic = DEADLETTER.name(namespace)
        self._flush_timeout = flush_timeout

    async def send(self, letter: DeadLetter) -> None:
        self.send_sync(letter)

    def send_sync(self, letter: DeadLetter) -> None:
        self._producer.produce(self._topic, key=_key(letter), value=encode(letter))
        if self._producer.flush(self._flush_timeout) > 0:
            raise RuntimeError(f"dead letter not acknowledged within {self._flush_timeout}s")
        _record(letter)


def utcnow() -> datetime:
    return datetime.now(UTC)
