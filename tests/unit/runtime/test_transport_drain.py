"""The consumer's hand-over of fetched records to the streams (runtime.transport): a
whole fetched batch per race against "flow suspended", records in order, read offsets
set only for records handed over, faust's periodic commit between two records."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.types import TP

from runtime.app import App
from runtime.transport import RewindingConsumer

TOPIC = "t.customer.events"
PART = TP(TOPIC, 0)


@dataclass(frozen=True)
class Record:
    topic: str
    offset: int


@dataclass
class Script:
    """Drives a consumer's ``_drain_messages``: the batches each ``getmany`` yields (then
    the fetcher stops), what the streams took, and the commits with how many records
    had been taken by then."""

    consumer: RewindingConsumer
    batches: list[list[int]]
    taken: list[int] = field(default_factory=list)
    commits: list[int] = field(default_factory=list)
    races: int = 0
    block_at: int | None = None  # the stream's buffer is full when this offset comes
    suspend_after: int | None = None  # a rebalance stops the flow after this offset
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.consumer.callback = self.take  # type: ignore[method-assign]
        self.consumer.getmany = self.getmany  # type: ignore[method-assign]
        self.consumer.commit = self.commit  # type: ignore[method-assign]
        race = self.consumer.wait_first

        async def counted(*coros: Any, **kwargs: Any) -> Any:
            self.races += 1
            return await race(*coros, **kwargs)

        self.consumer.wait_first = counted  # type: ignore[method-assign]
        self._batches: Iterator[list[int]] = iter(self.batches)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Record]]:  # noqa: ASYNC109 (faust's signature)
        if not self.consumer.flow_active:
            self.consumer.resume_flow()  # faust's fetch waits for this; here it comes at once
        batch = next(self._batches, None)
        if batch is None:
            self.stopped.set()
            return
        for offset in batch:
            yield PART, Record(TOPIC, offset)

    async def take(self, message: Record) -> None:
        if message.offset == self.block_at:
            await asyncio.Event().wait()  # never returns: only a cancel ends it
        self.taken.append(message.offset)
        self.consumer._n_acked += 1  # the stream acks at once
        if message.offset == self.suspend_after:
            self.consumer.stop_flow()

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        self.commits.append(len(self.taken))
        return True

    async def drain(self) -> None:
        fetcher = type("Fetcher", (), {"_stopped": self.stopped})()
        async with asyncio.timeout(5):
            await self.consumer._drain_messages(fetcher)


def build(commit_every: int = 1_000) -> RewindingConsumer:
    """An app's consumer, never started (no broker), on the running loop."""
    app = App(
        "t-drain",
        broker="kafka://127.0.0.1:9",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        broker_commit_every=commit_every,
    )
    built = app.consumer
    assert isinstance(built, RewindingConsumer)
    return built


@pytest.fixture
async def consumer() -> RewindingConsumer:
    return build()


async def test_when_batches_are_fetched_then_every_record_is_handed_over_in_order_once_per_batch(
    consumer: RewindingConsumer,
) -> None:
    script = Script(consumer, batches=[list(range(0, 50)), list(range(50, 120))])

    await script.drain()

    assert script.taken == list(range(120))
    assert consumer._read_offset[PART] == 119
    assert script.races == 2  # faust raced each record: 120


async def test_when_a_commit_is_due_then_it_runs_between_two_records_outside_the_race() -> None:
    script = Script(build(commit_every=4), batches=[list(range(10))])

    await script.drain()

    assert script.taken == list(range(10))
    assert script.commits == [4, 8]  # broker_commit_every=4
    assert script.races == 3  # one race per stretch between commits


async def test_when_the_flow_is_suspended_mid_batch_then_the_hand_over_stops_there(
    consumer: RewindingConsumer,
) -> None:
    # offset 3 stops the flow (a rebalance); offset 4 finds the stream's buffer full
    script = Script(consumer, batches=[list(range(10)), [10, 11]], suspend_after=3, block_at=4)

    await script.drain()

    # 4 was never taken, so it is not marked read: the rewind after the rebalance
    # reads it again. The next fetch comes once the flow resumes.
    assert script.taken == [0, 1, 2, 3, 10, 11]
    assert consumer._read_offset[PART] == 11


async def test_when_an_offset_is_below_the_read_one_then_it_is_not_handed_over_again(
    consumer: RewindingConsumer,
) -> None:
    script = Script(consumer, batches=[[0, 1, 2], [0, 1, 3]])

    await script.drain()

    assert script.taken == [0, 1, 2, 3]  # faust's rule: below the last read offset
