"""The live view's consumer lag counts what each service's groups still have to read,
not offsets a group left behind on a topic it no longer reads."""

from __future__ import annotations

from confluent_kafka import Producer, TopicPartition

from runtime.kafka import create_consumer
from runtime.settings import Settings
from schemas.topics import NOTIFICATIONS_REQUESTED, RAW_WEB
from simulator.observe import Lag


def _commit(settings: Settings, group: str, topic: str, offset: int) -> None:
    consumer = create_consumer(settings.kafka, group)
    consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    consumer.close()


def test_when_a_stage_moved_to_its_batch_consumer_then_the_old_groups_offsets_do_not_count(
    settings: Settings, topics: list[str], producer: Producer
) -> None:
    ns = settings.namespace
    raw, requests = RAW_WEB.name(ns), NOTIFICATIONS_REQUESTED.name(ns)
    for topic in (raw, requests):
        for n in range(10):
            producer.produce(topic, value=f"m{n}".encode(), partition=0)
    assert producer.flush(10) == 0
    _commit(settings, f"{ns}-identity", raw, 2)  # faust's group, before the switch
    _commit(settings, f"{ns}-identity-resolve", raw, 9)
    _commit(settings, f"{ns}-notifier", requests, 1)  # faust's group, before the switch
    _commit(settings, f"{ns}-notifier-deliver", requests, 7)

    lag = Lag(settings.kafka, ns)
    try:
        measured = lag.measure()
    finally:
        lag.close()

    assert measured["identity"] == 1
    assert measured["notifier"] == 3
