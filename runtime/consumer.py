"""Batches straight from confluent-kafka, for stages that keep no state in faust tables.

A faust agent costs about 115 µs per message before any work (``bench/baseline.py``: a
bare agent reads ~8,700 msg/s where confluent-kafka's ``consume()`` reads over a
million). A stage whose state lives in Redis needs no faust table, so it can read its
hot topic in batches with a confluent-kafka consumer instead:

    consume(max_batch, within_seconds) -> handle(batch) -> commit(last offset + 1 each)

- Offsets are committed only after ``handle`` returned. librdkafka runs rebalances
  inside ``consume``, so when partitions are taken away no batch is half done and
  nothing unprocessed is committed.
- A stage given ``settle`` (the producer of its outputs, e.g. its changelog's) commits a
  batch's offsets only once everything the batch produced is acknowledged, and does not
  wait for that in line: the batch is committed (asynchronously) after the *next* batch
  was handled, whose own flush normally acknowledged it already; an idle stage flushes
  at once. Waiting in line for the acknowledgement and the commit cost a segmenter
  worker ~15 % of its time. At most one batch is in that state; a rebalance flushes and
  commits it before the partitions go, a stop before the consumer closes.
- ``handle`` failing (after its own retries) stops the process before anything more is
  read or committed (``runtime.batches``): the batch is read again after the restart.
- A commit the group refuses (this member was already replaced) is logged, not fatal:
  the partition's next owner reads the batch again, and every stage is idempotent on
  its ids.
- On shutdown the batch in hand is finished (bounded), committed, and the consumer
  leaves the group at once, so its partitions move without waiting for the session.
- ``run(handle, overlapped=True)``: ``handle(batch)`` returns as soon as it no longer
  needs the loop to itself, with an awaitable of the rest of the batch (its Redis
  calls, say); the next batch is read and handed over meanwhile (the handler finishes
  the rest before starting the next batch's). The batch counts as handled when its
  rest is done; a rebalance waits for that (bounded) before the partitions go.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from runtime.batches import fail_stop, run_to_completion
from runtime.kafka import create_consumer
from runtime.metrics import CONSUMER_LAG, processing
from runtime.settings import Settings
from runtime.store import ChangelogTable
from schemas.base import new_tuple
from schemas.customer import Headers

log = logging.getLogger(__name__)

_LIVE: list[BatchConsumer] = []
LAG_PERIOD_S = 5.0


class Outputs(Protocol):
    """What a stage produced, acknowledged in order (:class:`runtime.producer.AsyncProducer`)."""

    def mark(self) -> int: ...
    async def acknowledged(self, mark: int) -> None: ...
    def acknowledged_blocking(self, mark: int, wait_seconds: float) -> bool: ...


class Record(NamedTuple):
    """One Kafka message, shaped like faust's ``event.message`` for ``runtime.intake``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None

    @property
    def message(self) -> Record:
        return self


def assigned_partitions() -> list[str]:
    """``topic:partition`` held by this process's batch consumers (for /health)."""
    return sorted(tp for consumer in _LIVE for tp in consumer.assigned)


def settled() -> bool:
    """Every batch consumer of this process is in its group with its share (for /health:
    a worker is not ready while it is still joining or rebalancing)."""
    return all(consumer.settled for consumer in _LIVE)


