"""The rewind faust relies on, on real Kafka: records fetched and then dropped (a
partition still recovering, a stopped flow) are read again, also on a partition that
never had an offset committed (#6: journey reminders lost after a restart)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from confluent_kafka import Producer

from runtime.settings import Settings
from runtime.transport import seek_committed_or_reset
from schemas.topics import CUSTOMER_EVENTS, IDENTITY_CHANGES

pytestmark = pytest.mark.usefixtures("topics")


@pytest.fixture
async def fetched(settings: Settings, producer: Producer) -> AsyncIterator[AIOKafkaConsumer]:
    """A group consumer that has read five records from each of three partitions:
    partition 0 of the events never committed, partition 1 committed at 3, and a
    (changelog-like) partition of another topic never committed."""
    events, other = names(settings)
    for topic, partition in ((events, 0), (events, 1), (other, 0)):
        for n in range(5):
            producer.produce(topic, value=b"%d" % n, partition=partition)
    assert producer.flush(10) == 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka,
        group_id=f"{settings.namespace}-rewind",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    parts = [TopicPartition(events, 0), TopicPartition(events, 1), TopicPartition(other, 0)]
    consumer.assign(parts)
    await consumer.commit({TopicPartition(events, 1): OffsetAndMetadata(3, "")})
    await consumer.seek_to_beginning(*parts)
    read = 0
    while read < 15:
        batch = await consumer.getmany(timeout_ms=2000)
        assert batch, f"only {read} of 15 records came back"
        read += sum(len(records) for records in batch.values())
    yield consumer
    await consumer.stop()


def names(settings: Settings) -> tuple[str, str]:
    return CUSTOMER_EVENTS.name(settings.namespace), IDENTITY_CHANGES.name(settings.namespace)


async def positions(consumer: AIOKafkaConsumer, settings: Settings) -> list[int]:
    events, other = names(settings)
    parts = [TopicPartition(events, 0), TopicPartition(events, 1), TopicPartition(other, 0)]
    return [await consumer.position(tp) for tp in parts]


async def test_when_rewound_then_an_uncommitted_partition_starts_over_and_others_resume(
    fetched: AIOKafkaConsumer, settings: Settings
) -> None:
    _, other = names(settings)
    await seek_committed_or_reset(fetched, reset="earliest", leave={other})

    # never committed: from the start; committed at 3: from 3; left alone: where it was
    assert await positions(fetched, settings) == [0, 3, 5]


async def test_when_rewound_with_reset_latest_then_an_uncommitted_partition_goes_to_the_end(
    fetched: AIOKafkaConsumer, settings: Settings
) -> None:
    fetched.seek(TopicPartition(names(settings)[0], 0), 2)
    await seek_committed_or_reset(fetched, reset="latest", leave=set())

    assert await positions(fetched, settings) == [5, 3, 5]


async def test_aiokafka_alone_leaves_an_uncommitted_partition_where_it_was(
    fetched: AIOKafkaConsumer, settings: Settings
) -> None:
    """Why :mod:`runtime.transport` exists: if this starts failing, aiokafka rewinds by
    itself and the fix can go."""
    await fetched.seek_to_committed()

    assert await positions(fetched, settings) == [5, 3, 5]
