"""One batch of raw events through the identity graph: decode, resolve, commit, emit.

The stream's shape:
    raw bytes (7 raw topics)
      -> RawEvent, most types as plain dicts (schemas.plain; invalid -> dead letter)
      -> Observation (normalised identifiers; none usable -> dead letter)
      -> Resolution (Redis, atomic; links + changes kept in an outbox until Kafka acks)
      -> identity.links, identity.changes, customer.events (keyed by customer id)

A batch's outputs are acknowledged by Kafka, and its outboxes cleared, while the next
batch is resolved (:meth:`Resolver._settle`); the consumer commits the batch's offsets
once the same outputs are acknowledged (``BatchConsumer(settle=producer)``). Outputs that
Kafka refuses stop the worker: the batch is read again and its outboxes sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import redis.exceptions

from runtime.batches import fail_stop, retry_forever
from runtime.deadletter import DeadLetterSink, utcnow
from runtime.intake import Received, decode_batch
from runtime.producer import DeliveryError
from runtime.redis import REDIS_OUTAGE
from schemas.base import SCHEMA_VERSION
from schemas.codec import encode
from schemas.customer import HeaderList, routing_header, routing_headers
from schemas.deadletter import DeadLetter
from schemas.events import RawEvent
from schemas.identifiers import Identifiers
from schemas.identity import CustomersMerged, CustomerSplit, IdentityConflictRecorded
from schemas.plain import RAW_EVENT_READER, PlainEvent
from schemas.topics import CUSTOMER_EVENTS, IDENTITY_CHANGES, IDENTITY_LINKS
from services.identity import metrics
from services.identity.adapters.redis_graph import GraphContentionError, RedisGraph, View
from services.identity.domain.diff import Known, Resolution
from services.identity.domain.graph import FirstSighting
from services.identity.domain.model import link_id_for
from services.identity.domain.rules import Observation, Rules, observe

SERVICE = "identity"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Output:
    suffix: str
    key: bytes
    value: bytes


def outputs_of(result: Resolution) -> list[Output]:
    if isinstance(result, FirstSighting):
        return first_sighting_outputs(result)
    if not result.links and not result.changes:
        return []  # (most events)
    out = [
        Output(IDENTITY_LINKS.suffix, link.link_id.encode(), encode(link)) for link in result.links
    ]
    out += [
        Output(IDENTITY_CHANGES.suffix, c.customer_id.encode(), encode(c)) for c in result.changes
    ]
    return out


def first_sighting_outputs(result: FirstSighting) -> list[Output]:
    """A first sighting's link and change, written as ``encode`` writes the models
    ``result.links`` and ``result.changes`` (fields in the models' order, unset ones left
    out, UTC times with "Z"; tests/unit/identity/test_outputs.py holds the bytes to
    the models'), without making the models."""
    node, customer_id = result.node, result.customer_id
    kind, _, value = node.key.partition(":")
    ref = {"kind": kind, "value": value}
    at = datetime.fromtimestamp(node.first_seen / 1000, UTC)
    link_id = link_id_for(node.key)
    link = {
        "type": "linked",
        "link_id": link_id,
        "identifier": ref,
        "event_id": node.event_id,
        "source": node.source,
        "occurred_at": at,
        "schema_version": SCHEMA_VERSION,
    }
    added = {
        "customer_id": customer_id,
        "version": 1,
        "occurred_at": at,
        "schema_version": SCHEMA_VERSION,
        "type": "identifier_added",
        "identifier": ref,
        "cause_event_id": node.event_id,
    }
    return [
        Output(
            IDENTITY_LINKS.suffix, link_id.encode(), orjson.dumps(link, option=orjson.OPT_UTC_Z)
        ),
        Output(
            IDENTITY_CHANGES.suffix,
            customer_id.encode(),
            orjson.dumps(added, option=orjson.OPT_UTC_Z),
        ),
    ]


def pack(outputs: list[Output]) -> bytes:
    """An outbox: ``[[suffix, key, message], ...]``, each message's JSON as it is (not
    escaped into a string: that made an outbox ~1.5x its messages' size)."""
    return orjson.dumps([[o.suffix, o.key.decode(), orjson.Fragment(o.value)] for o in outputs])


def unpack(raw: bytes) -> list[Output]:
    """An outbox's messages (also one written before 2026-12-05: messages as strings)."""
    return [
        Output(s, k.encode(), v.encode() if isinstance(v, str) else orjson.dumps(v))
        for s, k, v in orjson.loads(raw)
    ]


class Sink(Protocol):
    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        *,
        headers: HeaderList | None = None,
    ) -> None: ...

    async def flush(self) -> None: ...


