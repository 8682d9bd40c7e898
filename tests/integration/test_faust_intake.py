"""Given the real local broker, when events are produced with confluent-kafka, then a
faust agent consumes them; when bad bytes arrive on any raw topic, then each one lands
on the dead-letter topic with its reason and origin, and nothing valid is lost."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from confluent_kafka import Consumer, Producer

from runtime.settings import Settings
from schemas.codec import decode, encode
from schemas.deadletter import DeadLetter
from schemas.examples import EXAMPLES, example
from schemas.topics import DEADLETTER, RAW_TOPICS, TopicSpec, raw_topic_for
from tests.integration.conftest import Worker, consume

PROBE = "tests.integration.apps.intake_probe"


def wait_for_list(client: redis.Redis, key: str, length: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.llen(key) >= length:
            break
        time.sleep(0.2)
    return [item.decode() for item in client.lrange(key, 0, -1)]


def test_when_every_event_kind_is_produced_then_the_faust_agent_consumes_each_once(
    settings: Settings,
    topics: list[str],
    producer: Producer,
    redis_client: redis.Redis,
    worker_factory: Callable[[str], Worker],
) -> None:
    worker_factory(PROBE)
    sent = []
    for seed, kind in enumerate(EXAMPLES):
        event = example(kind, seed=seed)
        topic = raw_topic_for(event.type).name(settings.namespace)
        producer.produce(topic, key=event.identifiers.routing_key(), value=encode(event))
        sent.append(event.event_id)
    assert producer.flush(10) == 0

    seen = wait_for_list(redis_client, f"{settings.namespace}:seen", len(sent))

    assert sorted(seen) == sorted(sent)


BAD_INPUTS: list[tuple[bytes, str, str]] = [
    (b"\xff\xfe not json", "undecodable", "Invalid JSON"),
    (b'{"type": "page_viewed"}', "invalid", "page_viewed.event_id: Field required"),
    (b'{"type": "coupon_printed", "event_id": "e1"}', "unknown_type", "coupon_printed"),
    (b"", "undecodable", "empty message"),
]


def test_when_bad_messages_arrive_on_every_raw_topic_then_each_is_dead_lettered_with_reason(
    settings: Settings,
    topics: list[str],
    producer: Producer,
    consumer_factory: Callable[..., Consumer],
    redis_client: redis.Redis,
    worker_factory: Callable[[str], Worker],
) -> None:
    worker = worker_factory(PROBE)
    expected: dict[tuple[str, bytes], tuple[str, str]] = {}
    spec: TopicSpec
    for spec in RAW_TOPICS:
        topic = spec.name(settings.namespace)
        for raw, reason, fragment in BAD_INPUTS:
            producer.produce(topic, key=b"bad", value=raw)
            expected[(topic, raw)] = (reason, fragment)
    valid = example("order_completed")
    producer.produce(raw_topic_for(valid.type).name(settings.namespace), value=encode(valid))
    assert producer.flush(10) == 0

    letters = [
        decode(DEADLETTER.adapter, message.value())
        for message in consume(
            consumer_factory(DEADLETTER.name(settings.namespace)), len(expected), timeout=60
        )
    ]

    assert len(letters) == len(expected)
    for letter in letters:
        assert isinstance(letter, DeadLetter)
        reason, fragment = expected[(letter.source_topic or "", letter.original)]
        assert letter.reason == reason
        assert fragment in letter.error, letter.error
        assert letter.source_offset is not None
        assert letter.key == b"bad"
    assert wait_for_list(redis_client, f"{settings.namespace}:seen", 1) == [valid.event_id]
    assert (
        'kizuna_deadletters_total{reason="invalid",service="intake-probe"} 7.0' in worker.metrics()
    )
