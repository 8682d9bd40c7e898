"""Given identity workers on one real Redis graph: a worker keeps the customers it wrote
parsed in memory (its partitions' customers come back to it), and serves them only while
Redis still holds exactly what it wrote."""

from __future__ import annotations

from typing import Any

import orjson

from runtime.settings import Settings
from services.identity.adapters.redis_graph import RedisGraph
from services.identity.adapters.snapshot import load_all, write_all
from services.identity.resolver import Resolver
from tests.integration.identity.conftest import Factory, Kafka, NoDeadLetters, raw, records

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


# A worker keeps the index entries it read and wrote, all from one graph version: while
# only its own commits moved the version, it reads from Redis only what it never saw, and
# commits without checking what it read; another writer makes it read and check again.

EMAIL_FIRST = raw("identified", "email-first", -10, email="kana@example.jp", device_id="device-3")
BRIDGE = raw("identified", "bridge", 15, member_id="M1", email="kana@example.jp")
BROWSE = raw("page_viewed", "browse", 20, anonymous_id="cookie-1")


def spy_scripts(graph: RedisGraph) -> list[tuple[str, list[Any]]]:
    """Every read and commit script call of ``graph`` from now on: (which, its arguments)."""
    calls: list[tuple[str, list[Any]]] = []

    def spy(name: str, script: Any) -> Any:
        async def call(keys: list[Any], args: list[Any]) -> Any:
            calls.append((name, list(args)))
            return await script(keys=keys, args=args)

        return call

    graph._read = spy("read", graph._read)
    graph._commit = spy("commit", graph._commit)
    return calls


def customer_of_event(kafka: Kafka, event_id: str) -> str:
    """The customer id the resolver gave ``event_id`` on customer.events (its last)."""
    found = [
        key.decode()
        for topic, key, value in kafka.sent
        if topic.endswith("customer.events")
        and orjson.loads(value)["event"]["event_id"] == event_id
    ]
    assert found, f"{event_id} not on customer.events"
    return found[-1]


async def test_when_a_worker_alone_writes_then_it_reads_only_what_it_never_saw_and_checks_nothing(
    resolver_factory: Factory,
) -> None:
    one = resolver_factory(acknowledging())
    await one.handle(records(LOGIN))
    await one._settled()
    calls = spy_scripts(one.graph)

    await one.handle(records(APP))  # M1 known (written by this worker), device-9 new
    await one._settled()

    reads = [args for name, args in calls if name == "read"]
    commits = [orjson.loads(args[0]) for name, args in calls if name == "commit"]
    assert len(reads) == 1, "one read: its index entries; the customer is kept"
    assert [key for _, key in orjson.loads(reads[0][1])] == ["device_id:device-9"]
    assert [key for _, key in orjson.loads(reads[0][2])] == ["member_id:M1"], (
        "what it kept goes along, read only if someone else wrote"
    )
    assert len(commits) == 1
    assert "expect" in commits[0]
    assert "check_index" not in commits[0], "nothing it read is checked: only the version"
    customer = await one.graph.customer_of("device_id:device-9")
    assert customer is not None
    assert set(customer.nodes) == {"anonymous_id:cookie-1", "member_id:M1", "device_id:device-9"}


async def test_when_another_worker_merged_a_kept_customer_then_its_events_go_to_the_survivor(
    resolver_factory: Factory,
) -> None:
    one, other = acknowledging(), acknowledging()
    first, second = resolver_factory(one), resolver_factory(other)
    await first.handle(records(LOGIN))  # cookie-1 and M1: kept by the first worker
    await first._settled()
    await second.handle(records(EMAIL_FIRST))
    await second.handle(records(BRIDGE))  # the email's customer (earlier) absorbs M1's
    await second._settled()
    survivor = await second.graph.customer_of("email:kana@example.jp")
    assert survivor is not None

    await first.handle(records(BROWSE))
    await first._settled()

    assert customer_of_event(one, "browse") == survivor.customer_id, (
        "the graph moved on: what the first worker kept was read again"
    )


async def test_when_another_worker_commits_between_read_and_commit_then_the_batch_is_done_again(
    resolver_factory: Factory,
) -> None:
    one, other = acknowledging(), acknowledging()
    first, second = resolver_factory(one), resolver_factory(other)
    await second.handle(records(EMAIL_FIRST))
    await second._settled()
    await first.handle(records(LOGIN))  # the last commit: the first worker's kept is current
    await first._settled()
    calls = spy_scripts(first.graph)
    commit = first.graph.commit
    meanwhile = [records(BRIDGE)]

    async def commit_after_the_other(view: Any) -> None:
        if meanwhile:  # the other worker merges M1's customer away in between
            await second.handle(meanwhile.pop())
            await second._settled()
        await commit(view)

    first.graph.commit = commit_after_the_other  # type: ignore[method-assign]
    device = raw("identified", "app-login-2", 20, anonymous_id="cookie-1", device_id="device-7")
    await first.handle(records(device))
    await first._settled()

    commits = [orjson.loads(args[0]) for name, args in calls if name == "commit"]
    assert "expect" in commits[0], "first by the version alone"
    assert "check_index" in commits[1], "then refused: the graph moved, so the checks go"
    assert len(commits) == 3, "which found cookie-1 changed: the batch was resolved again"
    survivor = await second.graph.customer_of("email:kana@example.jp")
    assert survivor is not None
    assert {"anonymous_id:cookie-1", "device_id:device-7", "member_id:M1"} <= set(survivor.nodes)
    assert customer_of_event(one, "app-login-2") == survivor.customer_id


async def test_when_the_graph_is_rebuilt_under_a_worker_then_it_reads_the_rebuilt_one(
    resolver_factory: Factory, settings: Settings
) -> None:
    kafka = acknowledging()
    live = resolver_factory(kafka)
    await live.handle(records(LOGIN))  # cookie-1 and M1: one customer, kept
    await live._settled()
    before = await live.graph.customer_of("member_id:M1")
    # elsewhere, a history where M1 joined an earlier device and never met the cookie
    elsewhere = RedisGraph(live.graph.client, f"{settings.namespace}:rebuilt", live.graph.rules)
    apart = Resolver(elsewhere, acknowledging(), NoDeadLetters(), namespace="ns", max_bytes=10**6)
    await apart.handle(records(raw("app_opened", "device", -5, device_id="device-9"), APP))
    await apart._settled()
    rebuilt = await load_all(live.graph.client, f"{settings.namespace}:rebuilt")
    member = await elsewhere.customer_of("member_id:M1")
    assert member is not None
    assert before is not None
    assert member.customer_id != before.customer_id

    await write_all(live.graph.client, settings.namespace, list(rebuilt.values()), 4096)
    await live.handle(records(raw("page_viewed", "member-visit", 30, member_id="M1")))
    await live._settled()

    assert customer_of_event(kafka, "member-visit") == member.customer_id