class BatchConsumer:
    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        *,
        service: str,
        max_batch: int,
        within_seconds: float,
        session_timeout_seconds: float,
        drain_seconds: float = 30.0,
        carry_over_from: str | None = None,
        on_assigned: Callable[[list[TopicPartition]], None] | None = None,
        after_rebalance: Callable[[], Awaitable[None]] | None = None,
        settle: Outputs | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """``carry_over_from``: the consumer group that read these topics before (a faust
        agent's); partitions this group never committed start where that one stopped.

        ``on_assigned(partitions)`` runs on the consumer's thread inside each rebalance,
        with the whole new assignment, before any of its records is read (a table
        restores its partitions there); ``after_rebalance()`` then runs on the event loop
        before the next batch is handled (indexes rebuilt from the table).

        ``settle``: see the module's doc. Its outputs failing to be acknowledged stops
        the process (nothing past them is committed)."""
        self.service = service
        self.topics = list(topics)
        self.max_batch = max_batch
        self.within_seconds = within_seconds
        self.drain_seconds = drain_seconds
        self.assigned: set[str] = set()
        self.settled = False  # until the group gave this member its share
        self._config = {
            "session.timeout.ms": int(session_timeout_seconds * 1000),
            "heartbeat.interval.ms": int(min(3.0, session_timeout_seconds / 4) * 1000),
            **(extra or {}),
        }
        self._bootstrap, self._group = bootstrap, group_id
        self._carry_over_from = carry_over_from
        self._on_assigned, self._after_rebalance = on_assigned, after_rebalance
        self._outputs = settle
        # the handled batch not committed yet: its offsets and its outputs' mark
        self._unsettled: tuple[list[TopicPartition], int] | None = None
        self._rebalanced = False
        # overlapped: the batch whose rest is still running, that rest, when it started
        self._pending: tuple[list[Record], asyncio.Future[Any], float] | None = None
        self._rest_done = threading.Event()  # its rest succeeded (a rebalance waits for it)
        self._consumer: Consumer | None = None
        self._lag_due = 0.0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"{service}-consumer")
        _LIVE.append(self)  # made when the app is wired, so /health waits for it

    async def run(
        self, handle: Callable[[list[Record]], Awaitable[Any]], *, overlapped: bool = False
    ) -> None:
        """Read, handle and commit batches until cancelled (the app stopping);
        ``overlapped``: see the module's doc."""
        if overlapped and self._outputs is None:
            raise ValueError("an overlapped handler's batches are committed by their outputs")
        self._overlapped = overlapped
        self._consumer = create_consumer(
            self._bootstrap, self._group, on_commit=self._on_commit, **self._config
        )
        self._consumer.subscribe(self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        try:
            while True:
                batch = await self._call(self._read)
                if self._rebalanced:
                    self._rebalanced = False
                    if self._after_rebalance is not None:
                        await self._after_rebalance()
                if batch:
                    await self._handle(handle, batch)
                elif self._pending is not None:  # idle: the batch in hand finishes now
                    await self._finish_pending()
                elif self._unsettled is not None:  # idle: no next flush to wait for
                    await self._settle()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # the loop itself broke (a fatal Kafka error)
            fail_stop(self.service, f"batch consumer failed: {err!r}")
        finally:
            _LIVE.remove(self)
            if self._pending is not None:  # stopping: the batch in hand finishes (bounded)
                try:
                    finishing = asyncio.shield(self._finish_pending())
                    await asyncio.wait_for(finishing, self.drain_seconds)
                except BaseException as err:
                    fail_stop(self.service, f"batch unfinished at shutdown: {err!r}")
            if self._unsettled is not None:  # stopping: the handled batch is kept
                await self._settle(wait=True)
            await self._call(self._consumer.close)
            self._thread.shutdown(wait=False)

    async def _handle(
        self, handle: Callable[[list[Record]], Awaitable[Any]], batch: list[Record]
    ) -> None:
        started = time.perf_counter()
        task = asyncio.ensure_future(handle(batch))
        try:
            await run_to_completion(task, service=self.service, drain_seconds=self.drain_seconds)
        except asyncio.CancelledError:
            # stopping: the batch did finish (run_to_completion stops the process
            # otherwise), so its offsets are kept and the next owner does not redo it
            rest = task.result() if self._overlapped else None
            await asyncio.shield(self._stopping_after(batch, rest, started))
            raise
        if self._pending is not None:  # (the handler finished it before this batch's rest)
            await self._finish_pending()
        if self._overlapped:
            self._hold(batch, task.result(), started)
            return
        self._observe(batch, started)
        await self._committed(batch)

    async def _stopping_after(
        self, batch: list[Record], rest: Awaitable[Any] | None, started: float
    ) -> None:
        if self._pending is not None:
            await self._finish_pending()
        if rest is not None:
            self._hold(batch, rest, started)
            await self._finish_pending()
        else:
            await self._committed(batch)

    def _hold(self, batch: list[Record], rest: Awaitable[Any], started: float) -> None:
        running = asyncio.ensure_future(rest)
        self._rest_done.clear()
        running.add_done_callback(self._rest_finished)
        self._pending = (batch, running, started)

    def _rest_finished(self, done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            self._rest_done.set()

    async def _finish_pending(self) -> None:
        """The rest of the batch in hand done, and the batch committed as any other."""
        assert self._pending is not None
        batch, rest, started = self._pending
        try:
            await run_to_completion(rest, service=self.service, drain_seconds=self.drain_seconds)
        except asyncio.CancelledError:
            await asyncio.shield(self._release(batch))  # (finished, as in _handle)
            raise
        self._observe(batch, started)
        await self._release(batch)

    async def _release(self, batch: list[Record]) -> None:
        self._pending = None
        await self._committed(batch)

    def _observe(self, batch: list[Record], started: float) -> None:
        per_message = (time.perf_counter() - started) / len(batch)
        processing(self.service, "batch").observe(per_message)

    async def _committed(self, batch: list[Record]) -> None:
        """Commit ``batch`` now, or (with ``settle``) hold it until the next batch was
        handled and commit the previous one."""
        if self._outputs is None:
            await self._call(self._commit, _ends(batch), True)
            return
        if self._unsettled is not None:
            await self._settle()
        self._unsettled = (_ends(batch), self._outputs.mark())

    async def _settle(self, *, wait: bool = False) -> None:
        """Commit the held batch once its outputs are acknowledged (normally they are by
        now); ``wait``: until the commit is done, as when stopping."""
        assert self._outputs is not None
        assert self._unsettled is not None
        offsets, mark = self._unsettled
        try:
            await self._outputs.acknowledged(mark)
        except Exception as err:
            fail_stop(self.service, f"outputs not acknowledged: {err!r}")
        self._unsettled = None
        if wait:
            await self._call(self._commit, offsets, True)
        else:  # sent by the consumer's thread before its next call (one thread: in order);
            # not awaited: its hop back to the loop cost ~0.7 ms a batch, all of it waiting
            self._thread.submit(self._commit, offsets, False).add_done_callback(self._sent)

    def _sent(self, done: Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            self._refused(done.exception())

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Consumer calls on one thread, off the event loop. A cancellation waits for the
        call in progress: a consumer is never closed while ``consume`` or ``commit`` runs."""
        future = asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise

    def _read(self) -> list[Record]:
        assert self._consumer is not None
        if time.monotonic() >= self._lag_due:
            self._report_lag()
        out = []
        for message in self._consumer.consume(self.max_batch, self.within_seconds):
            error = message.error()
            if error is not None:
                self._on_error(error)
                continue
            out.append(_record(message))
        return out

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        log.warning("kafka consumer error", extra={"service": self.service, "error": str(error)})

    def _commit(self, offsets: list[TopicPartition], wait: bool) -> None:
        """``wait`` False: sent, and a refusal reported by :meth:`_on_commit`."""
        assert self._consumer is not None
        try:
            if wait:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as err:
            self._refused(err)

    def _on_commit(self, err: KafkaError | None, offsets: list[TopicPartition]) -> None:
        if err is not None:
            self._refused(err)

    def _refused(self, err: object) -> None:
        log.warning(
            "offset commit refused: the batch will be read again",
            extra={"service": self.service, "error": str(err)},
        )

    def _report_lag(self) -> None:
        """Per held partition: its end offset (as last fetched) minus what the group has
        committed, for ``KizunaConsumerLagHigh`` (one committed-offsets call per period)."""
        assert self._consumer is not None
        self._lag_due = time.monotonic() + LAG_PERIOD_S
        held = self._consumer.assignment()
        if not held:
            return
        try:
            committed = self._consumer.committed(held, timeout=5)
        except KafkaException as err:
            log.debug("no committed offsets for the lag gauge", extra={"error": str(err)})
            return
        for tp in committed:
            low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                continue  # nothing fetched yet: no end offset known
            done = tp.offset if tp.offset >= 0 else low
            lag = max(high - max(done, low, 0), 0)
            CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(lag)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._carry_over_from:
            self._start_where_left(consumer, partitions, self._carry_over_from)
        if self._on_assigned is not None:
            self._on_assigned(partitions)
        self._rebalanced = True
        self.assigned |= {f"{tp.topic}:{tp.partition}" for tp in partitions}
        self.settled = True

    def _adopt_pending(self) -> None:
        """At a rebalance: the batch whose rest is running, once done, joins the batch
        held for its outputs, so its offsets go with the partitions too."""
        assert self._pending is not None
        assert self._outputs is not None
        if not self._rest_done.wait(self.drain_seconds):
            log.warning(
                "batch unfinished at a rebalance: it will be read again",
                extra={"service": self.service},
            )
            return  # (or it failed: the loop stops the process when it awaits it)
        batch, _, started = self._pending
        self._pending = None
        self._observe(batch, started)
        held = self._unsettled[0] if self._unsettled is not None else []
        self._unsettled = (_merged(held, _ends(batch)), self._outputs.mark())

    def _start_where_left(
        self, consumer: Consumer, partitions: list[TopicPartition], before: str
    ) -> None:
        """A deployment switching a stage to this consumer must not replay its topics
        from the start: a partition our group never committed starts at the offset the
        group that read it before committed (none there either: the usual earliest)."""
        ours = consumer.committed(partitions, timeout=10)
        fresh = [TopicPartition(tp.topic, tp.partition) for tp in ours if tp.offset < 0]
        if not fresh:
            return
        previous = create_consumer(self._bootstrap, before)  # reads offsets, joins nothing
        try:
            theirs = {(tp.topic, tp.partition): tp.offset for tp in previous.committed(fresh, 10)}
        finally:
            previous.close()
        starts = [
            TopicPartition(tp.topic, tp.partition, theirs.get((tp.topic, tp.partition), -1))
            for tp in partitions
        ]
        carried = [tp for tp in starts if tp.offset >= 0]
        if carried:
            consumer.assign(
                [tp if tp.offset >= 0 else TopicPartition(tp.topic, tp.partition) for tp in starts]
            )
            log.info(
                "started where the previous consumer group stopped",
                extra={"service": self.service, "group": before, "partitions": len(carried)},
            )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._pending is not None:  # (overlapped) its rest runs on the loop, which is
            self._adopt_pending()  # free: the consumer's caller awaits this very call
        if self._unsettled is not None:  # the last batch's offsets go with the partitions
            assert self._outputs is not None
            offsets, mark = self._unsettled
            if self._outputs.acknowledged_blocking(mark, self.drain_seconds):
                self._unsettled = None
                self._commit(offsets, True)
            else:
                log.warning(
                    "outputs not acknowledged at a rebalance: the last batch will be read again",
                    extra={"service": self.service},
                )
        self.assigned -= {f"{tp.topic}:{tp.partition}" for tp in partitions}
        for tp in partitions:  # another worker reports it now
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.service, tp.topic, str(tp.partition))
        self.settled = False  # an eager rebalance: the new share comes with on_assign


def _ends(batch: list[Record]) -> list[TopicPartition]:
    """The offsets to commit after ``batch``: one past its last record, per partition."""
    ends: dict[tuple[str, int], int] = {}
    for record in batch:
        key = (record.topic, record.partition)
        ends[key] = max(ends.get(key, -1), record.offset + 1)
    return [TopicPartition(t, p, o) for (t, p), o in sorted(ends.items())]


def _merged(*offsets: list[TopicPartition]) -> list[TopicPartition]:
    """The furthest offset of each partition among ``offsets``."""
    ends: dict[tuple[str, int], int] = {}
    for tp in itertools.chain(*offsets):
        key = (tp.topic, tp.partition)
        ends[key] = max(ends.get(key, -1), tp.offset)
    return [TopicPartition(t, p, o) for (t, p), o in sorted(ends.items())]


def _record(message: Message) -> Record:
    fields = (
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        message.headers(),
    )
    return new_tuple(Record, fields)  # one per message: without the Python-level __new__


async def by_topic(
    batch: Sequence[Record], handlers: Mapping[str, Callable[[list[Record]], Awaitable[None]]]
) -> None:
    """Hand each run of one topic's records, in arrival order, to that topic's handler."""
    for topic, run in itertools.groupby(batch, key=lambda record: record.topic):
        await handlers[topic](list(run))


def table_stage(
    app: Any,
    settings: Settings,
    service: str,
    table: ChangelogTable,
    handlers: Mapping[str, Callable[[list[Record]], Awaitable[None]]],
    *,
    max_batch: int,
    within_seconds: float,
    after_rebalance: Callable[[], Awaitable[None]],
) -> BatchConsumer:
    """A stage whose rows are in ``table``, reading ``handlers``' topics in batches as a
    task of the faust ``app``: each run of one topic goes to its handler; the batch's
    offsets are committed once its changelog records are acknowledged (normally by the
    next batch's flush).

    The same partition of every topic goes to one worker (range assignment: a customer's
    events, control messages and changelog partition live together), and the table
    holds the partitions of the first topic this worker was given, restored before any
    record of theirs is read. A stage moving here from faust agents starts where their
    group stopped."""
    keyed_by = next(iter(handlers))
    group = f"{settings.namespace}-{service}"
    consumer = BatchConsumer(
        settings.kafka,
        f"{group}-batch",
        list(handlers),
        service=service,
        max_batch=max_batch,
        within_seconds=within_seconds,
        session_timeout_seconds=settings.session_timeout_seconds,
        carry_over_from=group,
        on_assigned=lambda held: table.hold({tp.partition for tp in held if tp.topic == keyed_by}),
        after_rebalance=after_rebalance,
        settle=table.producer,  # offsets after the changelog records, off the critical path
        extra={"partition.assignment.strategy": "range"},
    )

    @app.task
    async def intake() -> None:
        await consumer.run(lambda batch: by_topic(batch, handlers))

    return consumer
