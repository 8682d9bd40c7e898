"""Between the agents and the domain: load state, call a domain step, persist, index,
stage the profile view, emit. No business decision is made here.

Stream shape:
    customer.events ──on_customer_event──▶ table row, time index, profile view, segment.changes
    identity.changes ──merged──▶ control[FoldRequested → absorbed's partition]
    control: tick / fold_requested / handed_off / forwarded / clock ──▶ the same as above
    sweep (timer) ──pop due from the time index──▶ control[TicksDue → owner's partition]

Every handler runs in a unit of work over a batch of inputs (a batch of customer events;
one control message, which may carry 500 ticks): the rows it writes are held back
(:class:`runtime.batches.Staging`) until Kafka acknowledged every segment change the
batch sent, and faust commits the inputs' offsets only after the batch. A crash either
loses nothing or loses the rows with the uncommitted inputs, which are read again: the
changes go out again with the same content (a consumer sees a repeat, never a gap).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel

from runtime.batches import Staging
from runtime.memory import release_free_memory
from runtime.store import row_reader
from runtime.time_index import TimeIndex
from schemas.events import RawEvent
from schemas.identity import CustomersMerged, CustomerSplit, IdentityChange
from schemas.segments import SegmentChanged
from services.segmenter import metrics
from services.segmenter.adapters.population import RedisPopulation
from services.segmenter.adapters.profiles import ProfileView
from services.segmenter.adapters.state_codec import (
    decode_state,
    encode_state,
    facts_from_json,
    facts_to_json,
    indexed_parts,
    read_stored,
    restored,
)
from services.segmenter.domain import handlers
from services.segmenter.domain.calendar import epoch, from_epoch
from services.segmenter.domain.facts import Seen
from services.segmenter.domain.figures import Figures
from services.segmenter.domain.profile import profile_of, timely_fields
from services.segmenter.domain.standing import CustomerState, Policy
from services.segmenter.messages import (
    TICKS_PER_MESSAGE,
    ClockSet,
    ControlMessage,
    EventForwarded,
    FoldRequested,
    SeenForwarded,
    StateHandedOff,
    TickDue,
    TicksDue,
)

log = logging.getLogger(__name__)


class Clock:
    """Wall clock, unless a :class:`ClockSet` message pinned event time (tests, replays)."""

    def __init__(self) -> None:
        self.pinned: int | None = None

    def now(self) -> int:
        return self.pinned if self.pinned is not None else int(time.time())


class Emitter(Protocol):
    """Sends return their delivery (awaited only where a row must not get ahead of it)."""

    async def segment_changed(self, change: SegmentChanged) -> Awaitable[Any]: ...
    async def control(
        self, partition: int, key: str, message: BaseModel, *, wait: bool = False
    ) -> None: ...


class DecodedRows:
    """The states of recently used rows, so that a customer's next event does not decode
    her row again (decoding is ~10 % of a worker's CPU). A state is a pure function of its
    row's bytes and is never changed in place, so an entry is used only while the table
    still holds exactly the bytes it was decoded from, whoever wrote them. At most
    ``limit`` entries (~1.4 KB each), the least recently written dropped first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # An OrderedDict: a plain dict finds its oldest entry (``next(iter(rows))``) by a
        # scan past the holes earlier drops left, ~28 µs a drop at 50,000 entries; once
        # a worker had seen more customers than that, every event paid it.
        self._rows: OrderedDict[bytes, tuple[bytes, CustomerState]] = OrderedDict()

    def get(self, key: bytes, row: bytes) -> CustomerState | None:
        hit = self._rows.get(key)
        return hit[1] if hit is not None and (hit[0] is row or hit[0] == row) else None

    def remember(self, key: bytes, row: bytes, state: CustomerState) -> None:
        if self.limit <= 0:
            return
        rows = self._rows
        if key in rows:
            rows[key] = (row, state)
            rows.move_to_end(key)  # (in place: a pop and a new entry cost ~2x)
            return
        if len(rows) >= self.limit:
            rows.popitem(last=False)
        rows[key] = (row, state)

    def __len__(self) -> int:
        return len(self._rows)


class Processor:
    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        policy: Policy,
        emitter: Emitter,
        views: ProfileView,
        *,
        partition_of: Callable[[str], int],
        owned: Callable[[], set[int]],
        population: RedisPopulation | None = None,
        sweep_batch: int = 10_000,
        flush_batch: int = 2_000,
        state_cache: int = 50_000,
    ) -> None:
        self.table, self.policy, self.emitter, self.views = table, policy, emitter, views
        self.partition_of, self.owned = partition_of, owned
        self.population, self.sweep_batch = population, sweep_batch
        self.flush_batch = flush_batch
        self.clock, self.index = Clock(), TimeIndex(bucket=1)  # due: day numbers
        self.dirty: dict[str, CustomerState] = {}
        self.viewed: set[int] = set()  # partitions whose views this worker keeps
        self.to_project: list[tuple[str, int]] = []  # (customer, partition): rebuild's
        self.seen: dict[str, int] = {}  # only last_seen moved: a one-field view update
        self.decoded = DecodedRows(state_cache)
        self._in_flight: dict[int, int] = {}  # per partition: ticks sent, not yet handled
        self._ticks_handled = asyncio.Event()
        # a row a tick rewrote from its stored parts is staged without a state (None)
        self.staging: Staging[CustomerState | None] = Staging(table, _encode, written=self._written)
        self.read = row_reader(table)

    def _written(self, key: bytes, row: bytes, state: CustomerState | None) -> None:
        if state is not None:
            self.decoded.remember(key, row, state)

    def load(self, customer_id: str, partition: int | None = None) -> CustomerState | None:
        """Her state, from the ``partition`` whose input is handled (where her row lives;
        None: wherever it is)."""
        key = customer_id.encode()
        staged = self.staging.get(key)
        if staged is not None:
            state, row = staged
            if state is None and row is not None:  # rewritten by a tick, not decoded
                return decode_state(row)[0]
            return state
        raw = self.read(key, partition)
        if raw is None:
            return None
        state = self.decoded.get(key, raw)
        if state is None:
            state = decode_state(raw)[0]
            self.decoded.remember(key, raw, state)
        return state

    async def on_customer_event(
        self, customer_id: str, event: RawEvent | Seen, partition: int
    ) -> None:
        await self.on_customer_events([(customer_id, event, partition)])

    async def on_customer_events(self, events: Sequence[tuple[str, RawEvent | Seen, int]]) -> None:
        counts = {metrics.APPLIED_CHANGED: 0, metrics.APPLIED_FORWARDED: 0}
        counts[metrics.APPLIED_UNCHANGED] = 0
        async with self.staging.unit():
            for customer_id, event, partition in events:
                counts[await self._customer_event(customer_id, event, partition)] += 1
        for counter, count in counts.items():
            if count:
                counter.inc(count)

    async def _customer_event(
        self, customer_id: str, event: RawEvent | Seen, partition: int
    ) -> Any:
        """Apply one event; returns the counter of what it did."""
        state = self.load(customer_id, partition)
        outcome = handlers.on_event(state, customer_id, event, self.clock.now(), self.policy)
        if state is not None and outcome.state is not None and _only_seen(state, outcome.state):
            self.put(outcome.state, partition)
            if customer_id in self.dirty:  # her whole view goes out: the latest of it
                self.dirty[customer_id] = outcome.state
            else:
                self.seen[customer_id] = outcome.state.facts.last_seen or 0
            return metrics.APPLIED_CHANGED
        await self.apply(outcome, partition)
        if outcome.commands:
            return metrics.APPLIED_FORWARDED
        if outcome.state is not None:
            return metrics.APPLIED_CHANGED
        return metrics.APPLIED_UNCHANGED

    async def on_identity_change(self, change: IdentityChange) -> None:
        metrics.IDENTITY_CHANGES.labels(change.type).inc()
        if isinstance(change, CustomerSplit):
            log.warning(
                "split keeps the old customer's state", extra={"customer": change.customer_id}
            )
        if not isinstance(change, CustomersMerged):
            return
        survivor_partition = self.partition_of(change.customer_id)
        for absorbed in change.absorbed:
            request = FoldRequested(
                customer_id=absorbed,
                survivor=change.customer_id,
                survivor_partition=survivor_partition,
                version=change.version,
            )
            await self.emitter.control(self.partition_of(absorbed), absorbed, request, wait=True)

    async def on_control(self, message: ControlMessage, partition: int) -> None:
        async with self.staging.unit():
            await self._control(message, partition)
        if isinstance(message, TicksDue):
            self._handled(partition, len(message.customer_ids))

    async def _control(self, message: ControlMessage, partition: int) -> None:
        now = self.clock.now()
        if isinstance(message, ClockSet):
            self.clock.pinned = epoch(message.as_of)
            metrics.CLOCK_PINNED.set(self.clock.pinned)
            return
        if isinstance(message, EventForwarded | SeenForwarded):
            event = message.event if isinstance(message, EventForwarded) else _seen_of(message)
            counter = await self._customer_event(message.customer_id, event, partition)
            counter.inc()
            return
        if isinstance(message, TicksDue):
            await self._ticks(message.customer_ids, now, partition)
            return
        if isinstance(message, TickDue):
            await self._ticks([message.customer_id], now, partition)
            return
        state = self.load(message.customer_id, partition)
        if isinstance(message, FoldRequested):
            outcome = handlers.on_fold_requested(
                state, message.customer_id, message.survivor, message.survivor_partition
            )
        else:
            facts = facts_from_json(message.facts)
            outcome = handlers.on_handed_off(
                state, message.customer_id, facts, message.absorbed, now, self.policy
            )
        await self.apply(outcome, partition)

    async def _ticks(self, customer_ids: list[str], now: int, partition: int) -> None:
        """Re-score each customer (the unit of work holds the rows back until every
        change is acknowledged: one round trip per batch of ticks)."""
        for customer_id in dict.fromkeys(customer_ids):
            if not await self._tick_stored(customer_id, now, partition):
                outcome = handlers.on_tick(self.load(customer_id, partition), now, self.policy)
                await self.apply(outcome, partition)

    async def _tick_stored(self, customer_id: str, now: int, partition: int) -> bool:
        """Re-score a customer this worker holds nowhere decoded (most of a sweep) from
        her stored row's purchases and standing: the rest of the facts are written back
        as stored, and only the view fields time can change are rewritten. False (and
        nothing done) for anyone else: staged, decoded, waiting for a view flush,
        absorbed, or never bought."""
        key = customer_id.encode()
        if customer_id in self.dirty or self.staging.get(key) is not None:
            return False
        raw = self.read(key, partition)
        if raw is None or self.decoded.get(key, raw) is not None:
            return False
        row = read_stored(raw)
        if row.absorbed or not row.bought:
            return False
        policy = self.policy
        standing, changes, figures, at = handlers.on_stored_tick(
            customer_id, row.bought, row.standing, row.last_seen, now, policy
        )
        self.staging.expect(await self.emit(changes))
        self.staging.put(key, None, restored(row, standing, partition), partition)
        self.index.schedule(partition, customer_id, standing.next_due)
        self.views.stage_fields(customer_id, timely_fields(standing, figures, at, policy.calendar))
        if self.population is not None and figures is not None:
            self.population.stage(customer_id, _population_of(figures, policy))
        return True

    async def apply(self, outcome: handlers.Outcome, partition: int) -> None:
        """Changes are sent now; the row is staged until they are acknowledged."""
        self.staging.expect(await self.emit(outcome.changes))
        if outcome.state is not None:
            self.store(outcome.state, partition)
        for command in outcome.commands:
            await self.send_command(command)

    async def emit(self, changes: Sequence[SegmentChanged]) -> list[Awaitable[Any]]:
        deliveries = []
        for change in changes:
            deliveries.append(await self.emitter.segment_changed(change))
            metrics.transition(
                change.dimension, change.from_segment or "", change.to_segment, change.reason
            ).inc()
        return deliveries

    def store(self, state: CustomerState, partition: int) -> None:
        self.put(state, partition)
        self.project(state, partition)

    def put(self, state: CustomerState, partition: int) -> None:
        """Staged as the state: encoded once, at commit, however often the batch
        changed the customer."""
        self.staging.put(state.customer_id.encode(), state, None, partition)

    def project(self, state: CustomerState, partition: int) -> None:
        """Index the next due time; the profile view is staged at the next flush."""
        next_due = None if state.absorbed_into is not None else state.standing.next_due
        self.index.schedule(partition, state.customer_id, next_due)
        self.dirty[state.customer_id] = state

    async def maybe_flush(self) -> None:
        if len(self.dirty) + len(self.seen) >= self.flush_batch:
            await self.flush_views()

    async def flush_views(self) -> int:
        """Write the profile view (and population) of every customer changed since the
        last flush: a burst of events for one customer costs one write."""
        self._project_pending()
        dirty, self.dirty = self.dirty, {}
        seen, self.seen = self.seen, {}
        now = self.clock.now()
        for customer_id, last_seen in seen.items():
            if customer_id not in dirty:
                self.views.stage_fields(
                    customer_id, {"last_seen_at": self.policy.calendar.iso(last_seen)}
                )
        for customer_id, state in dirty.items():
            if state.absorbed_into is not None:
                self.views.stage_absorbed(customer_id, state.absorbed_into)
                if self.population is not None:
                    self.population.stage(customer_id, None)
                continue
            view = profile_of(state, now, self.policy)
            self.views.stage(customer_id, view)
            if self.population is not None:
                self.population.stage(customer_id, _population_values(view, self.policy))
        written = await self.views.flush()
        if self.population is not None:
            await self.population.flush()
        return written

    async def send_command(self, command: handlers.Command) -> None:
        if isinstance(command, handlers.HandOff):
            message: BaseModel = StateHandedOff(
                customer_id=command.survivor,
                absorbed=command.absorbed,
                facts=facts_to_json(command.facts),
            )
        elif isinstance(command.event, Seen):
            message = SeenForwarded(
                customer_id=command.survivor,
                event_id=command.event.event_id,
                at=from_epoch(command.event.at),
            )
        else:
            message = EventForwarded(customer_id=command.survivor, event=command.event)
        await self.emitter.control(command.survivor_partition, command.survivor, message, wait=True)

    async def sweep(self) -> int:
        """Tick each customer whose next boundary has passed (one control message per
        batch of them, to the partition that owns them), at most ``sweep_batch`` per
        partition; returns how many."""
        return (await self._sweep())[0]

    async def catch_up(self, patience: float) -> int:
        """Sweep, and while a sweep left due customers for later (a partition gave a full
        batch), sweep again as soon as this worker has handled the ticks it sent: one
        batch in flight at a time, so customer events keep their turn between batches,
        and a backlog (a worker that was down, a clock set forward) goes at the speed
        the worker re-scores instead of one batch per timer interval. Stops when
        nothing is left, or when the ticks were not handled within ``patience`` seconds
        (the next timer goes on); returns how many it sent."""
        total = 0
        while True:
            sent, more = await self._sweep()
            total += sent
            if not more:
                return total
            try:
                await asyncio.wait_for(self._ticks_handled.wait(), patience)
            except TimeoutError:
                return total

    async def _sweep(self) -> tuple[int, bool]:
        started, now, sent, more = time.perf_counter(), self.clock.now(), 0, False
        for partition in sorted(self.owned()):
            batches = self.index.pop_due_batches(
                partition, now, self.sweep_batch, TICKS_PER_MESSAGE
            )
            popped = sum(map(len, batches))
            more = more or popped == self.sweep_batch
            for batch in batches:
                self._sent(partition, len(batch))  # counted first: a send may yield
                await self.emitter.control(partition, batch[0], TicksDue(customer_ids=batch))
            sent += popped
        metrics.SWEEP_SECONDS.observe(time.perf_counter() - started)
        metrics.SWEEP_DUE.inc(sent)
        metrics.TIME_INDEX_ENTRIES.set(self.index.size())
        return sent, more

    @property
    def ticks_in_flight(self) -> int:
        """Ticks this worker's sweeps sent and have not come back handled."""
        return sum(self._in_flight.values())

    def _sent(self, partition: int, ticks: int) -> None:
        self._in_flight[partition] = self._in_flight.get(partition, 0) + ticks
        self._ticks_handled.clear()
        metrics.TICKS_IN_FLIGHT.set(self.ticks_in_flight)

    def _handled(self, partition: int, ticks: int) -> None:
        """Ticks re-scored and their rows written. Only partitions this worker sent to
        count (ticks another worker sent before a rebalance do not)."""
        left = self._in_flight.get(partition)
        if left is None:
            return
        if left > ticks:
            self._in_flight[partition] = left - ticks
        else:
            del self._in_flight[partition]
        self._settled()

    def _forget_ticks(self) -> None:
        """After a rebalance: ticks in flight may be another worker's to handle now (the
        rebuilt index holds every customer whose row was not re-scored)."""
        self._in_flight.clear()
        self._settled()

    def _settled(self) -> None:
        metrics.TICKS_IN_FLIGHT.set(self.ticks_in_flight)
        if not self._in_flight:
            self._ticks_handled.set()

    def rebuild(self) -> int:
        """After recovery or a rebalance: the time index again from every owned row (the
        ticks in flight may be lost), each row read for its index parts only.

        The profile views of the partitions new to this worker are then re-projected
        (their last owner may have stopped before writing them), ``flush_batch`` at a
        time, by each view flush (:meth:`project_all` runs them all): a worker given
        3M customers once decoded and held every one of them at once (~3.8 KB each) and
        rewrote the views of the partitions it kept as well."""
        self._forget_ticks()
        owned, rows = self.owned(), 0
        fresh = owned - self.viewed
        pending = [(c, p) for c, p in self.to_project if p in owned and p not in fresh]
        due: dict[int, dict[str, float]] = {}  # day numbers (ints) as the index's due
        for raw in self.table.values():
            customer_id, partition, next_due = indexed_parts(raw)
            if partition not in owned:
                continue
            rows += 1
            if partition in fresh:
                pending.append((customer_id, partition))
            if next_due is not None:
                due.setdefault(partition, {})[customer_id] = next_due
        self.index.clear()
        for partition, entries in due.items():
            self.index.load(partition, entries)
        self.viewed, self.to_project = set(owned), pending
        release_free_memory("the due index rebuild")  # its garbage back to the OS
        metrics.CUSTOMERS.set(rows)
        metrics.TIME_INDEX_ENTRIES.set(self.index.size())
        return rows

    async def project_all(self) -> None:
        """Every view :meth:`rebuild` left to re-project, written (a flush at a time)."""
        while self.to_project:
            await self.flush_views()

    def _project_pending(self) -> None:
        """Up to ``flush_batch`` of the customers left to re-project join this flush,
        each as her row is now (events may have moved her since the rebuild)."""
        batch = self.to_project[-self.flush_batch :]
        del self.to_project[-self.flush_batch :]
        for customer_id, partition in batch:
            if customer_id not in self.dirty:
                state = self.load(customer_id, partition)
                if state is not None:
                    self.dirty[customer_id] = state


