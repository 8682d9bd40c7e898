"""Driving a real journey worker: customer events in (as identity writes them), the
journey clock moved by event time, notification requests read back."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer

from runtime.settings import Settings
from schemas.codec import decode, encode
from schemas.customer import CustomerEvent
from schemas.events import RawEvent
from schemas.notifications import SendNotification
from schemas.topics import CUSTOMER_EVENTS, NOTIFICATIONS_REQUESTED
from services.journey.adapters.partitioning import partition_function
from services.journey.domain.policy import in_holdout
from services.journey.settings import JourneySettings
from tests.unit.journey.builders import jst, page

JOURNEY = "services.journey"
# a Monday 10:00 in Tokyo, years ahead: the worker's clock follows the events there
BASE = jst(2030, 6, 3, 10, 0)
SIMULATED_CLOCK = {"KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS": str(20 * 365 * 86_400)}


def treated(prefix: str, journey: str, share: float, count: int = 1) -> list[str]:
    """Customer ids that are in neither the global nor the journey's holdout."""
    policy = JourneySettings().policy()
    found = (f"{prefix}-{n}" for n in range(10_000))
    return [c for c in found if not in_holdout(policy, c, journey, share)][:count]


def send_events(
    producer: Producer, settings: Settings, customer_id: str, *events: RawEvent
) -> None:
    """As identity does: keyed by customer id, murmur2 partition."""
    partition_of = partition_function(settings.partitions or CUSTOMER_EVENTS.partitions)
    for event in events:
        wrapped = CustomerEvent(
            customer_id=customer_id, identity_version=1, resolved_at=event.received_at, event=event
        )
        producer.produce(
            CUSTOMER_EVENTS.name(settings.namespace),
            key=customer_id.encode(),
            value=encode(wrapped),
            partition=partition_of(customer_id),
        )
    assert producer.flush(10) == 0


def advance_clock(producer: Producer, settings: Settings, at: float) -> None:
    """Somebody else browses at ``at``: the shop's clock (event time) moves there."""
    send_events(producer, settings, "c-heartbeat", page(at))


def requests(
    consumer: Consumer, expected: int, timeout: float = 30.0, quiet: float = 2.0
) -> list[SendNotification]:
    """Read notification requests until ``expected`` arrived, then ``quiet`` seconds more
    to catch any extra one."""
    got: list[SendNotification] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < expected:
        message = consumer.poll(0.3)
        if message is not None and not message.error():
            got.append(decode(NOTIFICATIONS_REQUESTED.adapter, message.value() or b""))
    settle = time.monotonic() + quiet
    while time.monotonic() < settle:
        message = consumer.poll(0.3)
        if message is not None and not message.error():
            got.append(decode(NOTIFICATIONS_REQUESTED.adapter, message.value() or b""))
    return got


def at_offsets(requests_: list[SendNotification], base: float) -> list[float]:
    return [r.requested_at.timestamp() - base for r in requests_]