class Resolver:
    def __init__(
        self,
        graph: RedisGraph,
        sink: Sink,
        dead_letters: DeadLetterSink,
        *,
        namespace: str,
        max_bytes: int,
    ) -> None:
        self.graph = graph
        self.sink = sink
        self.dead_letters = dead_letters
        self.namespace = namespace
        self.max_bytes = max_bytes
        self._settling: asyncio.Future[None] | None = None  # the last batch's outputs
        self._settling_events: set[str] = set()  # whose outboxes that clears
        self._rest: asyncio.Future[None] | None = None  # the last batch's, from begin()

    async def handle(self, events: Sequence[Any]) -> None:
        """A batch: each valid event ends on customer.events, the rest dead-lettered."""
        await (await self.begin(events))

    async def begin(self, events: Sequence[Any]) -> asyncio.Future[None]:
        """:meth:`handle` in two parts (``BatchConsumer.run(..., overlapped=True)``): the
        batch read and its identifiers observed now, while the previous batch's Redis
        calls run; then, once that batch is done, the rest (Redis, Kafka), returned
        running. Its commit in Redis then runs while the next batch is read."""
        usable = await self._observed(events)
        if self._rest is not None:
            await self._rest  # a batch's reads come after the commit of the one before
        self._rest = asyncio.ensure_future(self._resolve_batch(usable))
        return self._rest

    async def _observed(self, events: Sequence[Any]) -> list[tuple[Received[Any], Observation]]:
        received = await decode_batch(
            events, RAW_EVENT_READER, self.dead_letters, service=SERVICE, max_bytes=self.max_bytes
        )
        usable = []
        for item in received:
            obs = observe_event(item.value, self.graph.rules)
            if obs.rejected:
                _count_dropped(obs)
            if obs.idents:
                usable.append((item, obs))
            else:
                await self._dead_letter(item, obs)
        return usable

    async def _resolve_batch(self, usable: list[tuple[Received[Any], Observation]]) -> None:
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
        # an event of the batch still settling (a duplicate sent again at once) has its
        # outbox sent and cleared by that batch: here it resolves to nothing new
        ids = {obs.event_id for _, obs in items} - self._settling_events
        pending = await self.graph.prefetch(view, [obs for _, obs in items], sorted(ids))
        resolved = []
        graph = self.graph
        for item, obs in items:
            result = graph.plan_fast(obs, view) or await graph.plan(obs, view)
            outputs = outputs_of(result)
            if outputs:
                view.outboxes[obs.event_id] = pack(outputs)
            resolved.append((item, result, outputs))
        if self._settling_events & view.outboxes.keys():  # an event id used again at once:
            await self._settled()  # its old outbox goes before the new one is written
        expected, now = self.graph.expected_version(view), datetime.now(UTC)
        committing = asyncio.ensure_future(self.graph.commit(view))
        try:
            await asyncio.sleep(0)  # its script call on its way: Redis runs it meanwhile,
            # and this worker makes the batch's customer events, for the version the
            # commit returns unless another worker wrote (then they are made again)
            made = []
            if expected >= 0:
                made = customer_events(resolved, customer_event_stamp(expected, now))
            await committing
        finally:
            committing.cancel()  # (done by now, unless this failed)
        if view.version != expected:  # (another writer about: expected was -1)
            made = customer_events(resolved, customer_event_stamp(view.version, now))
        await self._settled()  # one batch's outputs in flight at a time
        for raw in pending.values():
            for output in unpack(raw):
                self._produce(output)
        topic, produce = f"{self.namespace}.{CUSTOMER_EVENTS.suffix}", self.sink.produce
        for (_, _, outputs), (key, value, headers) in zip(resolved, made, strict=True):
            for output in outputs:
                self._produce(output)
            produce(topic, key, value, headers=headers)
        events = set(view.outboxes) | set(pending)
        self._settling, self._settling_events = asyncio.ensure_future(self._settle(events)), events
        _count([result for _, result, _ in resolved])

    async def _settled(self) -> None:
        """The previous batch's outputs acknowledged and its outboxes cleared (as a rule
        done while this batch was resolved)."""
        if self._settling is not None:
            try:
                await self._settling
            finally:
                self._settling, self._settling_events = None, set()

    async def _settle(self, events: set[str]) -> None:
        try:
            await self.sink.flush()
        except DeliveryError as err:  # its offsets must not be committed: read it again
            fail_stop(SERVICE, f"identity outputs not acknowledged: {err!r}")
            return  # (the process is gone: the outboxes stay for the batch read again)
        try:
            await self.graph.clear_outboxes(sorted(events))
        except REDIS_OUTAGE as err:  # they expire; only a replay of these events reads them
            log.warning("outboxes not cleared", extra={"service": SERVICE, "error": str(err)})

    def _produce(self, output: Output) -> None:
        topic = f"{self.namespace}.{output.suffix}"
        self.sink.produce(topic, output.key, output.value)

    async def _dead_letter(self, item: Received[Any], obs: Observation) -> None:
        why = "; ".join(f"{kind} {value!r}: {reason}" for kind, value, reason in obs.rejected)
        await self.dead_letters.send(
            DeadLetter.of(
                item.raw,
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


def customer_events(
    resolved: list[tuple[Received[Any], Resolution, list[Output]]], stamp: bytes
) -> list[tuple[bytes, bytes, HeaderList]]:
    """Each event's message on customer.events: key, value, headers."""
    return [
        (
            result.customer_id.encode(),
            customer_event_bytes(result.customer_id, stamp, item.raw),
            headers_of(item.value),
        )
        for item, result, _ in resolved
    ]


def customer_event_stamp(version: int, now: datetime) -> bytes:
    """What a CustomerEvent's JSON holds between its customer id and its event: the same
    for every event of a batch."""
    fields = {"identity_version": version, "resolved_at": now, "schema_version": SCHEMA_VERSION}
    return b"," + orjson.dumps(fields)[1:-1] + b',"event":'


def customer_event_bytes(customer_id: str, stamp: bytes, raw_event: bytes) -> bytes:
    """A CustomerEvent's JSON with the raw event's validated bytes spliced in as they are
    (re-serialising the event would cost more than everything else on the fast path)."""
    return b"".join((b'{"customer_id":', orjson.dumps(customer_id), stamp, raw_event, b"}"))


def observe_event(event: PlainEvent | RawEvent, rules: Rules) -> Observation:
    """What ``event`` (read into a dict or a model: ``schemas.plain``) says of identity."""
    if type(event) is dict:
        ids = Identifiers.present_in(event["identifiers"])
        return observe(event["event_id"], event["occurred_at"], event["source"].value, ids, rules)
    model: RawEvent = event  # type: ignore[assignment]
    ids = model.identifiers.present()
    return observe(model.event_id, model.occurred_at, model.source.value, ids, rules)


def headers_of(event: PlainEvent | RawEvent) -> HeaderList:
    """The routing header identity writes with ``event`` on customer.events."""
    if type(event) is dict:
        return routing_header(event["type"], event["event_id"], event["occurred_at"])
    return routing_headers(event)  # type: ignore[arg-type]


def _count_dropped(obs: Observation) -> None:
    for kind, _, why in obs.rejected:
        metrics.IDENTIFIERS_DROPPED.labels(kind, why.split(":")[0]).inc()


def _count(results: list[Resolution]) -> None:
    """One batch's resolutions, counted once per metric (``inc`` costs µs an event)."""
    changed = merges = splits = created = 0
    conflicts: dict[str, int] = {}
    for result in results:
        kind = type(result)
        if kind is Known:  # most: nothing to count but the event
            continue
        if kind is FirstSighting:  # its change is a new identifier's, unmade
            changed, created = changed + 1, created + 1
            continue
        changed += result.changed
        for change in result.changes:
            if isinstance(change, CustomersMerged):
                merges += len(change.absorbed)
            elif isinstance(change, CustomerSplit):
                splits += 1
            elif isinstance(change, IdentityConflictRecorded):
                rule = change.reason.split(":")[0].split(" ")[0]
                conflicts[rule] = conflicts.get(rule, 0) + 1
        created += sum(1 for c in result.upserts if c.version == 1)
    for counter, n in (
        (metrics.RESOLVED_CHANGED, changed),
        (metrics.RESOLVED_KNOWN, len(results) - changed),
        (metrics.MERGES, merges),
        (metrics.SPLITS, splits),
        (metrics.CUSTOMERS_CREATED, created),
    ):
        if n:
            counter.inc(n)
    for rule, n in conflicts.items():
        metrics.CONFLICTS.labels(rule).inc(n)