def _population_values(view: dict[str, Any], policy: Policy) -> tuple[int, int, int] | None:
    """(last purchase day, window F, window M) for the quantile population."""
    bought = view["purchases"]
    if not bought:
        return None
    last_day = policy.calendar.day(bought[-1][0])
    return last_day, view["window_frequency"] or 0, view["window_monetary"] or 0


def _population_of(figures: Figures, policy: Policy) -> tuple[int, int, int]:
    """:func:`_population_values` from the figures a view is made of."""
    return policy.calendar.day(figures.last_at), figures.window_frequency, figures.window_monetary


def _encode(state: CustomerState | None, partition: int) -> bytes:
    """Rows staged as their state alone (a tick's rewritten row is staged as bytes)."""
    if state is None:
        raise ValueError("a row staged without its state must be staged as bytes")
    return encode_state(state, partition)


def _seen_of(message: SeenForwarded) -> Seen:
    return Seen(message.event_id, epoch(message.at))


def _only_seen(before: CustomerState, after: CustomerState) -> bool:
    """The event moved nothing but last_seen (a page view on an already scored day)."""
    return (
        before.facts.orders is after.facts.orders
        and before.standing is after.standing
        and before.facts.birthday is after.facts.birthday
        and before.facts.preferred_channel is after.facts.preferred_channel
        and before.absorbed_into is None
    )
