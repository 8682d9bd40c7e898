"""Staging (runtime.batches): a batch's rows wait for its outputs' acknowledgements,
and, in a batch that spans partitions, each row is written during an event of its own
partition (faust takes the store and changelog partition from the current event)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from faust.streams import current_event

from runtime.batches import Staging, process_batches


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int


@dataclass(frozen=True)
class Event:
    message: Message


class PartitionTable(dict[bytes, bytes]):
    """Records the partition of the event current at each write, as faust's table does."""

    def __init__(self) -> None:
        super().__init__()
        self.written_in: dict[bytes, int | None] = {}

    def __setitem__(self, key: bytes, value: bytes) -> None:
        event = current_event()
        self.written_in[key] = None if event is None else event.message.partition
        super().__setitem__(key, value)


class Batches:
    """A faust stream's ``take_events`` over fixed batches."""

    def __init__(self, *batches: list[Event]) -> None:
        self.batches = batches

    async def take_events(self, max_: int, within: float) -> AsyncIterator[Sequence[Event]]:
        for batch in self.batches:
            yield batch


def events(*partitions: int) -> list[Event]:
    return [Event(Message("t.customer.events", p)) for p in partitions]


async def test_when_a_batch_spans_partitions_then_each_row_is_written_in_its_own() -> None:
    table = PartitionTable()
    staging: Staging[str] = Staging(table)

    async def handle(batch: Sequence[Any]) -> None:
        staging.put(b"a", "A", b"row-a", 2)
        staging.put(b"b", "B", b"row-b", 0)
        await staging.commit()

    await process_batches(
        Batches(events(0, 2, 2)), handle, service="t", max_batch=10, within_seconds=0.01
    )

    assert table == {b"a": b"row-a", b"b": b"row-b"}
    assert table.written_in == {b"a": 2, b"b": 0}
    assert current_event() is None  # nothing left behind for the next batch


async def test_when_outputs_are_pending_then_rows_wait_and_a_re_read_sees_the_staged_row() -> None:
    table = PartitionTable()
    staging: Staging[str] = Staging(table)
    ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    staging.put(b"a", "A1", b"row-a1", 0)
    staging.expect([ack])
    staging.put(b"a", "A2", b"row-a2", 0)  # a second input for the same customer

    committing = asyncio.create_task(staging.commit())
    await asyncio.sleep(0.01)

    assert table == {}  # not acknowledged: nothing written
    assert staging.get(b"a") == ("A2", b"row-a2")
    ack.set_result(None)
    assert await committing == 1  # one write for the customer
    assert table == {b"a": b"row-a2"}
    assert staging.get(b"a") is None
