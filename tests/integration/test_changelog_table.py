"""Given the real local broker, a worker's table kept without faust (runtime.store): rows
written in one process are there, latest value per key, when another process is given
their partitions; a partition taken away is dropped; a batch's many sends wait on one
flush of the producer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from runtime.kafka import create_admin
from runtime.producer import AsyncProducer
from runtime.settings import Settings
from runtime.store import ChangelogTable, partition_rows
from runtime.topics import changelog_spec, delete_topics, ensure_topics


@pytest.fixture
def changelog(settings: Settings) -> Iterator[str]:
    spec = changelog_spec("store-test", "rows", 2)
    admin = create_admin(settings.kafka)
    ensure_topics(admin, settings.namespace, specs=[spec])
    yield spec.name(settings.namespace)
    delete_topics(admin, [spec.name(settings.namespace)])


@pytest.fixture(params=["memory://", "rocksdb://"])
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def table(
    settings: Settings, topic: str, store: str = "memory://", name: str = "a"
) -> ChangelogTable:
    """``name``: a worker of its own (its own data directory for RocksDB)."""
    rows = partition_rows(settings.model_copy(update={"store": store}), f"store-test-{name}")
    return ChangelogTable(settings.kafka, topic, AsyncProducer(settings.kafka), rows=rows)


async def test_when_another_worker_gets_the_partitions_then_it_has_the_latest_rows(
    settings: Settings, changelog: str, store: str
) -> None:
    first = table(settings, changelog, store, "first")
    first.hold({0, 1})
    for n in range(300):
        first.put(f"c{n % 100}".encode(), f"v{n}".encode(), n % 2)
    await first.flush()

    second = table(settings, changelog, store, "second")
    second.hold({0, 1})

    assert len(second) == 100
    assert {second.get(f"c{n}".encode()) for n in (0, 1, 99)} == {b"v200", b"v201", b"v299"}
    assert sorted(second.values()) == sorted(first.values())


async def test_when_a_partition_is_taken_away_then_its_rows_go_and_it_cannot_be_written(
    settings: Settings, changelog: str, store: str
) -> None:
    rows = table(settings, changelog, store)
    rows.hold({0, 1})
    rows.put(b"a", b"1", 0)
    rows.put(b"b", b"2", 1)
    await rows.flush()

    rows.hold({1})

    assert (rows.get(b"a"), rows.get(b"b"), rows.partitions) == (None, b"2", {1})
    with pytest.raises(KeyError):
        rows.put(b"a", b"3", 0)
    rows.hold({0, 1})  # given back: read again from the changelog
    assert rows.get(b"a") == b"1"


async def test_a_partition_never_written_is_held_empty(settings: Settings, changelog: str) -> None:
    rows = table(settings, changelog)

    rows.hold({0, 1})

    assert (len(rows), rows.partitions) == (0, {0, 1})


async def test_many_sends_of_a_round_share_one_flush(settings: Settings, changelog: str) -> None:
    producer = AsyncProducer(settings.kafka)
    flushes = 0
    flush = producer.flush

    async def counted(wait_seconds: float = 60.0) -> None:
        nonlocal flushes
        flushes += 1
        await flush(wait_seconds)

    producer.flush = counted  # type: ignore[method-assign]
    rounds = []
    for n in range(50):
        producer.produce(changelog, f"k{n}".encode(), b"v", partition=n % 2)
        rounds.append(producer.acks())

    await asyncio.gather(*rounds)

    assert flushes == 1
    later = producer.acks()
    assert later is not rounds[0]  # a new round after the first one started
    await later
    assert flushes == 2


async def test_when_a_row_is_read_by_its_partition_then_only_that_partition_is_asked(
    settings: Settings, changelog: str
) -> None:
    asked: list[int] = []

    class Asked(dict[bytes, bytes]):
        def __init__(self, partition: int) -> None:
            super().__init__()
            self.partition = partition

        def get(self, key: bytes, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
            asked.append(self.partition)
            return super().get(key, default)

    rows = ChangelogTable(settings.kafka, changelog, AsyncProducer(settings.kafka), rows=Asked)
    rows.hold({0, 1})
    rows.put(b"c1", b"v1", 1)

    assert rows.row(b"c1", 1) == b"v1"
    assert rows.row(b"new", 0) is None  # a customer with no row yet: one lookup
    assert rows.row(b"c1", 0) is None  # not where her input puts her
    assert asked == [1, 0, 0]
    assert rows.row(b"c1", None) == b"v1"  # wherever it is: every partition asked
