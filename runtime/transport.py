"""faust's aiokafka transport, with one fix: a rewind that also rewinds partitions
that never had an offset committed.

faust drops records it has fetched but cannot hand to a stream yet (the partition is
still being recovered, the flow is stopped for a rebalance, the generation changed)
and relies on "seek to the committed offset" to read them again. aiokafka's
``seek_to_committed`` leaves a partition without a committed offset (or with offset
0) where the fetcher is, so those records were lost for good: a worker killed before
its first commit, or a fresh consumer group, skipped the events its successor had
fetched during recovery (seen as journey reminders that never fired, #6). Here such a
partition goes back to where ``consumer_auto_offset_reset`` says an uncommitted
partition starts. Changelog partitions are left alone: recovery places them itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as driver
from faust.types import TP


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


class RewindingTransport(driver.Transport):
    Consumer: ClassVar[Any] = RewindingConsumer
