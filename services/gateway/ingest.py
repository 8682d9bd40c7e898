"""From mapped events to a durable answer: dedupe, produce, wait for acks, remember.

    candidates (valid, encoded) + invalid (with reasons)
      -> drop messageIds already accepted (Redis) and repeats inside the request
      -> produce fresh events to raw topics and invalid ones to the dead-letter topic
      -> wait until Kafka acknowledged every record (or raise KafkaUnavailable -> 503)
      -> remember the accepted event_ids (only now, so a failed produce can be retried)

The HTTP handlers, the LINE webhook and the POS importer all go through here.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import orjson

from runtime.metrics import DEADLETTERS
from schemas.codec import encode
from schemas.deadletter import DeadLetter, DeadLetterReason
from schemas.events import EventEnvelope
from schemas.identifiers import TRUST_ORDER, Identifiers
from schemas.topics import DEADLETTER, raw_topic_for
from services.gateway.metrics import (
    EVENTS_ACCEPTED,
    EVENTS_DUPLICATE,
    EVENTS_REJECTED,
    KAFKA_UNAVAILABLE,
    PRODUCE_SECONDS,
)

SERVICE = "gateway"


class KafkaUnavailable(RuntimeError):
    """Kafka did not acknowledge every record in time: answer 503, the sender retries."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes | str | None
    value: bytes


class Sink(Protocol):
    async def deliver(self, records: Sequence[Record]) -> None:
        """Return once Kafka acknowledged every record; else raise KafkaUnavailable."""


class SeenStore(Protocol):
    async def already_seen(self, event_ids: Sequence[str]) -> set[str]: ...

    async def mark_seen(self, event_ids: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class Candidate:
    index: int
    event_id: str
    record: Record


@dataclass(frozen=True, slots=True)
class Invalid:
    index: int
    message_id: str | None
    reason: DeadLetterReason
    error: str
    original: bytes


@dataclass(frozen=True, slots=True)
class Report:
    accepted: int
    duplicates: int
    rejected: tuple[Invalid, ...]
    produced: frozenset[int] = frozenset()
    """Indexes of the candidates produced now (not duplicates)."""

    def as_json(self) -> dict[str, object]:
        return {
            "success": self.accepted + self.duplicates > 0 or not self.rejected,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [
                {"index": r.index, "messageId": r.message_id, "reason": r.reason, "error": r.error}
                for r in self.rejected
            ],
        }


def utcnow() -> datetime:
    return datetime.now(UTC)


class Ingest:
    def __init__(
        self,
        sink: Sink,
        seen: SeenStore,
        namespace: str,
        *,
        service: str = SERVICE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sink = sink
        self._seen = seen
        self._namespace = namespace
        self._service = service
        self._clock = clock
        self._topics: dict[str, str] = {}

    def candidate(self, index: int, event: EventEnvelope) -> Candidate:
        event_type = str(getattr(event, "type"))  # noqa: B009  (every RawEvent has one)
        topic = self._topics.get(event_type)
        if topic is None:
            topic = self._topics[event_type] = raw_topic_for(event_type).name(self._namespace)
        record = Record(topic, routing_key(event.identifiers), encode(event))
        return Candidate(index, event.event_id, record)

    async def submit(
        self, candidates: Sequence[Candidate], invalid: Sequence[Invalid], source: str
    ) -> Report:
        """Produce and wait for the acks; raises :class:`KafkaUnavailable` (nothing is kept)."""
        first: dict[str, Candidate] = {}
        for candidate in candidates:
            first.setdefault(candidate.event_id, candidate)  # keeps the request's order
        unique = list(first.values())
        already = await self._seen.already_seen([c.event_id for c in unique]) if unique else set()
        fresh = [c for c in unique if c.event_id not in already]
        records = [c.record for c in fresh] + [self._dead_letter(bad) for bad in invalid]
        started = time.perf_counter()
        try:
            await self._sink.deliver(records)
        except KafkaUnavailable:
            KAFKA_UNAVAILABLE.inc()
            raise
        PRODUCE_SECONDS.observe(time.perf_counter() - started)
        if fresh:
            await self._seen.mark_seen([c.event_id for c in fresh])
        duplicates = len(candidates) - len(fresh)
        EVENTS_ACCEPTED.labels(source).inc(len(fresh))
        EVENTS_DUPLICATE.labels(source).inc(duplicates)
        for bad in invalid:
            EVENTS_REJECTED.labels(source, bad.reason).inc()
            DEADLETTERS.labels(self._service, bad.reason).inc()
        rejected = tuple(sorted(invalid, key=lambda bad: bad.index))
        return Report(len(fresh), duplicates, rejected, frozenset(c.index for c in fresh))

    def _dead_letter(self, bad: Invalid) -> Record:
        letter = DeadLetter.of(
            bad.original,
            reason=bad.reason,
            error=bad.error,
            service=self._service,
            key=bad.message_id.encode() if bad.message_id else None,
            occurred_at=self._clock(),
        )
        return Record(DEADLETTER.name(self._namespace), self._service, encode(letter))


_TRUST_ORDER = tuple(kind.value for kind in TRUST_ORDER)


def routing_key(identifiers: Identifiers) -> str:
    """``Identifiers.routing_key()`` without its enum walk (a hot path: one per event).

    tests/unit/gateway/test_ingest.py checks both agree on every example event.
    """
    for kind in _TRUST_ORDER:
        value = getattr(identifiers, kind)
        if value:
            return f"{kind}:{unicodedata.normalize('NFKC', value).strip()}"
    return identifiers.routing_key()  # unreachable for a valid model; let it raise


def original_bytes(message: object) -> bytes:
    """The bytes to keep in a dead letter for one event of a request."""
    try:
        return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson stops at 255 levels; repr goes on to Python's recursion limit
        try:
            return repr(message).encode()
        except RecursionError:
            return b'"(not kept: nested too deep to serialise)"'
