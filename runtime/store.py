"""A worker's table without faust: rows in memory per partition, every write also sent
to a compacted changelog topic, a partition restored from its changelog when the group
gives it to this worker.

For a stage read with :class:`runtime.consumer.BatchConsumer` (confluent-kafka batches
instead of a faust agent's per-message path, which caps a worker at a few thousand
messages/s). The changelog has the input topic's partitions; a row lives in the
partition of the input it came from, so the worker that owns input partition ``p`` owns
changelog partition ``p``. The topic and its records are the ones faust writes for a
table of raw bytes (``<namespace>-<app>-<table>-changelog``), so a stage can move between
the two intakes and keep its state.

Order of writes in a batch (the caller's duty, see :class:`runtime.batches.Staging`):
outputs acknowledged -> rows :meth:`put` -> :meth:`flush` -> input offsets committed. A
crash loses at most rows whose inputs were not committed: they are read again.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from runtime.kafka import create_consumer
from runtime.producer import AsyncProducer
from runtime.settings import Settings, table_options
from runtime.topics import changelog_spec

Rows = MutableMapping[bytes, bytes]

log = logging.getLogger(__name__)


class RestoreError(RuntimeError):
    """A changelog partition could not be read to its end."""


def in_memory(partition: int) -> Rows:
    return {}


def partition_rows(settings: Settings, name: str) -> Callable[[int], Rows]:
    """Where a partition's rows live, as ``KIZUNA_STORE`` says for faust tables: in
    memory, or (``rocksdb://``) in one RocksDB per partition under the data directory,
    with faust's RocksDB options. A partition's database is made afresh when the
    partition arrives and filled from its changelog."""
    if not settings.store.startswith("rocksdb"):
        return in_memory
    from faust.stores.rocksdb import RocksDBOptions  # rocksdict: only when asked for
    from rocksdict import WriteOptions

    tuned = table_options(settings)
    options = RocksDBOptions(
        block_cache_size=tuned["block_cache_size"],
        write_buffer_size=tuned["write_buffer_size"],
        max_write_buffer_number=tuned["max_write_buffer_number"],
    )
    base = Path(settings.data_dir) / f"{settings.namespace}-{name}"
    # No write-ahead log: a partition's database is made afresh from the changelog each
    # time it arrives, so RocksDB's own recovery never runs; the log only cost each
    # write ~2 µs (~3.2 µs a put with it, ~1.0 without).
    no_log = WriteOptions()
    no_log.disable_wal = True  # type: ignore[method-assign,assignment]  # a property (stubs: method)

    def on_disk(partition: int) -> Rows:
        path = base / str(partition)
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = options.open(path)
        rows.set_write_options(no_log)
        return cast(Rows, rows)

    return on_disk


def stage_table(
    settings: Settings, app: str, table: str, partitions: int, producer: AsyncProducer
) -> ChangelogTable:
    """The table ``table`` of the stage ``app``, on faust's changelog topic for it
    (``<namespace>-<app>-<table>-changelog``), its rows where ``KIZUNA_STORE`` says."""
    return ChangelogTable(
        settings.kafka,
        changelog_spec(app, table, partitions).name(settings.namespace),
        producer,
        rows=partition_rows(settings, f"{app}-{table}"),
    )


class ChangelogTable:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        producer: AsyncProducer,
        *,
        rows: Callable[[int], Rows] = in_memory,
        restore_timeout: float = 300,
    ) -> None:
        self.bootstrap, self.topic, self.producer = bootstrap, topic, producer
        self.restore_timeout = restore_timeout
        self._open = rows
        self._parts: dict[int, Rows] = {}

    # -- rows ---------------------------------------------------------------------------

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        for rows in self._parts.values():
            row = rows.get(key)
            if row is not None:
                return row
        return default

    def row(self, key: bytes, partition: int | None) -> bytes | None:
        """The row of ``key`` in ``partition`` (where the caller's input put it): one
        lookup, where :meth:`get` (``partition`` None) asks each partition held, a
        RocksDB lookup each: a worker holding 4 of 12 partitions asked 4 times for a
        customer with no row yet, most customers' first event."""
        if partition is None:
            return self.get(key)
        rows = self._parts.get(partition)
        return None if rows is None else rows.get(key)

    def put(self, key: bytes, row: bytes, partition: int) -> None:
        """Write the row now; its changelog record is acknowledged by :meth:`flush`."""
        rows = self._parts.get(partition)
        if rows is None:
            raise KeyError(f"partition {partition} of {self.topic} is not held here")
        rows[key] = row
        self.producer.produce(self.topic, key, row, partition=partition)

    def values(self) -> Iterator[bytes]:
        for rows in list(self._parts.values()):
            yield from rows.values()

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for rows in list(self._parts.values()):
            yield from rows.items()

    def __len__(self) -> int:
        return sum(1 for _ in self.items())

    @property
    def partitions(self) -> set[int]:
        return set(self._parts)

    async def flush(self) -> None:
        """Every changelog record written so far is acknowledged (or this raises)."""
        await self.producer.flush()

    # -- assignment (called on the consumer's thread, inside a rebalance) ----------------

    def hold(self, partitions: set[int]) -> None:
        """Keep exactly ``partitions``: drop the others' rows, restore the new ones."""
        for gone in set(self._parts) - partitions:
            _close(self._parts.pop(gone))
        fresh = sorted(partitions - set(self._parts))
        if fresh:
            self._parts.update(self._restore(fresh))

    def _restore(self, partitions: list[int]) -> dict[int, Rows]:
        started = time.monotonic()
        reader: Consumer = create_consumer(self.bootstrap, f"{self.topic}-restore")
        try:
            deadline = started + self.restore_timeout
            marks = {p: _watermarks(reader, self.topic, p, deadline) for p in partitions}
            ends = {p: high for p, (_, high) in marks.items()}
            restored = {p: self._open(p) for p in partitions}
            todo = {p for p, (low, high) in marks.items() if high > max(low, 0)}
            if todo:
                reader.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in todo])
            while todo:
                if time.monotonic() > deadline:
                    raise RestoreError(f"{self.topic} {sorted(todo)} not read to the end in time")
                for message in reader.consume(10_000, 0.5):
                    error = message.error()
                    if error is not None:
                        if error.fatal():
                            raise KafkaException(error)
                        continue
                    p, key, value = message.partition() or 0, message.key(), message.value()
                    if key is not None:
                        if value is None:
                            if key in restored[p]:  # a tombstone
                                del restored[p][key]
                        else:
                            restored[p][key] = value
                    if (message.offset() or 0) >= ends[p] - 1:
                        todo.discard(p)
        finally:
            reader.close()
        log.info(
            "table partitions restored from the changelog",
            extra={
                "topic": self.topic,
                "partitions": partitions,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return restored


def row_reader(
    table: MutableMapping[bytes, bytes],
) -> Callable[[bytes, int | None], bytes | None]:
    """``read(key, partition)``: a :class:`ChangelogTable`'s row in that partition, any
    other table's row by key alone (faust's table finds the partition itself; a dict in
    tests holds every partition)."""
    if isinstance(table, ChangelogTable):
        return table.row
    get = table.get
    return lambda key, _partition: get(key)


def _watermarks(reader: Consumer, topic: str, partition: int, deadline: float) -> tuple[int, int]:
    """(low, high) of one changelog partition. A transient refusal (a leader not yet
    elected for a new topic, or moving) is asked again until ``deadline``."""
    delay = 0.1
    while True:
        try:
            low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), 10)
            return low, high
        except KafkaException as err:
            error = err.args[0] if err.args else None
            if not _transient(error) or time.monotonic() + delay > deadline:
                raise
            log.info(
                "changelog offsets not available yet: asking again",
                extra={"topic": topic, "partition": partition, "error": str(err)},
            )
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


_TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,  # a new topic's metadata not everywhere yet
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)


def _transient(error: Any) -> bool:
    if not isinstance(error, KafkaError):
        return False
    return error.retriable() or error.code() in _TRANSIENT


def _close(rows: Any) -> None:
    close = getattr(rows, "close", None)  # a RocksDB; its files go with the next open
    if close is not None:
        close()
