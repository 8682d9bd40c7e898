"""Hostile bytes on the topics workers consume: identity on the raw topics, segmenter and
journey on customer.events. Each bad message lands on the dead-letter topic once per
consuming service, with the reason the codec gives it; the worker lives on, and a valid
event sent after them is still processed."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from runtime.settings import Settings
from schemas.codec import DecodeError, decode, encode
from schemas.events import RAW_EVENT_ADAPTER
from schemas.examples import example
from schemas.topics import CUSTOMER_EVENTS, DEADLETTER, RAW_ORDER, RAW_WEB
from tests.hostile import SHIFT_JIS_BYTES, hostile_text, hostile_value, mutated
from tests.integration.conftest import Worker, consume
from tests.integration.gateway.conftest import drain
from tests.integration.segmenter.helpers import changes_consumer, read_changes, send_events
from tests.unit.segmenter.builders import order

REASONS = {"undecodable", "invalid", "unknown_type"}
ORDER = orjson.loads(encode(example("order_completed")))
HAND_MADE = [
    b"{broken",
    SHIFT_JIS_BYTES,
    orjson.dumps(ORDER).replace(b"ord-1", b"ord-\xff\xfe"),
    b"[" * 300 + b"]" * 300,
    b'["order_completed"]',
    orjson.dumps(ORDER | {"type": "order_teleported"}),
    orjson.dumps(ORDER | {"type": {"order_completed": True}}),  # had stopped the journey
    orjson.dumps(ORDER | {"occurred_at": "9999-12-31T23:59:59Z"}),
    orjson.dumps(ORDER | {"occurred_at": "0001-01-01T00:00:00Z"}),
    orjson.dumps(ORDER | {"payload": ORDER["payload"] | {"money": {"subtotal": -1, "total": -1}}}),
]


def reason(adapter: Any, raw: bytes) -> str | None:
    try:
        decode(adapter, raw)
    except DecodeError as err:
        return err.reason
    return None


def hostile_bytes(adapter: Any, wrap: Callable[[Any], Any], examples: int) -> list[bytes]:
    """Hand-made hostile messages plus generated ones, every one undecodable or invalid."""
    found = [wrap_bytes(raw, wrap) for raw in HAND_MADE]

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        st.one_of(
            st.binary(max_size=64),
            mutated(ORDER),
            mutated(ORDER, hostile_text),
            hostile_value,
        )
    )
    def collect(value: Any) -> None:
        try:
            raw = value if isinstance(value, bytes) else orjson.dumps(wrap(value))
        except orjson.JSONEncodeError:
            return
        if raw and reason(adapter, raw) is not None:
            found.append(raw)

    collect()
    return found


def wrap_bytes(raw: bytes, wrap: Callable[[Any], Any]) -> bytes:
    """A hand-made raw event inside a customer event, when the topic carries those."""
    try:
        return orjson.dumps(wrap(orjson.loads(raw)))
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return raw


def as_is(value: Any) -> Any:
    return value


def as_customer_event(event: Any) -> Any:
    return {
        "customer_id": "c-hostile",
        "identity_version": 1,
        "resolved_at": "2026-11-20T10:30:02Z",
        "schema_version": 1,
        "event": event,
    }


def letters_of(consumer: Consumer, count: int) -> list[Any]:
    """Every dead letter that arrives (at least ``count`` expected; extras are caught too)."""
    return [decode(DEADLETTER.adapter, m.value()) for m in drain(consumer, count, timeout=60)]


def test_when_raw_topics_carry_hostile_bytes_then_identity_dead_letters_each_and_goes_on(
    settings: Settings,
    topics: list[str],
    producer: Producer,
    consumer_factory: Callable[..., Consumer],
    worker_factory: Callable[[str], Worker],
) -> None:
    worker = worker_factory("services.identity")
    bad = hostile_bytes(RAW_EVENT_ADAPTER, as_is, examples=30)
    dead = consumer_factory(DEADLETTER.name(settings.namespace))
    resolved = consumer_factory(CUSTOMER_EVENTS.name(settings.namespace))
    for n, raw in enumerate(bad):
        topic = RAW_WEB if n % 2 else RAW_ORDER
        producer.produce(topic.name(settings.namespace), key=b"k", value=raw)
    good = example("order_completed").model_copy(update={"event_id": "good-after"})
    producer.produce(RAW_ORDER.name(settings.namespace), key=b"k", value=encode(good))
    assert producer.flush(10) == 0

    letters = letters_of(dead, len(bad))
    after = [decode(CUSTOMER_EVENTS.adapter, m.value()) for m in consume(resolved, 1, 60)]

    assert [e.event.event_id for e in after] == ["good-after"]
    assert Counter(letter.original for letter in letters) == Counter(bad)
    assert Counter(letter.reason for letter in letters) == Counter(
        reason(RAW_EVENT_ADAPTER, raw) for raw in bad
    )
    assert all(letter.service == "identity" and letter.error for letter in letters)
    assert worker.process.poll() is None


def test_when_customer_events_carry_hostile_bytes_then_segmenter_and_journey_dead_letter_each(
    settings: Settings,
    topics: list[str],
    producer: Producer,
    consumer_factory: Callable[..., Consumer],
    worker_factory: Callable[[str], Worker],
) -> None:
    workers = [worker_factory("services.segmenter"), worker_factory("services.journey")]
    bad = hostile_bytes(CUSTOMER_EVENTS.adapter, as_customer_event, examples=20)
    dead = consumer_factory(DEADLETTER.name(settings.namespace))
    changes = changes_consumer(consumer_factory, settings)
    for raw in bad:
        producer.produce(CUSTOMER_EVENTS.name(settings.namespace), key=b"c-hostile", value=raw)
    assert producer.flush(10) == 0
    now = datetime.now(UTC).replace(microsecond=0)
    send_events(producer, settings, "c-after", order("o-after", 4_800, now - timedelta(days=1)))

    unreadable = [raw for raw in bad if reason(CUSTOMER_EVENTS.adapter, raw) == "undecodable"]
    letters = letters_of(dead, len(bad) + len(unreadable))
    moved = read_changes(changes, 2, timeout=60)

    assert {c.customer_id for c in moved} == {"c-after"}
    by_segmenter = Counter(letter.original for letter in letters if letter.service == "segmenter")
    by_journey = Counter(letter.original for letter in letters if letter.service == "journey")
    assert by_segmenter == Counter(bad)
    # journey peeks at the type first and skips types no journey uses without decoding
    # them, so it dead-letters only the unreadable ones and those of types it uses
    assert by_journey <= Counter(bad)
    assert Counter(unreadable) <= by_journey
    assert all(letter.reason in REASONS and letter.error for letter in letters)
    assert journey_applied(workers[1]) >= 1
    assert all(worker.process.poll() is None for worker in workers)


def journey_applied(worker: Worker, timeout: float = 30.0) -> float:
    """Customer events the journey worker handled (applied or skipped), from /metrics."""
    deadline = time.monotonic() + timeout
    total = 0.0
    while time.monotonic() < deadline:
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in worker.metrics().splitlines()
            if line.startswith("kizuna_journey_events_total{")
        )
        if total:
            return total
        time.sleep(0.3)
    return total
