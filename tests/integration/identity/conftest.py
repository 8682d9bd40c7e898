"""Identity integration helpers: raw events with chosen identifiers, reading outputs, and a
resolver on the real Redis whose Kafka acknowledges when the test says so."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, Producer

from runtime.consumer import Record
from runtime.producer import DeliveryError
from runtime.redis import create_redis
from runtime.settings import Settings
from schemas.codec import decode, encode
from schemas.customer import HeaderList, routing_of
from schemas.events import EventEnvelope
from schemas.examples import example
from schemas.identifiers import Identifiers
from schemas.topics import CUSTOMER_EVENTS, IDENTITY_CHANGES, raw_topic_for
from services.identity.adapters.redis_graph import RedisGraph
from services.identity.resolver import Resolver
from services.identity.settings import IdentitySettings
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


class Kafka:
    """A sink that holds its acknowledgements until the test releases them: all of them
    (``acknowledge()``), or the first ``n`` flushes (``acknowledge(n)``)."""

    def __init__(self, *, refuses: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.refuses = refuses
        self.flushes = 0
        self.allowed = 0.0  # how many flushes (the first ones) may be acknowledged
        self._released = asyncio.Event()

    def acknowledge(self, n: float = math.inf) -> None:
        self.allowed = n
        self._released.set()

    def produce(
        self, topic: str, key: bytes | None, value: bytes, *, headers: HeaderList | None = None
    ) -> None:
        self.sent.append((topic, key or b"", value))

    async def flush(self) -> None:
        n, self.flushes = self.flushes, self.flushes + 1
        while n >= self.allowed:
            self._released.clear()
            await self._released.wait()
        if self.refuses:
            raise DeliveryError("1 unacknowledged, errors: ['broker down']")

    def changes(self) -> list[bytes]:
        """What went to identity.links and identity.changes, in order."""
        return [v for topic, _, v in self.sent if not topic.endswith("customer.events")]


class NoDeadLetters:
    async def send(self, letter: object) -> None:
        raise AssertionError(f"dead-lettered: {letter}")


Factory = Callable[["Kafka"], Resolver]


@pytest.fixture
async def resolver_factory(settings: Settings, redis_client: redis.Redis) -> AsyncIterator[Factory]:
    clients = []

    def make(kafka: Kafka) -> Resolver:
        client = create_redis(settings, large_values=True)  # as the worker's graph
        clients.append(client)
        graph = RedisGraph(client, settings.namespace, IdentitySettings().rules())
        return Resolver(graph, kafka, NoDeadLetters(), namespace="ns", max_bytes=1_000_000)

    yield make
    for client in clients:
        await client.aclose()


def records(*events: EventEnvelope) -> list[Record]:
    return [
        Record(raw_topic_for(e.type).name("ns"), 0, n, b"k", encode(e))  # type: ignore[attr-defined]
        for n, e in enumerate(events)
    ]
