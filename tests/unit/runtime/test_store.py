"""The changelog table asks a partition's offsets again while Kafka is still electing
its leader (a new topic, a moving leader), and gives up on anything else."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from runtime.store import _watermarks


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
