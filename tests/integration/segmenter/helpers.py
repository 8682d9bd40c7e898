"""Producing customer events and identity changes the way identity does, and reading
what the segmenter emits."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import datetime
from typing import Any

import redis
from confluent_kafka import Consumer, Producer

from runtime.settings import Settings
from schemas.codec import decode, encode
from schemas.events import RawEvent
from schemas.identity import CustomersMerged
from schemas.segments import SegmentChanged
from schemas.topics import CUSTOMER_EVENTS, IDENTITY_CHANGES, SEGMENT_CHANGES
from services.segmenter.adapters.partitioning import partition_for
from services.segmenter.messages import ClockSet, control_topic
from tests.unit.segmenter.builders import for_customer

SEGMENTER = "services.segmenter"


def partition_of(settings: Settings, customer_id: str) -> int:
    return partition_for(customer_id, settings.partitions or CUSTOMER_EVENTS.partitions)


def send_events(
    producer: Producer, settings: Settings, customer_id: str, *events: RawEvent
) -> None:
    """As identity does: keyed by customer id, librdkafka's CRC-32 partition."""
    for event in events:
        producer.produce(
            CUSTOMER_EVENTS.name(settings.namespace),
            key=customer_id.encode(),
            value=encode(for_customer(customer_id, event)),
            partition=partition_of(settings, customer_id),
        )
    assert producer.flush(10) == 0


def send_merge(
    producer: Producer, settings: Settings, survivor: str, absorbed: str, at: datetime
) -> None:
    merged = CustomersMerged(
        customer_id=survivor, absorbed=(absorbed,), version=2, occurred_at=at, cause_event_id="x1"
    )
    producer.produce(
        IDENTITY_CHANGES.name(settings.namespace),
        key=survivor.encode(),
        value=encode(merged),
        partition=partition_of(settings, survivor),
    )
    assert producer.flush(10) == 0


def set_clock(producer: Producer, settings: Settings, as_of: datetime) -> None:
    for partition in range(settings.partitions or CUSTOMER_EVENTS.partitions):
        producer.produce(
            control_topic(settings.namespace),
            key=b"clock",
            value=encode(ClockSet(as_of=as_of)),
            partition=partition,
        )
    assert producer.flush(10) == 0


def changes_consumer(consumer_factory: Any, settings: Settings) -> Consumer:
    consumer: Consumer = consumer_factory(SEGMENT_CHANGES.name(settings.namespace))
    return consumer


def read_changes(consumer: Consumer, count: int, timeout: float = 30.0) -> list[SegmentChanged]:
    """Exactly ``count`` changes (fails on fewer); then a short wait proves no extras."""
    got: list[SegmentChanged] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < count:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            got.append(decode(SEGMENT_CHANGES.adapter, message.value()))
    assert len(got) == count, f"expected {count} changes, got {[str(c) for c in got]}"
    return got


def no_more_changes(consumer: Consumer, wait: float = 3.0) -> list[SegmentChanged]:
    extra = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        message = consumer.poll(0.3)
        if message is not None and not message.error():
            extra.append(decode(SEGMENT_CHANGES.adapter, message.value()))
    return extra


def wait_for_profile(
    client: redis.Redis,
    settings: Settings,
    customer_id: str,
    field: str,
    value: str,
    timeout: float = 30.0,
) -> dict[str, str]:
    key = f"{settings.namespace}:profile:{customer_id}"
    deadline = time.monotonic() + timeout
    profile: dict[str, str] = {}
    while time.monotonic() < deadline:
        profile = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
        if profile.get(field) == value:
            return profile
        time.sleep(0.2)
    raise AssertionError(f"{key}.{field} never became {value!r}: {profile}")


def http_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())
