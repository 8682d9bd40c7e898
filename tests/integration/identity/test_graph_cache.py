"""Given two identity workers on one real Redis graph: a worker keeps the customers it
wrote parsed in memory (its partitions' customers come back to it), and serves them only
while Redis still holds exactly what it wrote."""

from __future__ import annotations

from runtime.settings import Settings
from services.identity.adapters.redis_graph import RedisGraph
from tests.integration.identity.conftest import Factory, Kafka, raw, records

LOGIN = raw("identified", "login", 0, anonymous_id="cookie-1", member_id="M1")
APP = raw("identified", "app-login", 5, member_id="M1", device_id="device-9")


def acknowledging() -> Kafka:
    kafka = Kafka()
    kafka.acknowledge()
    return kafka


async def test_when_a_worker_wrote_a_customer_then_it_reads_back_what_redis_holds(
    resolver_factory: Factory, settings: Settings
) -> None:
    one = resolver_factory(acknowledging())
    await one.handle(records(LOGIN))
    await one._settled()

    reader = RedisGraph(one.graph.client, settings.namespace, one.graph.rules)  # keeps nothing
    fresh = await reader.customer_of("member_id:M1")
    assert fresh is not None
    kept = one.graph._parsed.get(fresh.customer_id)
    assert kept is not None, "the worker kept the customer it wrote, before reading it"

    written = await one.graph.customer_of("member_id:M1")

    assert written is kept[1], "served from memory"
    assert written == fresh, "what the worker kept is what a reader parses from Redis"
    assert set(written.nodes) == {"anonymous_id:cookie-1", "member_id:M1"}


async def test_when_another_worker_changed_the_customer_then_the_kept_copy_is_not_used(
    resolver_factory: Factory,
) -> None:
    one, other = resolver_factory(acknowledging()), resolver_factory(acknowledging())
    await one.handle(records(LOGIN))
    await one._settled()
    await other.handle(records(APP))
    await other._settled()

    seen = await one.graph.customer_of("member_id:M1")

    assert seen is not None
    assert "device_id:device-9" in seen.nodes
    assert seen.version == 2
