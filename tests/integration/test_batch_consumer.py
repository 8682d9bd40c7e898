"""Given the real local broker, when a stage reads its topic with the confluent-kafka
batch consumer, then offsets are committed only after a batch was handled, a batch in
hand when the stage stops is finished and kept, and /health-style assignment shows the
partitions it holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Producer, TopicPartition
from prometheus_client import REGISTRY

import runtime.batches as batches_module
import runtime.consumer as consumer_module
from runtime.consumer import BatchConsumer, Record, assigned_partitions, settled
from runtime.kafka import create_consumer
from runtime.settings import Settings
from schemas.topics import NOTIFICATIONS_REQUESTED

pytestmark = pytest.mark.usefixtures("topics")


def _produce(producer: Producer, topic: str, count: int) -> None:
    for n in range(count):
        producer.produce(topic, key=f"k{n % 5}".encode(), value=f"v{n}".encode())
    assert producer.flush(10) == 0


def _committed(settings: Settings, group: str, topic: str) -> int:
    """Messages the group has committed past, over the topic's partitions."""
    probe = create_consumer(settings.kafka, group)
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions or 1)]
        return sum(max(tp.offset, 0) for tp in probe.committed(parts, timeout=10))
    finally:
        probe.close()


def _consumer(settings: Settings, group: str, topic: str, **options: Any) -> BatchConsumer:
    return BatchConsumer(
        settings.kafka,
        group,
        [topic],
        **{
            "service": "test",
            "max_batch": 50,
            "within_seconds": 0.05,
            "session_timeout_seconds": 6,
            **options,
        },
    )


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel a running consumer, as the app stopping does, and wait until it closed."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _another_member(
    settings: Settings, group: str, topic: str, read: list[Record]
) -> asyncio.Task[None]:
    """A second member of ``group`` joining (a rebalance), adding what it reads to ``read``."""

    async def handle(batch: list[Record]) -> None:
        read.extend(batch)

    return asyncio.create_task(_consumer(settings, group, topic).run(handle))


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not condition():  # noqa: ASYNC110 - polls Kafka-side state, no event to wait on
            await asyncio.sleep(0.05)


async def test_when_a_batch_is_in_hand_then_nothing_is_committed_until_it_was_handled(
    settings: Settings, producer: Producer
) -> None:
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    group = f"{settings.namespace}-batch-test"
    _produce(producer, topic, 30)
    release = asyncio.Event()
    seen: list[Record] = []

    async def handle(batch: list[Record]) -> None:
        seen.extend(batch)
        await release.wait()

    consumer = _consumer(settings, group, topic)
    assert not settled(), "ready before it joined its group"
    task = asyncio.create_task(consumer.run(handle))
    await _until(lambda: len(seen) > 0)
    assert settled()
    assert {r.topic for r in seen} == {topic}
    assert _committed(settings, group, topic) == 0, "committed before the batch was handled"
    assert assigned_partitions() == sorted(f"{topic}:{p}" for p in range(settings.partitions or 1))

    release.set()
    await _until(lambda: len(seen) == 30)
    await _until(lambda: _committed(settings, group, topic) == 30)
    await _stop(task)
    assert sorted(r.value for r in seen) == sorted(f"v{n}".encode() for n in range(30))
    assert assigned_partitions() == []


@pytest.mark.parametrize("settling", [False, True], ids=["commits at once", "settles"])
async def test_when_the_stage_stops_mid_batch_then_the_batch_is_finished_and_kept(
    settings: Settings, producer: Producer, settling: bool
) -> None:
    """A settling stage (``settle=``) holds its last batch until the outputs are
    acknowledged: the stop commits it too, after asking."""
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    group = f"{settings.namespace}-batch-stop-{settling}"
    _produce(producer, topic, 20)
    started, finished = asyncio.Event(), []
    outputs = _Outputs()
    outputs.released.set()

    async def handle(batch: list[Record]) -> None:
        started.set()
        await asyncio.sleep(0.5)  # still working when the stop comes
        finished.extend(batch)
        outputs.produced += len(batch)

    options = {"settle": outputs} if settling else {}
    task = asyncio.create_task(_consumer(settings, group, topic, **options).run(handle))
    await asyncio.wait_for(started.wait(), 30)
    await _stop(task)

    assert finished, "the batch in hand was abandoned"
    assert _committed(settings, group, topic) == len(finished)
    if settling:
        assert outputs.waited, "committed without asking whether its outputs were acknowledged"

    again: list[Record] = []

    async def rest(batch: list[Record]) -> None:
        again.extend(batch)

    task = asyncio.create_task(_consumer(settings, group, topic).run(rest))
    await _until(lambda: len(finished) + len(again) == 20)
    await asyncio.sleep(0.5)
    await _stop(task)
    assert not {r.value for r in finished} & {r.value for r in again}, "a batch read twice"


def _lag(service: str, topic: str, partitions: int) -> float:
    return sum(
        REGISTRY.get_sample_value(
            "kizuna_consumer_lag_messages",
            {"service": service, "topic": topic, "partition": str(p)},
        )
        or 0.0
        for p in range(partitions)
    )


