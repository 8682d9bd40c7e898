"""Between the agents and the journey engine: load the row, call the engine, emit,
persist, index, count. No journey decision is made here.

Stream shape:
    customer.events ──relevant type?──▶ on_event ─┐
    segment.changes ─────────────────▶ on_segment ├─▶ notifications.requested, journey.conversions
    notifications.outcomes ──────────▶ on_outcome │   then the table row (state + due)
    control: tick / fold / handed_off / forwarded ┘   then the due index and the reports
    sweep (timer) ──pop due from the index──▶ control[TicksDue → owner's partition]

Every handler runs in a unit of work over a batch of inputs (a batch of customer events,
segment changes or outcomes; one control message, which may carry 500 ticks): the rows
it writes are held back (:class:`runtime.batches.Staging`) until Kafka acknowledged
every notification request and conversion the batch sent, and faust commits the
inputs' offsets only after the batch. A crash at any point either loses nothing or
loses the rows with the uncommitted inputs, which are read again: the requests go out
again under the same notification_id, and the notifier drops the duplicates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from pydantic import BaseModel

from runtime.batches import Staging, fail_stop
from runtime.memory import release_free_memory
from runtime.metrics import child
from runtime.redis import REDIS_OUTAGE
from runtime.store import row_reader
from runtime.time_index import TimeIndex
from schemas.customer import Headers, routing_of
from schemas.identity import CustomersMerged, IdentityChange
from schemas.journeys import JourneyConverted
from schemas.notifications import NotificationOutcome, SendNotification
from schemas.segments import SegmentChanged
from services.journey import metrics
from services.journey.adapters.codec import decode, encode, next_due_of
from services.journey.adapters.reports import JourneyReports
from services.journey.domain import engine
from services.journey.domain.catalogue import Context
from services.journey.domain.facts import Event
from services.journey.domain.outputs import Converted, Entered, Exited, Fired, Requested, Skipped
from services.journey.domain.state import CustomerState
from services.journey.messages import (
    TICKS_PER_MESSAGE,
    ControlMessage,
    EventForwarded,
    FoldRequested,
    StateHandedOff,
    TickDue,
    TicksDue,
)

log = logging.getLogger(__name__)

REPORT_BACKLOG = 20  # report flushes pending (x flush_batch) before a handler waits


def conversion_of(customer_id: str, c: Converted) -> JourneyConverted:
    return JourneyConverted(
        conversion_id=f"{c.instance_id}:goal",
        customer_id=customer_id,
        journey_id=c.journey,
        instance_id=c.instance_id,
        variant=c.variant,
        order_id=c.order_id,
        amount=c.amount,
        recovered=c.recovered,
        occurred_at=datetime.fromtimestamp(c.at, UTC),
    )


class JourneyClock:
    """Wall time, moved forward by event time when the shop's clock runs ahead (a
    simulation or an accelerated test); events further ahead than ``skew`` than the
    wall clock (a phone with a wrong clock) do not move it."""

    def __init__(self, skew_seconds: float) -> None:
        self.skew, self.watermark = skew_seconds, 0.0

    def observe(self, at: float) -> None:
        if at > self.watermark and at <= time.time() + self.skew:
            self.watermark = at

    def now(self) -> float:
        return max(time.time(), self.watermark)


class EventClock(JourneyClock):
    """The shop's clock on event time alone, from ``start``, never the wall clock: the
    same decisions (quiet hours, caps, due times) whenever it runs. For tests with
    fixed dates and for measurements that must repeat (``bench/journey.py
    --in-process``)."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(skew_seconds=0)
        self.watermark = start

    def observe(self, at: float) -> None:
        self.watermark = max(self.watermark, at)

    def now(self) -> float:
        return self.watermark


class Emitter(Protocol):
    """Sends return their delivery (awaited only where a row must not get ahead of it)."""

    async def request(self, request: SendNotification) -> Awaitable[Any]: ...
    async def conversion(self, conversion: JourneyConverted) -> Awaitable[Any]: ...
    async def control(
        self, partition: int, key: str, message: BaseModel, *, wait: bool = False
    ) -> None: ...


