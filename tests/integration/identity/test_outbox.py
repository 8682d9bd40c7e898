"""Given the identity resolver on a real Redis: a batch's links and changes wait in an
outbox until Kafka acknowledged them, which happens while the next batch is resolved.
A worker that stops before the acknowledgement leaves them there, and whoever reads the
batch again sends them; a refusal by Kafka stops the worker."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis

from runtime.settings import Settings
from services.identity import resolver as resolver_module
from services.identity.adapters.redis_graph import View
from tests.integration.identity.conftest import Factory, Kafka, raw, records


def outbox_keys(redis_client: redis.Redis, settings: Settings) -> list[bytes]:
    return sorted(redis_client.scan_iter(match=f"{settings.namespace}:id:ob:*"))


LOGIN = raw("identified", "login", 0, anonymous_id="cookie-1", member_id="M1")
BROWSE = raw("page_viewed", "browse", 1, anonymous_id="cookie-2")


async def test_when_a_batch_is_resolved_then_its_outbox_stays_until_kafka_acknowledged_it(
    resolver_factory: Factory, redis_client: redis.Redis, settings: Settings
) -> None:
    kafka = Kafka()
    resolver = resolver_factory(kafka)

    await resolver.handle(records(LOGIN))
    assert kafka.changes(), "the login links two identifiers: links and changes are sent"
    assert len(outbox_keys(redis_client, settings)) == 1

    later = asyncio.ensure_future(resolver.handle(records(BROWSE)))
    await asyncio.sleep(0.3)
    assert not later.done(), "a batch's outputs wait for the previous batch's acknowledgement"

    kafka.acknowledge()
    await asyncio.wait_for(later, 10)
    await asyncio.sleep(0.1)  # the second batch's own acknowledgement, then its outbox goes
    assert outbox_keys(redis_client, settings) == []


async def test_when_the_worker_stops_before_the_acknowledgement_then_the_next_one_sends_it_all(
    resolver_factory: Factory, redis_client: redis.Redis, settings: Settings
) -> None:
    first = Kafka()  # never acknowledges: the worker is gone before Kafka answered
    await resolver_factory(first).handle(records(LOGIN))

    again = Kafka()
    again.acknowledge()
    await resolver_factory(again).handle(records(LOGIN))  # the batch is read again

    assert again.changes() == first.changes()  # the same links and changes, byte for byte
    sent = [orjson.loads(v) for v in again.changes()]
    assert {c.get("type") for c in sent} >= {"linked", "identifier_added"}
    await asyncio.sleep(0.1)
    assert outbox_keys(redis_client, settings) == []


async def test_when_an_event_comes_again_while_its_batch_settles_then_nothing_is_sent_twice(
    resolver_factory: Factory,
) -> None:
    kafka = Kafka()
    resolver = resolver_factory(kafka)
    await resolver.handle(records(LOGIN))
    once = kafka.changes()

    duplicate = asyncio.ensure_future(resolver.handle(records(LOGIN)))  # a client's retry
    kafka.acknowledge()
    await asyncio.wait_for(duplicate, 10)

    assert kafka.changes() == once
    assert sum(1 for t, _, _ in kafka.sent if t.endswith("customer.events")) == 2


async def test_when_an_event_id_comes_again_with_new_identifiers_then_its_outbox_is_kept(
    resolver_factory: Factory, redis_client: redis.Redis, settings: Settings
) -> None:
    """A client that reuses an event id for another fact: the second outbox is written
    only after the first batch's was cleared, so it is there until its own ack."""
    kafka = Kafka()
    resolver = resolver_factory(kafka)
    await resolver.handle(records(LOGIN))
    reused = raw("identified", "login", 2, anonymous_id="cookie-3", member_id="M3")

    second = asyncio.ensure_future(resolver.handle(records(reused)))
    await asyncio.sleep(0.2)
    kafka.acknowledge(1)  # the first batch's outputs only
    await asyncio.wait_for(second, 10)
    await asyncio.sleep(0.2)

    assert len(outbox_keys(redis_client, settings)) == 1, "the second batch's, not yet acked"
    kafka.acknowledge()
    await asyncio.sleep(0.2)
    assert outbox_keys(redis_client, settings) == []


async def test_when_kafka_refuses_a_batchs_outputs_then_the_worker_stops(
    resolver_factory: Factory,
    redis_client: redis.Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[str] = []
    monkeypatch.setattr(resolver_module, "fail_stop", lambda service, why: stopped.append(why))
    kafka = Kafka(refuses=True)
    kafka.acknowledge()

    await resolver_factory(kafka).handle(records(LOGIN))
    await asyncio.sleep(0.1)

    assert len(stopped) == 1
    assert "not acknowledged" in stopped[0]
    assert len(outbox_keys(redis_client, settings)) == 1  # kept for the batch read again


async def test_when_event_ids_hold_any_characters_then_their_outboxes_are_found_and_cleared(
    resolver_factory: Factory, redis_client: redis.Redis, settings: Settings
) -> None:
    """The read and clear scripts put outbox keys together themselves: each must be the
    key the commit wrote, whatever the id's characters (here written directly)."""
    graph = resolver_factory(Kafka()).graph
    ids = ["注文-1", 'quote"d', "back\\slash", "emoji-🛒", "plain"]
    for n, event_id in enumerate(ids[:-1]):
        redis_client.set(graph.keys.outbox(event_id), f"outbox {n}".encode())

    pending = await graph.prefetch(View(), [], ids)

    assert pending == {e: f"outbox {n}".encode() for n, e in enumerate(ids[:-1])}
    await graph.clear_outboxes(ids)
    assert outbox_keys(redis_client, settings) == []
