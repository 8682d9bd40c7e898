"""Given a messy, shuffled population: a second resolver replaying the raw topics into a
fresh graph, and a rebuild from identity.links alone, both equal the live graph; and a
worker killed mid-batch loses nothing and duplicates no customer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import redis

from runtime.redis import create_redis
from runtime.settings import Settings
from services.identity.adapters.snapshot import load_all
from services.identity.domain.memory import InMemoryGraph
from services.identity.resolver import observe_event
from services.identity.settings import IdentitySettings
from tests.integration.conftest import ROOT, Worker
from tests.integration.identity.population import population

IDENTITY = "services.identity"


def graph(settings: Settings, namespace: str) -> dict:
    async def load() -> dict:
        client = create_redis(settings)
        try:
            return await load_all(client, namespace)
        finally:
            await client.aclose()

    return asyncio.run(load())


def wait_for_identifiers(
    client: redis.Redis, namespace: str, expected: int, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = int(client.hget(f"{namespace}:id:stats", "identifiers") or 0)
        if count >= expected:
            return
        time.sleep(0.3)
    raise AssertionError(f"{namespace}: {count} identifiers, expected {expected}")


def reference(events: list) -> InMemoryGraph:
    """The graph a single, perfectly ordered resolver would build."""
    rules = IdentitySettings().rules()
    expected = InMemoryGraph(rules)
    for event in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        obs = observe_event(event, rules)
        if obs.idents:
            expected.apply(obs)
    return expected


def test_when_raw_topics_are_replayed_into_a_fresh_graph_then_it_equals_the_live_one(
    settings: Settings,
    topics,
    send,
    customer_events,
    redis_client: redis.Redis,
    worker_factory: Callable[[str], Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = population(people=40, events=600)
    expected = reference(events)
    worker_factory(IDENTITY)
    send(*events)
    customer_events(len(events))

    monkeypatch.setenv("KIZUNA_IDENTITY_GRAPH_NAMESPACE", f"{settings.namespace}-replay")
    monkeypatch.setenv("KIZUNA_IDENTITY_CONSUMER_GROUP", "identity-replay")
    worker_factory(IDENTITY)
    wait_for_identifiers(redis_client, f"{settings.namespace}-replay", len(expected.index))
    customer_events(len(events))  # the replaying resolver's own output

    live, replayed = (
        graph(settings, settings.namespace),
        graph(settings, f"{settings.namespace}-replay"),
    )
    assert set(live) == set(replayed) == set(expected.customers)
    assert all(live[cid].same_graph(replayed[cid]) for cid in live)
    assert all(live[cid].same_graph(expected.customers[cid]) for cid in live)


def test_when_the_graph_is_rebuilt_from_the_links_topic_then_it_equals_the_live_one(
    settings: Settings,
    topics,
    send,
    customer_events,
    worker_factory: Callable[[str], Worker],
) -> None:
    events = population(people=30, events=400, seed=3)
    worker_factory(IDENTITY)
    send(*events)
    customer_events(len(events))
    env = dict(
        os.environ,
        KIZUNA_KAFKA=settings.kafka,
        KIZUNA_REDIS=settings.redis,
        KIZUNA_NAMESPACE=settings.namespace,
    )

    rebuild = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.identity.cli",
            "rebuild",
            "--graph-prefix",
            f"{settings.namespace}-rebuilt",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    compare = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.identity.cli",
            "compare",
            settings.namespace,
            f"{settings.namespace}-rebuilt",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert rebuild.returncode == 0, rebuild.stderr
    assert compare.returncode == 0, compare.stdout + compare.stderr
    assert "differing: 0" in compare.stdout
    assert len(graph(settings, f"{settings.namespace}-rebuilt")) == len(
        graph(settings, settings.namespace)
    )


def test_when_the_worker_is_killed_mid_batch_then_no_event_is_lost_and_no_customer_doubled(
    settings: Settings,
    topics,
    send,
    customer_events,
    worker_factory: Callable[[str], Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = population(people=60, events=3000, seed=8)
    monkeypatch.setenv("KIZUNA_IDENTITY_BATCH_SIZE", "100")
    send(*events)
    first = worker_factory(IDENTITY)
    seen = customer_events(300)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)

    worker_factory(IDENTITY)
    deadline = time.monotonic() + 120
    while len(seen) < len(events) and time.monotonic() < deadline:
        seen |= customer_events(1, timeout=60)

    assert set(seen) == {e.event_id for e in events}
    live = graph(settings, settings.namespace)
    expected = reference(events)
    assert set(live) == set(expected.customers)
    assert all(live[cid].same_graph(expected.customers[cid]) for cid in live)
