"""The changelog table asks a partition's offsets again while Kafka is still electing
its leader (a new topic, a moving leader), and gives up on anything else; its RocksDB
rows are written without RocksDB's own log (the changelog is what recovers them)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from runtime.settings import load_settings
from runtime.store import _watermarks, partition_rows


class Reader:
    def __init__(self, *answers: tuple[int, int] | KafkaError) -> None:
        self.answers = list(answers)
        self.asked = 0

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, KafkaError):
            raise KafkaException(answer)
        return answer


def test_when_the_leader_is_not_elected_yet_then_the_offsets_are_asked_again() -> None:
    reader = Reader(
        KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION),
        KafkaError(KafkaError.LEADER_NOT_AVAILABLE),
        (0, 42),
    )

    marks = _watermarks(reader, "t-changelog", 0, time.monotonic() + 10)  # type: ignore[arg-type]

    assert marks == (0, 42)
    assert reader.asked == 3


def test_when_the_error_is_not_transient_then_it_is_raised_at_once() -> None:
    reader = Reader(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), (0, 1))

    with pytest.raises(KafkaException):
        _watermarks(reader, "t-changelog", 0, time.monotonic() + 10)  # type: ignore[arg-type]
    assert reader.asked == 1


def test_when_the_leader_never_comes_then_it_gives_up_at_the_deadline() -> None:
    reader = Reader(*[KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)] * 50)

    with pytest.raises(KafkaException):
        _watermarks(reader, "t-changelog", 0, time.monotonic() + 0.5)  # type: ignore[arg-type]
    assert 1 < reader.asked < 10


def test_when_rows_are_on_disk_then_rocksdb_keeps_no_log_of_them(tmp_path: Path) -> None:
    """A partition's database is made afresh from the changelog whenever the partition
    arrives: a write-ahead log would never be read, yet cost every write ~2 µs."""
    settings = load_settings().model_copy(
        update={"store": "rocksdb://", "data_dir": str(tmp_path), "namespace": "t"}
    )
    rows = partition_rows(settings, "stage-rows")(0)
    for n in range(2_000):
        rows[f"c{n}".encode()] = b"x" * 200

    logs = list(tmp_path.glob("t-stage-rows/0/*.log"))
    assert logs  # RocksDB made its log file ...
    assert sum(log.stat().st_size for log in logs) == 0  # ... and wrote nothing to it
    assert rows[b"c1999"] == b"x" * 200
    rows.close()  # type: ignore[attr-defined]
