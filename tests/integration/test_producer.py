"""runtime.producer.AsyncProducer on the real broker: acks awaited, failures raised."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from runtime.kafka import create_admin, create_consumer
from runtime.producer import AsyncProducer, DeliveryError
from runtime.settings import Settings
from runtime.topics import delete_topics


@pytest.fixture
def small_topic(settings: Settings) -> Iterator[str]:
    """A topic whose broker refuses messages (record batches) over 50,000 bytes."""
    name = f"{settings.namespace}.producer-test"
    admin = create_admin(settings.kafka)
    spec = NewTopic(name, 1, 1, config={"max.message.bytes": "50000"})
    admin.create_topics([spec])[name].result(30)
    yield name
    delete_topics(admin, [name])


def _read_all(settings: Settings, topic: str, expected: int) -> list[bytes]:
    consumer: Consumer = create_consumer(settings.kafka, f"{settings.namespace}-producer-test")
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    try:
        for _ in range(60):
            for message in consumer.consume(500, 0.5):
                if message.error() is None:
                    values.append(message.value() or b"")
            if len(values) >= expected:
                break
    finally:
        consumer.close()
    return values


async def test_when_flush_returns_then_every_message_is_in_kafka(
    settings: Settings, small_topic: str
) -> None:
    producer = AsyncProducer(settings.kafka)
    for n in range(1000):
        producer.produce(small_topic, f"k{n % 7}".encode(), f"v{n}".encode())

    await producer.flush()

    assert sorted(_read_all(settings, small_topic, 1000)) == sorted(
        f"v{n}".encode() for n in range(1000)
    )


async def test_when_the_broker_refuses_a_message_then_flush_raises_with_the_reason(
    settings: Settings, small_topic: str
) -> None:
    """Only failed deliveries call back (delivery.report.only.error): they must still
    reach flush, or a worker would commit input whose output was lost."""
    producer = AsyncProducer(settings.kafka)
    producer.produce(small_topic, b"before", b"a" * 100)
    await producer.flush()
    producer.produce(small_topic, b"too-big", os.urandom(200_000))  # lz4 cannot shrink it

    with pytest.raises(DeliveryError, match="MSG_SIZE_TOO_LARGE"):
        await producer.flush()

    producer.produce(small_topic, b"after", b"b" * 100)
    await producer.flush()  # the failure was reported once; the producer goes on
    assert _read_all(settings, small_topic, 2) == [b"a" * 100, b"b" * 100]


@pytest.mark.parametrize("headers", [None, [("kizuna-type", b"order_completed")]])
async def test_when_a_message_names_its_partition_or_headers_then_it_lands_so_or_is_refused(
    settings: Settings, small_topic: str, headers: list[tuple[str, bytes]] | None
) -> None:
    """Every form of produce (positional arguments, the producer's default delivery
    callback) writes key, value, partition and headers as given, and reports a refusal."""
    producer = AsyncProducer(settings.kafka)
    producer.produce(small_topic, b"k", b"v", partition=0, headers=headers)
    producer.produce(small_topic, b"k2", b"v2", headers=headers)
    await producer.flush()
    consumer: Consumer = create_consumer(settings.kafka, f"{settings.namespace}-producer-test")
    consumer.assign([TopicPartition(small_topic, 0, 0)])
    got: list[tuple[bytes | None, bytes | None, object]] = []
    try:
        for _ in range(60):
            got += [(m.key(), m.value(), m.headers()) for m in consumer.consume(10, 0.5)]
            if len(got) >= 2:
                break
    finally:
        consumer.close()
    assert got == [(b"k", b"v", headers), (b"k2", b"v2", headers)]

    producer.produce(small_topic, b"k", os.urandom(200_000), partition=0, headers=headers)
    with pytest.raises(DeliveryError, match="MSG_SIZE_TOO_LARGE"):
        await producer.flush()


async def test_when_a_mark_was_flushed_then_it_is_acknowledged_without_another_flush(
    settings: Settings, small_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = AsyncProducer(settings.kafka)
    producer.produce(small_topic, b"k", b"first")
    first = producer.mark()
    await producer.acknowledged(first)  # nothing flushed it yet: flushes
    producer.produce(small_topic, b"k", b"second")
    second = producer.mark()
    await producer.flush()  # e.g. the next batch's own flush

    flushes: list[float] = []
    real = producer.flush

    async def counted(wait_seconds: float = 60.0) -> None:
        flushes.append(wait_seconds)
        await real(wait_seconds)

    monkeypatch.setattr(producer, "flush", counted)
    await producer.acknowledged(first)
    await producer.acknowledged(second)
    assert producer.acknowledged_blocking(second, 5.0)
    assert flushes == []
    producer.produce(small_topic, b"k", b"third")
    await producer.acknowledged(producer.mark())
    assert len(flushes) == 1
    assert _read_all(settings, small_topic, 3) == [b"first", b"second", b"third"]


async def test_when_a_marked_message_was_refused_then_it_is_not_acknowledged(
    settings: Settings, small_topic: str
) -> None:
    producer = AsyncProducer(settings.kafka)
    producer.produce(small_topic, b"too-big", os.urandom(200_000))
    mark = producer.mark()
    assert not producer.acknowledged_blocking(mark, 10.0)
    with pytest.raises(DeliveryError, match="MSG_SIZE_TOO_LARGE"):
        await producer.acknowledged(mark)


async def test_when_another_flush_took_the_refusal_then_no_mark_is_acknowledged_any_more(
    settings: Settings, small_topic: str
) -> None:
    """Two callers flush at once (identity's settle task; the consumer at a rebalance):
    whichever of them the refusal was reported to, the other may not call the batch
    acknowledged and commit its offsets."""
    producer = AsyncProducer(settings.kafka)
    producer.produce(small_topic, b"too-big", os.urandom(200_000))
    mark = producer.mark()
    with pytest.raises(DeliveryError, match="MSG_SIZE_TOO_LARGE"):
        await producer.flush()  # the other caller, who stops the worker

    assert not producer.acknowledged_blocking(mark, 10.0)
    with pytest.raises(DeliveryError, match="refused"):
        await producer.acknowledged(mark)