async def test_when_a_consumer_falls_behind_then_its_lag_is_reported_until_it_caught_up(
    settings: Settings, producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "LAG_PERIOD_S", 0.0)
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    parts = settings.partitions or 1
    _produce(producer, topic, 200)
    seen: list[Record] = []
    behind: list[float] = []

    async def handle(batch: list[Record]) -> None:
        seen.extend(batch)
        behind.append(_lag("lagging", topic, parts))

    consumer = _consumer(
        settings, f"{settings.namespace}-batch-lag", topic, service="lagging", max_batch=10
    )
    task = asyncio.create_task(consumer.run(handle))
    await _until(lambda: len(seen) == 200)
    await _until(lambda: _lag("lagging", topic, parts) == 0)
    await _stop(task)

    assert max(behind) > 100, "the backlog never showed"


async def test_when_a_stage_moves_to_the_batch_consumer_then_it_starts_where_faust_stopped(
    settings: Settings, producer: Producer
) -> None:
    """An existing deployment switches a stage from its faust agent's group to the batch
    consumer's own group: what the old group committed is not read again."""
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    parts = settings.partitions or 1
    for p in range(parts):
        for n in range(10):
            producer.produce(topic, value=f"p{p}-{n}".encode(), partition=p)
    assert producer.flush(10) == 0
    before = f"{settings.namespace}-faust-agent"
    old = create_consumer(settings.kafka, before)
    old.commit(offsets=[TopicPartition(topic, p, 6) for p in range(parts)], asynchronous=False)
    old.close()
    seen: list[Record] = []

    async def handle(batch: list[Record]) -> None:
        seen.extend(batch)

    consumer = _consumer(settings, f"{settings.namespace}-batch-new", topic, carry_over_from=before)
    task = asyncio.create_task(consumer.run(handle))
    await _until(lambda: len(seen) >= 4 * parts)
    await asyncio.sleep(1.0)  # anything older would have come by now
    await _stop(task)

    assert sorted(r.value for r in seen) == sorted(
        f"p{p}-{n}".encode() for p in range(parts) for n in range(6, 10)
    )


class _Outputs:
    """A stage's outputs whose acknowledgement the test releases (the ``settle`` side of
    :class:`runtime.producer.AsyncProducer`, which tests/integration/test_producer.py
    checks against the broker)."""

    def __init__(self) -> None:
        self.produced = 0
        self.released = asyncio.Event()
        self.waited: list[int] = []

    def mark(self) -> int:
        return self.produced

    async def acknowledged(self, mark: int) -> None:
        self.waited.append(mark)
        await self.released.wait()

    def acknowledged_blocking(self, mark: int, wait_seconds: float) -> bool:
        return self.released.is_set()


async def test_when_a_stage_settles_its_outputs_then_a_batch_is_committed_only_after_they_are(
    settings: Settings, producer: Producer
) -> None:
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    group = f"{settings.namespace}-batch-settle"
    _produce(producer, topic, 30)
    outputs = _Outputs()
    seen: list[Record] = []

    async def handle(batch: list[Record]) -> None:
        seen.extend(batch)
        outputs.produced += len(batch)  # one output per input

    consumer = _consumer(settings, group, topic, settle=outputs)
    task = asyncio.create_task(consumer.run(handle))
    await _until(lambda: len(seen) == 30 and outputs.waited)
    await asyncio.sleep(1.0)  # idle: the consumer is waiting for the acknowledgement
    assert _committed(settings, group, topic) == 0, "committed before the outputs were acked"
    assert outputs.waited[-1] <= 30

    outputs.released.set()
    await _until(lambda: _committed(settings, group, topic) == 30)
    await _stop(task)


async def test_when_partitions_move_then_the_held_batch_is_committed_before_they_go(
    settings: Settings, producer: Producer
) -> None:
    """A second member joins while the first waits for more input with its last batch
    handled but not committed: inside the rebalance the first one waits for that batch's
    outputs (``acknowledged_blocking``) and commits it before its partitions go."""
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    group = f"{settings.namespace}-batch-settle-move"
    _produce(producer, topic, 40)
    outputs = _Outputs()  # acknowledged() never returns: only the rebalance may commit
    outputs.acknowledged_blocking = lambda mark, wait_seconds: True  # type: ignore[method-assign]
    seen: list[Record] = []

    async def handle(batch: list[Record]) -> None:
        seen.extend(batch)
        outputs.produced += len(batch)

    # the 40 come in one batch at once; the next read then waits long for more, and the
    # rebalance comes inside it
    options = {"settle": outputs, "max_batch": 40, "within_seconds": 12.0}
    one = asyncio.create_task(_consumer(settings, group, topic, **options).run(handle))
    others: list[Record] = []
    two: asyncio.Task[None] | None = None
    try:
        await _until(lambda: len(seen) == 40)
        two = _another_member(settings, group, topic, others)
        await _until(lambda: _committed(settings, group, topic) == 40)
        assert not outputs.waited, "committed outside the rebalance"
        await asyncio.sleep(1.0)
        assert not others, "a batch committed at the rebalance was read again"
    finally:
        outputs.released.set()
        for running in (one, two):
            if running is not None:
                await _stop(running)