class Processor:
    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        ctx: Context,
        emitter: Emitter,
        reports: JourneyReports,
        *,
        partition_of: Callable[[str], int],
        owned: Callable[[], set[int]],
        clock: JourneyClock,
        sweep_batch: int = 20_000,
        flush_batch: int = 1_000,
    ) -> None:
        self.table, self.ctx, self.emitter, self.reports = table, ctx, emitter, reports
        self.partition_of, self.owned, self.clock = partition_of, owned, clock
        self.sweep_batch, self.flush_batch = sweep_batch, flush_batch
        self.index = TimeIndex()
        self.staging: Staging[CustomerState] = Staging(table)
        self.read = row_reader(table)
        self.relevant = ctx.catalogue.relevant_types()
        self._tally: dict[Any, float] = {}  # metric child -> amount, this unit's
        self._flushing: asyncio.Future[None] | None = None  # the reports' flush in flight

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[None]:
        """A unit of work (:meth:`Staging.unit`). What it counted reaches the metrics
        at its end, one ``inc`` per metric and label set instead of one per output
        (~0.6 µs each); a unit that failed counts nothing (its inputs are read again)."""
        running = False  # (a unit cancelled while it waits for its turn owns no tally)
        try:
            async with self.staging.unit():
                running = True
                yield
            for counter, amount in self._tally.items():
                counter.inc(amount)
        finally:
            if running:
                self._tally.clear()

    def tally(self, counter: Any, amount: float = 1) -> None:
        """Count ``amount`` on ``counter`` (a metric's child) when the unit ends."""
        self._tally[counter] = self._tally.get(counter, 0) + amount

    # -- intake ------------------------------------------------------------------

    def wants(self, raw: bytes, headers: Headers | None = None) -> bool:
        """Peek at a customer event (its routing headers, else its body): move the
        clock; False if no journey can use its type (it is then not decoded at all, and
        counted as skipped by the caller).
        Unreadable bytes are decoded (and dead-lettered) by the caller."""
        routing = routing_of(headers)
        if routing is not None:
            kind = routing.type
            self.clock.observe(routing.occurred_at)
        else:
            try:
                event = orjson.loads(raw)["event"]
                kind, occurred = event["type"], event["occurred_at"]
                if not isinstance(kind, str):  # e.g. an object: unhashable, invalid anyway
                    return True
                self.clock.observe(datetime.fromisoformat(occurred).timestamp())
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return True
        return kind in self.relevant  # the caller counts the skipped ones, per batch

    def load(
        self, customer_id: str, partition: int | None = None
    ) -> tuple[CustomerState | None, bytes | None]:
        """Her state and row, from the ``partition`` whose input is handled (where the
        row lives; None: wherever it is)."""
        key = customer_id.encode()
        staged = self.staging.get(key)
        if staged is not None:
            return staged
        raw = self.read(key, partition)
        return (None, None) if raw is None else (decode(raw)[0], raw)

    async def on_customer_event(self, customer_id: str, event: Event, partition: int) -> None:
        await self.on_customer_events([(customer_id, event, partition)])

    async def on_customer_events(self, events: Sequence[tuple[str, Event, int]]) -> None:
        async with self.unit():
            for customer_id, event, partition in events:
                await self.customer_event(customer_id, event, partition)

    async def customer_event(self, customer_id: str, event: Event, partition: int) -> None:
        """One event, inside :meth:`unit` (the agent peeks at each event in order
        with :meth:`wants`, which moves the clock, then hands it here)."""
        state, raw = self.load(customer_id, partition)
        if state is not None and state.absorbed_into is not None:
            metrics.EVENTS_FORWARDED.inc()
            forwarded = EventForwarded(customer_id=state.absorbed_into, event=event)
            survivor = state.absorbed_into
            await self.emitter.control(self.partition_of(survivor), survivor, forwarded, wait=True)
            return
        self.tally(metrics.EVENTS_APPLIED)
        result = engine.on_event(state, customer_id, event, self.clock.now(), self.ctx)
        await self.apply(customer_id, result, partition, raw)

    async def on_segment_changes(self, changes: Sequence[tuple[SegmentChanged, int]]) -> None:
        async with self.unit():
            for change, partition in changes:
                state, raw = self.load(change.customer_id, partition)
                if state is not None and state.absorbed_into is not None:
                    continue  # the survivor gets its own segment changes
                now = self.clock.now()
                result = engine.on_segment(state, change.customer_id, change, now, self.ctx)
                await self.apply(change.customer_id, result, partition, raw)

    async def on_outcomes(self, outcomes: Sequence[tuple[NotificationOutcome, int]]) -> None:
        async with self.unit():
            for outcome, partition in outcomes:
                state, raw = self.load(outcome.customer_id, partition)
                if state is None or not state.sends:
                    continue
                result = engine.on_outcome(state, outcome)
                await self.apply(outcome.customer_id, result, partition, raw)

    async def on_identity_change(self, change: IdentityChange) -> None:
        if not isinstance(change, CustomersMerged):
            return
        survivor_partition = self.partition_of(change.customer_id)
        for absorbed in change.absorbed:
            request = FoldRequested(
                customer_id=absorbed,
                survivor=change.customer_id,
                survivor_partition=survivor_partition,
            )
            await self.emitter.control(self.partition_of(absorbed), absorbed, request, wait=True)
            metrics.MERGE_REQUESTED.inc()

    async def on_control(self, message: ControlMessage, partition: int) -> None:
        async with self.unit():
            await self._control(message, partition)

    async def _control(self, message: ControlMessage, partition: int) -> None:
        if isinstance(message, EventForwarded):
            await self.customer_event(message.customer_id, message.event, partition)
        elif isinstance(message, TicksDue):
            await self._ticks(message.customer_ids, partition)
        elif isinstance(message, TickDue):
            await self._ticks([message.customer_id], partition)
        elif isinstance(message, FoldRequested):
            await self._hand_off(message, partition)
        else:
            absorbed, _ = decode(message.row.encode())
            state, raw = self.load(message.customer_id, partition)
            result = engine.merge(state, absorbed, self.clock.now(), self.ctx)
            await self.apply(message.customer_id, result, partition, raw)
            metrics.MERGE_FOLDED.inc()

    async def _ticks(self, customer_ids: list[str], partition: int) -> None:
        """Fire what is due for each customer (the unit of work holds the rows back
        until every request is acknowledged: one round trip per batch of ticks)."""
        now = self.clock.now()
        for customer_id in dict.fromkeys(customer_ids):
            state, raw = self.load(customer_id, partition)
            if state is None:
                continue
            result = engine.on_tick(state, customer_id, now, self.ctx)
            await self.apply(customer_id, result, partition, raw)

    async def _hand_off(self, message: FoldRequested, partition: int) -> None:
        """On the absorbed customer's partition: hand her state to the survivor and leave
        a tombstone. With no state yet (the merge overtook her events: identity resolved
        them to her before it merged, and the control topic is read apart from
        customer.events) the tombstone alone, so that those events, when they come, are
        forwarded to the survivor instead of starting a customer nobody will message."""
        state, _ = self.load(message.customer_id, partition)
        if state is not None and state.absorbed_into is not None:
            return  # handed off already (a replay)
        if state is not None:
            handed = StateHandedOff(
                customer_id=message.survivor,
                absorbed=message.customer_id,
                row=encode(state, message.survivor_partition).decode(),
            )
            survivor_partition = message.survivor_partition
            await self.emitter.control(survivor_partition, message.survivor, handed, wait=True)
            metrics.MERGE_HANDED_OFF.inc()
        self.store(message.customer_id, CustomerState(absorbed_into=message.survivor), partition)

    # -- effects -----------------------------------------------------------------

    async def apply(
        self,
        customer_id: str,
        result: engine.Result,
        partition: int,
        before: bytes | None,
    ) -> None:
        self.staging.expect(await self.emit(customer_id, result))
        self.record(customer_id, result, partition, before)

    async def emit(self, customer_id: str, result: engine.Result) -> list[Awaitable[Any]]:
        deliveries = []
        for output in result.outputs:
            if isinstance(output, Requested):
                deliveries.append(await self.emitter.request(output.request))
            elif isinstance(output, Converted):
                conversion = conversion_of(customer_id, output)
                deliveries.append(await self.emitter.conversion(conversion))
        return deliveries

    def record(
        self, customer_id: str, result: engine.Result, partition: int, before: bytes | None
    ) -> None:
        for output in result.outputs:
            self.count(customer_id, output)
        if before is None and result.state.is_empty():
            return  # nothing worth a row (e.g. a first product view that entered nothing)
        self.store(customer_id, result.state, partition, before)

    def count(self, customer_id: str, output: Any) -> None:
        tally = self.tally
        if isinstance(output, Requested):
            r = output.request
            tally(child(metrics.REQUESTED, r.journey_id or "", r.channels[0].value))
        elif isinstance(output, Entered):
            tally(child(metrics.ENTERED, output.journey, output.variant))
        elif isinstance(output, Exited):
            tally(child(metrics.EXITED, output.journey, output.reason.split(":")[0]))
        elif isinstance(output, Skipped):
            tally(child(metrics.SKIPPED, output.reason))
        elif isinstance(output, Converted):
            tally(child(metrics.CONVERSIONS, output.journey, output.variant))
            tally(child(metrics.REVENUE, output.journey), output.amount)
            if output.recovered:
                tally(child(metrics.RECOVERED, output.journey))
                tally(child(metrics.RECOVERED_REVENUE, output.journey), output.amount)
        elif isinstance(output, Fired):
            metrics.LATENESS.observe(max(0.0, output.lateness))
            return
        self.reports.stage(customer_id, output)

    def store(
        self, customer_id: str, state: CustomerState, partition: int, before: bytes | None = None
    ) -> None:
        due = state.next_due()
        row = encode(state, partition, due)
        if row != before:  # a refused re-entry changes nothing: no changelog write
            self.staging.put(customer_id.encode(), state, row, partition)
        self.index.schedule(partition, customer_id, due)

    async def maybe_flush(self) -> None:
        """Once ``flush_batch`` report facts are pending, send them to Redis in the
        background: the next batch is handled meanwhile (awaited here, a flush kept the
        worker waiting ~10 % of its time). One flush at a time. Should Redis fall
        ``REPORT_BACKLOG`` flushes behind, the handler waits for it and an outage
        then fails the batch, as it did before (memory is not left to grow)."""
        pending = self.reports.pending()
        if pending < self.flush_batch:
            return
        if self._flushing is not None and not self._flushing.done():
            if pending < self.flush_batch * REPORT_BACKLOG:
                return
            await self.flush_reports()
            return
        self._flushing = asyncio.ensure_future(self._flush_in_background())

    async def flush_reports(self) -> None:
        """Every report fact staged so far sent to Redis (the flush in flight, then the
        rest), or this raises."""
        if self._flushing is not None:
            await asyncio.wait([self._flushing])
        await self.reports.flush()

    async def _flush_in_background(self) -> None:
        try:
            await self.reports.flush()
        except REDIS_OUTAGE as err:  # the facts are kept for the next flush
            log.warning(
                "journey reports not flushed: Redis unavailable", extra={"error": repr(err)}
            )
        except Exception as err:  # a bug: stop rather than lose the facts unseen
            log.exception("journey reports flush failed")
            fail_stop("journey", f"reports flush failed: {err!r}")

    # -- time --------------------------------------------------------------------

    async def sweep(self) -> int:
        """Tick each customer whose next due time has passed (one control message per
        batch of them, to the partition that owns them)."""
        started, now, sent = time.perf_counter(), self.clock.now(), 0
        for partition in sorted(self.owned()):
            batches = self.index.pop_due_batches(
                partition, now, self.sweep_batch, TICKS_PER_MESSAGE
            )
            for batch in batches:
                ticks = TicksDue(customer_ids=batch, due=now)
                await self.emitter.control(partition, batch[0], ticks)
                sent += len(batch)
        metrics.SWEEP_SECONDS.observe(time.perf_counter() - started)
        metrics.TIMERS.set(self.index.size())
        return sent

    def rebuild(self) -> int:
        """After recovery or a rebalance: the due index from the rows of owned partitions."""
        started, owned = time.perf_counter(), self.owned()
        due: dict[int, dict[str, float]] = {}
        rows = 0
        for key, raw in self.table.items():
            next_due, partition = next_due_of(raw)
            if partition not in owned or next_due is None:
                continue
            rows += 1
            due.setdefault(partition, {})[key.decode()] = next_due
        self.index.clear()
        for partition, entries in due.items():
            self.index.load(partition, entries)
        release_free_memory("the due index rebuild")  # its garbage back to the OS
        metrics.TIMERS.set(self.index.size())
        metrics.INSTANCES.set(rows)
        metrics.REBUILD_SECONDS.set(time.perf_counter() - started)
        log.info("due index rebuilt", extra={"customers": rows})
        return rows
