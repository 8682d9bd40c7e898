"""Process a faust stream in batches without ever acknowledging an unprocessed message.

faust's ``take_events`` acknowledges the buffered events when the batch body exits, even
when it exits by an exception or by cancellation at shutdown. So a batch runs in its own
task, shielded from cancellation: on shutdown it is given time to finish, and if it
cannot finish (or fails in a way its own retries did not absorb) the process stops hard
(fail-stop) before faust can commit, and the batch is read again after the restart.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from faust.streams import _current_event

from runtime.intake import stage_of
from runtime.metrics import processing
from runtime.store import ChangelogTable

log = logging.getLogger(__name__)

EX_TEMPFAIL = 75
# The faust events of the batch being handled, one per partition (process_batches).
_BATCH_EVENTS: contextvars.ContextVar[dict[int, Any]] = contextvars.ContextVar("batch_events")

S = TypeVar("S")


def stop_unless_delivered(service: str, what: str) -> Callable[[Any], None]:
    """A done-callback for a faust send: Kafka refused (or the send was cancelled) ->
    fail-stop before an offset past the input that produced it can be committed."""

    def check(sent: Any) -> None:
        if sent.cancelled():
            fail_stop(service, f"{what} not delivered: cancelled")
        elif sent.exception() is not None:
            fail_stop(service, f"{what} not delivered: {sent.exception()!r}")

    return check


def fail_stop(service: str, why: str) -> None:
    """Exit at once, before faust can commit an offset past unfinished work."""
    log.critical(
        "stopping hard so the batch is redelivered: %s", why, extra={"service": service, "why": why}
    )
    logging.shutdown()
    os._exit(EX_TEMPFAIL)


async def run_to_completion(work: Awaitable[Any], *, service: str, drain_seconds: float) -> None:
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            await asyncio.wait_for(asyncio.shield(task), drain_seconds)
        except BaseException as err:
            fail_stop(service, f"batch unfinished at shutdown: {err!r}")
        raise
    except Exception as err:
        fail_stop(service, f"batch failed: {err!r}")


async def process_batches(
    stream: Any,
    handle: Callable[[Sequence[Any]], Awaitable[None]],
    *,
    service: str,
    max_batch: int,
    within_seconds: float,
    drain_seconds: float = 30.0,
) -> None:
    """Feed ``handle`` lists of faust events; each list is acknowledged only after it ran.
    The processing histogram gets the batch's time per message, by stage (topic)."""
    async for events in stream.take_events(max_batch, within_seconds):
        started = time.perf_counter()
        # for Staging.commit (faust table writes); the batch's task copies this context
        batch = _BATCH_EVENTS.set({event.message.partition: event for event in events})
        try:
            await run_to_completion(handle(events), service=service, drain_seconds=drain_seconds)
        finally:
            _BATCH_EVENTS.reset(batch)
        if events:
            per_message = (time.perf_counter() - started) / len(events)
            processing(service, stage_of(events[0].message.topic)).observe(per_message)


async def retry_forever(
    attempt: Callable[[], Awaitable[object]],
    *,
    retryable: tuple[type[BaseException], ...],
    what: str,
    first_delay: float = 0.2,
    max_delay: float = 10.0,
) -> None:
    """Infrastructure outages block the partition (backpressure) instead of losing input."""
    delay = first_delay
    while True:
        try:
            await attempt()
            return
        except retryable as err:
            log.warning(
                "retrying after infrastructure error", extra={"what": what, "error": repr(err)}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


async def skip_tick_on_outage(
    tick: Callable[[], Awaitable[Any]],
    *,
    outage: tuple[type[BaseException], ...],
    what: str,
) -> None:
    """A timer's tick during an infrastructure outage is skipped, not fatal: faust stops
    the whole app when a timer raises, and the next tick retries anyway."""
    try:
        await tick()
    except outage as err:
        log.warning(
            "timer tick skipped: infrastructure down", extra={"what": what, "error": repr(err)}
        )


class Staging(Generic[S]):
    """The table rows one batch of inputs wrote, held back until Kafka acknowledged every
    output the batch sent, then written.

    A row and the output it records (a notification request, a segment change) sit in
    different partitions' producer batches, each sent when its own linger ends: written
    at once, a row could reach its changelog before its output reached its topic, and a
    crash in between would lose the output for good. Held back, a crash loses the rows
    instead; the inputs were not committed either (faust commits after the batch), so
    they are read again and the outputs go out again under the same ids, which their
    consumers drop as duplicates. Costs one acknowledgement round trip per batch, and
    a customer written several times in a batch is written once.

    Handlers read through :meth:`get` so that a second input for the same customer in
    the batch sees the first one's row. A row may be staged as its state alone (row
    ``None``): ``encode(state, partition)`` then makes it at commit, once per key.

    faust writes a table row (its store, its changelog record) to the partition of the
    event the stream is processing; a batch spans partitions, so each row is written as
    if during an event of its own partition (one of the batch's events).
    """

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        encode: Callable[[S, int], bytes] | None = None,
        written: Callable[[bytes, bytes, S], None] | None = None,
    ) -> None:
        """``written(key, row, state)`` is told of each row once it is in the table."""
        self.table, self.encode, self.written = table, encode, written
        self.rows: dict[bytes, tuple[S, bytes | None, int]] = {}
        self.deliveries: list[Awaitable[Any]] = []
        self._serial = asyncio.Lock()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[None]:
        """One batch of inputs: load -> domain -> emit -> :meth:`put`, then the outputs'
        acknowledgements, then the rows. Units run one at a time: a service's agents
        share one event loop, and an await inside (a send, the acknowledgements) must
        not let two handlers start from the same old row."""
        async with self._serial:
            try:
                yield
                await self.commit()
            finally:
                self.discard()  # after a failure: none of the batch's rows

    def get(self, key: bytes) -> tuple[S, bytes | None] | None:
        staged = self.rows.get(key)
        return None if staged is None else (staged[0], staged[1])

    def put(self, key: bytes, state: S, row: bytes | None, partition: int) -> None:
        if row is None and self.encode is None:
            raise ValueError("a row staged as its state alone needs Staging(encode=...)")
        self.rows[key] = (state, row, partition)

    def expect(self, deliveries: Sequence[Awaitable[Any]]) -> None:
        self.deliveries.extend(deliveries)

    async def commit(self) -> int:
        """Await the outputs' acknowledgements, then write the rows; returns how many."""
        if self.deliveries:
            await asyncio.gather(*self.deliveries)
        events = _BATCH_EVENTS.get(None)
        for key, (state, staged, partition) in self.rows.items():
            row = staged if staged is not None else self.encode(state, partition)  # type: ignore[misc]
            if self.written is not None:
                self.written(key, row, state)
            if isinstance(self.table, ChangelogTable):  # no faust: the partition is given
                self.table.put(key, row, partition)
                continue
            if events is None:  # one message, handled in the stream's own iteration
                self.table[key] = row
                continue
            during = _current_event.set(weakref.ref(events[partition]))
            try:
                self.table[key] = row
            finally:
                _current_event.reset(during)
        written = len(self.rows)
        self.rows, self.deliveries = {}, []
        return written

    def discard(self) -> None:
        """The batch failed: nothing it wrote may stay visible (the process stops)."""
        self.rows, self.deliveries = {}, []
