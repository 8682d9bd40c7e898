"""One batch of raw events through the identity graph: decode, resolve, commit, emit.

The stream's shape:
    raw bytes (7 raw topics)
      -> RawEvent (invalid -> dead letter)
      -> Observation (normalised identifiers; none usable -> dead letter)
      -> Resolution (Redis, atomic; links + changes kept in an outbox until Kafka acks)
      -> identity.links, identity.changes, customer.events (keyed by customer id)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import redis.exceptions

from runtime.batches import retry_forever
from runtime.deadletter import DeadLetterSink, utcnow
from runtime.intake import Received, decode_batch
from schemas.codec import encode
from schemas.customer import CustomerEvent
from schemas.deadletter import DeadLetter
from schemas.events import RAW_EVENT_ADAPTER, EventEnvelope
from schemas.identity import CustomersMerged, CustomerSplit, IdentityConflictRecorded
from schemas.topics import CUSTOMER_EVENTS, IDENTITY_CHANGES, IDENTITY_LINKS
from services.identity import metrics
from services.identity.adapters.redis_graph import GraphContentionError, RedisGraph, View
from services.identity.domain.diff import Resolution
from services.identity.domain.rules import Observation, Rules, observe

SERVICE = "identity"

Send = Callable[[str, bytes, bytes], Awaitable[Any]]  # (topic suffix, key, value) -> ack future


@dataclass(frozen=True)
class Output:
    suffix: str
    key: bytes
    value: bytes


def outputs_of(result: Resolution) -> list[Output]:
    out = [
        Output(IDENTITY_LINKS.suffix, link.link_id.encode(), encode(link)) for link in result.links
    ]
    out += [
        Output(IDENTITY_CHANGES.suffix, c.customer_id.encode(), encode(c)) for c in result.changes
    ]
    return out


def pack(outputs: list[Output]) -> bytes:
    return orjson.dumps([[o.suffix, o.key.decode(), o.value.decode()] for o in outputs])


def unpack(raw: bytes) -> list[Output]:
    return [Output(s, k.encode(), v.encode()) for s, k, v in orjson.loads(raw)]


class Resolver:
    def __init__(
        self, graph: RedisGraph, send: Send, dead_letters: DeadLetterSink, *, max_bytes: int
    ) -> None:
        self.graph = graph
        self.send = send
        self.dead_letters = dead_letters
        self.max_bytes = max_bytes

    async def handle(self, events: Sequence[Any]) -> None:
        """A faust batch: each valid event ends on customer.events, the rest dead-lettered."""
        received = await decode_batch(
            events, RAW_EVENT_ADAPTER, self.dead_letters, service=SERVICE, max_bytes=self.max_bytes
        )
        pairs = [(r, observe_event(r.value, self.graph.rules)) for r in received]
        usable = []
        for item, obs in pairs:
            _count_dropped(obs)
            if obs.idents:
                usable.append((item, obs))
            else:
                await self._dead_letter(item, obs)
        started = time.perf_counter()
        await retry_forever(
            lambda: self._resolve_all(usable),
            retryable=(
                redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError,
                GraphContentionError,
            ),
            what="identity batch",
        )
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    async def _resolve_all(self, items: list[tuple[Received[Any], Observation]]) -> None:
        view = View()
        await self.graph.read(view, (i.key for _, obs in items for i in obs.idents))
        view.version = await self.graph.version()
        pending = await self.graph.pending_outboxes(sorted({obs.event_id for _, obs in items}))
        acks = [
            await self.send(o.suffix, o.key, o.value)
            for raw in pending.values()
            for o in unpack(raw)
        ]
        outboxed = []
        for item, obs in items:
            result = await self.graph.resolve(obs, view, lambda r: pack(outputs_of(r)))
            _count(result)
            outputs = outputs_of(result)
            if outputs:
                outboxed.append(obs.event_id)
            acks += [await self.send(o.suffix, o.key, o.value) for o in outputs]
            acks.append(await self._emit(item.value, result.customer_id, view.version))
        for ack in acks:
            await ack
        await self.graph.clear_outboxes(sorted(set(outboxed) | set(pending)))

    async def _emit(self, event: Any, customer_id: str, version: int) -> Any:
        resolved = CustomerEvent(
            customer_id=customer_id,
            identity_version=version,
            resolved_at=datetime.now(UTC),
            event=event,
        )
        return await self.send(CUSTOMER_EVENTS.suffix, customer_id.encode(), encode(resolved))

    async def _dead_letter(self, item: Received[Any], obs: Observation) -> None:
        why = "; ".join(f"{kind} {value!r}: {reason}" for kind, value, reason in obs.rejected)
        await self.dead_letters.send(
            DeadLetter.of(
                encode(item.value),
                reason="rejected",
                error=f"no usable identifier ({why})",
                service=SERVICE,
                key=item.key,
                source_topic=item.topic,
                source_partition=item.partition,
                source_offset=item.offset,
                occurred_at=utcnow(),
            )
        )


def observe_event(event: EventEnvelope, rules: Rules) -> Observation:
    return observe(event.event_id, event.occurred_at, event.source.value, event.identifiers, rules)


def _count_dropped(obs: Observation) -> None:
    for kind, _, why in obs.rejected:
        metrics.IDENTIFIERS_DROPPED.labels(kind, why.split(":")[0]).inc()


def _count(result: Resolution) -> None:
    metrics.EVENTS_RESOLVED.labels("changed" if result.changed else "known").inc()
    for change in result.changes:
        if isinstance(change, CustomersMerged):
            metrics.MERGES.inc(len(change.absorbed))
        elif isinstance(change, CustomerSplit):
            metrics.SPLITS.inc()
        elif isinstance(change, IdentityConflictRecorded):
            metrics.CONFLICTS.labels(change.reason.split(":")[0].split(" ")[0]).inc()
    created = sum(1 for c in result.upserts if c.version == 1)
    metrics.CUSTOMERS_CREATED.inc(created)
