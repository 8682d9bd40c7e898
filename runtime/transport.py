"""faust's aiokafka transport with two changes, both in the consumer:

1. **A rewind that also rewinds partitions that never had an offset committed.**
   faust drops records it has fetched but cannot hand to a stream yet (the partition is
   still being recovered, the flow is stopped for a rebalance, the generation changed)
   and relies on "seek to the committed offset" to read them again. aiokafka's
   ``seek_to_committed`` leaves a partition without a committed offset (or with offset
   0) where the fetcher is, so those records were lost for good: a worker killed before
   its first commit, or a fresh consumer group, skipped the events its successor had
   fetched during recovery (seen as journey reminders that never fired, #6). Here such
   a partition goes back to where ``consumer_auto_offset_reset`` says an uncommitted
   partition starts. Changelog partitions are left alone: recovery places them itself.

2. **Fetched records are handed to the streams a batch at a time.** faust's
   ``Consumer._drain_messages`` races every single record's hand-over against "flow
   suspended", "stopped" and "crashed" (``Service.wait_first``: four tasks, an
   ``asyncio.wait`` and three cancellations per record). That race alone capped a
   worker that does nothing at ~2,200 records/s on our machines. Here the race is run
   once per fetched batch: the hand-over of the whole batch is the one task raced
   against the same three signals. What is kept: a record's read offset is set only
   after it was handed over; a suspended flow stops the hand-over at once (the records
   not handed over come back through the rewind above, as before); the periodic commit
   every ``broker_commit_every`` records still happens between two records, outside
   the race, so a suspension never cancels a commit half-way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

YIELD_EVERY = 100  # records handed over between two turns of the event loop (faust's)


async def seek_committed_or_reset(
    consumer: AIOKafkaConsumer, *, reset: str, leave: frozenset[str] | set[str]
) -> Mapping[TP, int | None]:
    """Seek each assigned partition to its committed offset; one with none (or 0) to
    the reset end, unless its topic is in ``leave``. Returns the committed offsets."""
    committed: Mapping[TP, int | None] = await consumer.seek_to_committed()
    unset = [
        tp
        for tp, offset in committed.items()
        if (offset is None or offset <= 0) and tp.topic not in leave
    ]
    if unset:
        if reset == "latest":
            await consumer.seek_to_end(*unset)
        else:
            await consumer.seek_to_beginning(*unset)
    return committed


class RewindingConsumerThread(driver.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        result: Mapping[TP, int] = await self.call_thread(
            seek_committed_or_reset,
            self._ensure_consumer(),
            reset=self.app.conf.consumer_auto_offset_reset,
            leave=self.app.tables.changelog_topics,
        )
        return result


class RewindingConsumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return RewindingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # faust: the Fetcher's loop
        """faust's loop, with the hand-over raced once per batch (module docstring)."""
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                batch = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany may not give the loop a turn (faust's note)
                # Waiting for records (and for a stopped flow to resume) happens out
                # here, as in faust: raced against a suspended flow it would spin.
                first = None if self.should_stop else await anext(batch, None)
                while first is not None:
                    handover = self._hand_over(first, batch)
                    results = await self.wait_first(handover, self.suspend_flow.wait())
                    if handover not in results.done:
                        break  # suspended, stopped or crashed: the rest is fetched again
                    first = results.results[results.done.index(handover)]
                    if first is not None:  # stopped to commit, between two records
                        self._n_acked = 0
                        await self.commit()
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _hand_over(
        self, first: tuple[TP, Any], rest: AsyncIterator[tuple[TP, Any]]
    ) -> tuple[TP, Any] | None:
        """Hand ``first`` and then ``rest`` to the streams, in order, as faust does one
        by one (gap tracking for acked topics, read offsets). Returns the next record
        still to hand over when a commit is due first, else None at the end."""
        callback = self.callback
        read_offsets = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        commit_every = self._commit_every
        since_yield = 0
        record: tuple[TP, Any] | None = first
        while record is not None:
            if commit_every is not None and self._n_acked >= commit_every:
                return record
            tp, message = record
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            offset = message.offset
            read = read_offsets[tp]
            if read is None or offset >= read:
                if offset - (read or 0) > 1 and read and acks_enabled_for(message.topic):
                    await self._add_gap(tp, read + 1, offset)
                await callback(message)
                read_offsets[tp] = offset
            record = await anext(rest, None)
        return None


class RewindingTransport(driver.Transport):
    Consumer: ClassVar[Any] = RewindingConsumer