class _Overlapped:
    """An overlapped handler (``run(..., overlapped=True)``): each batch is taken now and
    its rest runs on, until ``release`` is set; a batch's rest starts after the one
    before it is done, as the identity resolver's does."""

    def __init__(self, outputs: _Outputs) -> None:
        self.outputs = outputs
        self.release = asyncio.Event()
        self.taken: list[list[Record]] = []
        self.done: list[Record] = []
        self._rest: asyncio.Future[None] | None = None

    async def begin(self, batch: list[Record]) -> asyncio.Future[None]:
        self.taken.append(batch)
        if self._rest is not None:
            await self._rest
        self._rest = asyncio.ensure_future(self._finish(batch))
        return self._rest

    async def _finish(self, batch: list[Record]) -> None:
        await self.release.wait()
        self.done.extend(batch)
        self.outputs.produced += len(batch)


async def test_when_a_handler_overlaps_batches_then_each_is_committed_once_its_rest_is_done(
    settings: Settings, producer: Producer
) -> None:
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    group = f"{settings.namespace}-batch-overlap"
    _produce(producer, topic, 30)
    outputs = _Outputs()
    outputs.released.set()
    handler = _Overlapped(outputs)
    consumer = _consumer(settings, group, topic, settle=outputs, max_batch=10)

    task = asyncio.create_task(consumer.run(handler.begin, overlapped=True))
    await _until(lambda: len(handler.taken) == 2)
    await asyncio.sleep(0.5)
    assert not handler.done
    assert _committed(settings, group, topic) == 0, "committed before its rest was done"

    handler.release.set()
    await _until(lambda: len(handler.done) == 30)
    await _until(lambda: _committed(settings, group, topic) == 30)
    await _stop(task)
    assert sorted(r.value for r in handler.done) == sorted(f"v{n}".encode() for n in range(30))


async def test_when_partitions_move_while_a_rest_runs_then_its_batch_is_committed_before_they_go(
    settings: Settings, producer: Producer
) -> None:
    """The rebalance comes inside the read of the next batch, while the last one's rest
    still runs on the loop: the consumer's thread waits for it, then commits it."""
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    group = f"{settings.namespace}-batch-overlap-move"
    _produce(producer, topic, 40)
    outputs = _Outputs()  # acknowledged() never returns: only the rebalance may commit
    outputs.acknowledged_blocking = lambda mark, wait_seconds: True  # type: ignore[method-assign]
    handler = _Overlapped(outputs)
    options = {"settle": outputs, "max_batch": 40, "within_seconds": 12.0}
    first = _consumer(settings, group, topic, **options)
    one = asyncio.create_task(first.run(handler.begin, overlapped=True))
    others: list[Record] = []
    two: asyncio.Task[None] | None = None
    try:
        await _until(lambda: len(handler.taken) == 1)
        two = _another_member(settings, group, topic, others)
        await asyncio.sleep(2.0)  # the rebalance has begun, and waits for the rest
        assert _committed(settings, group, topic) == 0
        handler.release.set()
        await _until(lambda: _committed(settings, group, topic) == 40)
        assert not outputs.waited, "committed outside the rebalance"
        await asyncio.sleep(1.0)
        assert not others, "a batch committed at the rebalance was read again"
    finally:
        outputs.released.set()
        handler.release.set()
        for running in (one, two):
            if running is not None:
                await _stop(running)


async def test_when_the_stage_stops_while_a_rest_cannot_finish_then_the_process_stops_bounded(
    settings: Settings, producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rest that never ends (Redis gone at shutdown) holds the stop for the drain time
    only, then stops the process hard: its batch is not committed, so it is read again."""
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    group = f"{settings.namespace}-batch-overlap-stop"
    _produce(producer, topic, 10)
    stopped: list[str] = []
    for module in (consumer_module, batches_module):  # (the process would be gone)
        monkeypatch.setattr(module, "fail_stop", lambda service, why: stopped.append(why))
    outputs = _Outputs()
    outputs.released.set()
    handler = _Overlapped(outputs)  # not released until the stop is over: its rest hangs
    consumer = _consumer(settings, group, topic, settle=outputs, drain_seconds=1.0)
    task = asyncio.create_task(consumer.run(handler.begin, overlapped=True))
    await _until(lambda: len(handler.taken) == 1)

    try:
        async with asyncio.timeout(15):
            await _stop(task)
    finally:
        handler.release.set()  # (the rest left running ends with the test)
        await asyncio.sleep(0.1)

    assert stopped, "the stop waited for a rest that never ends"
    assert "unfinished at shutdown" in stopped[0]
    assert _committed(settings, group, topic) == 0
