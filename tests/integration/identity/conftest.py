"""Identity integration helpers: raw events with chosen identifiers, and reading outputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from runtime.settings import Settings
from schemas.codec import decode, encode
from schemas.customer import routing_of
from schemas.events import EventEnvelope
from schemas.examples import example
from schemas.identifiers import Identifiers
from schemas.topics import CUSTOMER_EVENTS, IDENTITY_CHANGES, raw_topic_for
from tests.integration.conftest import consume

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def raw(kind: str, event_id: str, minute: float, **ids: str) -> EventEnvelope:
    """A realistic ``kind`` event with exactly these identifiers, at T0 + minute."""
    at = T0 + timedelta(minutes=minute)
    return example(kind).model_copy(
        update={
            "event_id": event_id,
            "occurred_at": at,
            "received_at": at,
            "identifiers": Identifiers(**ids),
        }
    )


@pytest.fixture
def send(settings: Settings, producer: Producer) -> Callable[..., None]:
    def produce(*events: EventEnvelope) -> None:
        for event in events:
            topic = raw_topic_for(event.type).name(settings.namespace)  # type: ignore[attr-defined]
            producer.produce(topic, key=event.identifiers.routing_key(), value=encode(event))
        assert producer.flush(10) == 0

    return produce


@pytest.fixture
def customer_events(
    settings: Settings, consumer_factory: Callable[..., Consumer]
) -> Callable[[int], dict[str, str]]:
    consumer = consumer_factory(CUSTOMER_EVENTS.name(settings.namespace))

    def read(count: int, timeout: float = 60) -> dict[str, str]:
        """event id -> customer id, for ``count`` more customer events."""
        out = {}
        for message in consume(consumer, count, timeout):
            resolved = decode(CUSTOMER_EVENTS.adapter, message.value())
            assert message.key() == resolved.customer_id.encode()
            # the routing headers say what the body says (stages may read them alone)
            routing = routing_of(message.headers())
            assert routing is not None
            event = resolved.event
            assert (routing.type, routing.event_id) == (event.type, event.event_id)
            assert routing.occurred_at == event.occurred_at.timestamp()
            out[resolved.event.event_id] = resolved.customer_id
        return out

    return read


@pytest.fixture
def identity_changes(
    settings: Settings, consumer_factory: Callable[..., Consumer]
) -> Callable[..., list[Any]]:
    consumer = consumer_factory(IDENTITY_CHANGES.name(settings.namespace))

    def read(count: int, timeout: float = 60) -> list[Any]:
        return [
            decode(IDENTITY_CHANGES.adapter, m.value()) for m in consume(consumer, count, timeout)
        ]

    return read
