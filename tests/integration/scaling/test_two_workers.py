"""Scale-out on real Kafka + Redis: with 4 partitions, two worker processes of identity,
segmenter and journey split the partitions between them, both do work, and the shop
sees exactly what one worker per service gives — the same customers, the same segments,
the same notification requests.

The same event sets (tests/integration/scaling/stories.py) go into two deployments in
fresh namespaces, one worker per service, then two; the outcomes are compared.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Producer

from runtime.redis import create_redis
from runtime.settings import Settings
from schemas.codec import encode
from schemas.identity import CustomersMerged
from schemas.topics import (
    CUSTOMER_EVENTS,
    IDENTITY_CHANGES,
    NOTIFICATIONS_REQUESTED,
    SEGMENT_CHANGES,
    raw_topic_for,
)
from services.identity.adapters.snapshot import load_all
from services.identity.resolver import observe_event
from services.identity.settings import IdentitySettings
from services.journey.adapters.partitioning import partition_function
from services.segmenter.adapters.profiles import profile_key
from simulator.observe import Scrape, parse
from tests.integration.conftest import wait_for_metric, wait_until
from tests.integration.identity.test_replay import reference
from tests.integration.journey import helpers as journey_feed
from tests.integration.scaling.deployment import Deployment, Service, flush, read_until_quiet
from tests.integration.scaling.stories import (
    BASE,
    MERGE_AFTER_STEP,
    PARTITIONS,
    JourneyStory,
    SegmenterStory,
    identity_events,
    journey_story,
    segmenter_story,
)
from tests.integration.segmenter import helpers as segmenter_feed
from tests.unit.identity.helpers import reachable, successors

SPEED_UP = {
    "KIZUNA_SESSION_TIMEOUT_SECONDS": "6",  # a joining worker's rebalance settles fast
    "KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS": str(20 * 365 * 86_400),  # the simulated clock
    "KIZUNA_JOURNEY_TICK_INTERVAL_SECONDS": "0.1",
    "KIZUNA_SEGMENTER_SWEEP_INTERVAL_SECONDS": "0.5",
    "KIZUNA_SEGMENTER_VIEW_FLUSH_SECONDS": "0.1",
}
WALL_CLOCK_FIELDS = {"updated_at"}


@dataclass(frozen=True)
class Outcome:
    """What one deployment made of the stories."""

    customer_of_event: dict[str, str]  # event id -> final customer of its identifier
    unreached: list[str]  # events whose customer, through merges/splits, misses that one
    customer_events: int  # messages on customer.events (one per event: exactly once)
    customers: dict[str, frozenset[str]]  # final graph: customer -> identifiers
    merges: int  # merges published on identity.changes
    profiles: dict[str, dict[str, str]]  # segmenter's Redis profile view, per customer
    moves: dict[str, list[tuple[str, str | None, str, str]]]  # segment.changes per customer
    requested: dict[str, tuple[str, str | None, str | None]]  # notification id -> who, what
    shares: dict[str, list[set[int]]]  # service -> partitions each worker held
    consumed: dict[str, list[float]]  # service -> messages each worker consumed


@pytest.fixture
def deploy(
    settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, int], Deployment]]:
    for name, value in SPEED_UP.items():
        monkeypatch.setenv(name, value)
    made: list[Deployment] = []

    def make(label: str, workers: int) -> Deployment:
        made.append(Deployment(label, settings_factory(), workers, tmp_path))
        return made[-1]

    yield make
    for deployment in made:
        deployment.close()


def test_when_two_workers_share_each_service_then_the_shop_sees_what_one_worker_gives(
    deploy: Callable[[str, int], Deployment], producer: Producer
) -> None:
    raw, segments, journeys = identity_events(), segmenter_story(), journey_story()

    # one after the other: nine faust workers at once on two shared cores starved the
    # group rebalances in CI
    first = deploy("one", 1)
    one = run(first, producer, raw, segments, journeys)
    for service in first.services.values():
        for worker in service.workers:
            worker.stop()  # its topics and keys go at teardown
    two = run(deploy("two", 2), producer, raw, segments, journeys)

    for service, shares in two.shares.items():  # each worker got its own partitions
        assert len(shares) == 2, f"{service}: {shares}"
        assert all(shares), f"{service}: {shares}"
        assert all(n > 0 for n in two.consumed[service]), f"{service}: {two.consumed[service]}"
    # identity: every event attributed once, to the same customer; the same merges
    assert one.customer_events == two.customer_events == len(raw)
    # an event is attributed to the customer its identifiers made on arrival, and arrival
    # order differs between the runs; followed through the published merges and splits,
    # each event's customer reaches the one that finally holds its identifier
    assert one.unreached == two.unreached == []
    assert two.customer_of_event == one.customer_of_event
    assert two.customers == one.customers == expected_customers(raw)
    assert one.merges > 0
    assert two.merges > 0
    # segmenter: every customer in the same segments, with the same figures
    assert two.moves == one.moves
    assert two.profiles == one.profiles
    assert all(one.profiles.values())
    assert sum(len(m) for m in one.moves.values()) > 100
    assert {p.get("absorbed_into") for p in one.profiles.values()} > {None}
    # journey: exactly the same notification requests
    assert two.requested == one.requested
    assert len(one.requested) > 50
    steps = {(journey, step) for _, journey, step in one.requested.values()}
    assert {
        ("cart_abandonment", "reminder_1"),
        ("cart_abandonment", "reminder_3"),
        ("post_purchase", "thanks"),
        ("geo_push", "welcome"),
    } <= steps


def run(
    deployment: Deployment,
    producer: Producer,
    raw: list[Any],
    segments: SegmenterStory,
    journeys: JourneyStory,
) -> Outcome:
    started = time.monotonic()
    shares = deployment.start()
    print(f"{deployment.label}: workers ready in {time.monotonic() - started:.1f}s: {shares}")
    identity = run_identity(deployment["identity"], deployment, producer, raw)
    segmenter = run_segmenter(deployment["segmenter"], deployment, producer, segments)
    requested = run_journey(deployment["journey"], deployment, producer, journeys)
    consumed = {name: s.consumed() for name, s in deployment.services.items()}
    print(f"{deployment.label}: done in {time.monotonic() - started:.1f}s, consumed {consumed}")
    return Outcome(
        **identity,
        **segmenter,
        requested=requested,
        shares=shares,
        consumed=consumed,
    )


# -- identity: raw events in, customer.events + identity.changes + the graph out ------


def run_identity(
    service: Service, deployment: Deployment, producer: Producer, events: list[Any]
) -> dict[str, Any]:
    attributed = deployment.consumer("identity", CUSTOMER_EVENTS)
    changes = deployment.consumer("identity", IDENTITY_CHANGES)
    for event in events:
        topic = service.topic(raw_topic_for(event.type))
        producer.produce(topic, key=event.identifiers.routing_key(), value=encode(event))
    flush(producer)
    resolved = read_until_quiet(attributed, CUSTOMER_EVENTS, at_least=len(events), timeout=90)
    published = read_until_quiet(changes, IDENTITY_CHANGES, quiet=1.0)
    graph = load_graph(service.settings)
    owner = {key: c.customer_id for c in graph.values() for key in c.nodes}
    rules = IdentitySettings().rules()
    primary = {e.event_id: observe_event(e, rules).primary.key for e in events}
    moved = successors(published)
    kinds = sorted(c.type for c in published)
    print(f"identity: changes {dict((k, kinds.count(k)) for k in set(kinds))}")
    return {
        "customer_of_event": {r.event.event_id: owner[primary[r.event.event_id]] for r in resolved},
        "unreached": sorted(
            r.event.event_id
            for r in resolved
            if owner[primary[r.event.event_id]] not in reachable(r.customer_id, moved)
        ),
        "customer_events": len(resolved),
        "customers": {cid: frozenset(c.nodes) for cid, c in graph.items()},
        "merges": kinds.count("merged"),
    }


def load_graph(settings: Settings) -> dict[str, Any]:
    async def load() -> dict[str, Any]:
        client = create_redis(settings)
        try:
            return await load_all(client, settings.namespace)
        finally:
            await client.aclose()

    return asyncio.run(load())


def expected_customers(events: list[Any]) -> dict[str, frozenset[str]]:
    """The graph one perfectly ordered resolver builds, in memory."""
    return {cid: frozenset(c.nodes) for cid, c in reference(events).customers.items()}


# -- segmenter: customer events, merges, time in; segment changes + profiles out ------


def run_segmenter(
    service: Service, deployment: Deployment, producer: Producer, story: SegmenterStory
) -> dict[str, Any]:
    settings = service.settings
    changes = deployment.consumer("segmenter", SEGMENT_CHANGES)
    pin_clock(producer, service, story.now)  # "today" must not follow the wall clock past
    # midnight in Tokyo between the runs: recency scores would differ by a day
    for customer, events in story.events.items():
        segmenter_feed.send_events(producer, settings, customer, *events)
    got = read_until_quiet(changes, SEGMENT_CHANGES, at_least=2 * len(story.events), timeout=90)
    for survivor, absorbed in story.merges:
        segmenter_feed.send_merge(producer, settings, survivor, absorbed, story.now)
    got += read_until_quiet(changes, SEGMENT_CHANGES)
    for absorbed, events in story.after_merge.items():
        segmenter_feed.send_events(producer, settings, absorbed, *events)
    got += read_until_quiet(changes, SEGMENT_CHANGES)
    segmenter_feed.set_clock(producer, settings, story.later)
    got += read_until_quiet(changes, SEGMENT_CHANGES, at_least=1, quiet=4.0)
    moves: dict[str, list[tuple[str, str | None, str, str]]] = {}
    for c in got:
        moves.setdefault(c.customer_id, []).append(
            (c.dimension, c.from_segment, c.to_segment, c.reason)
        )
    time.sleep(1.0)  # the view flushes every 0.1 s
    return {"moves": moves, "profiles": profiles(settings, story.customers)}


def pin_clock(producer: Producer, service: Service, at: datetime) -> None:
    """Pin every segmenter worker's clock to ``at`` and wait until each has it."""
    segmenter_feed.set_clock(producer, service.settings, at)

    def pinned() -> list[float | None]:
        metric = "kizuna_segmenter_clock_pinned_seconds"
        return [Scrape(parse(w.metrics())).total(metric) for w in service.workers]

    wanted = at.timestamp()
    wait_until(
        lambda: all(p == wanted for p in pinned()),
        what=lambda: f"segmenter clocks {pinned()}, wanted {wanted}",
    )


def profiles(settings: Settings, customers: list[str]) -> dict[str, dict[str, str]]:
    client = redis.Redis.from_url(settings.redis)
    try:
        views = {}
        for customer in customers:
            raw: dict[bytes, bytes] = client.hgetall(profile_key(settings.namespace, customer))  # type: ignore[assignment]
            views[customer] = {
                k.decode(): v.decode()
                for k, v in raw.items()
                if k.decode() not in WALL_CLOCK_FIELDS
            }
        return views
    finally:
        client.close()


# -- journey: customer events, merges, the simulated clock in; requests out ----------


def run_journey(
    service: Service, deployment: Deployment, producer: Producer, story: JourneyStory
) -> dict[str, tuple[str, str | None, str | None]]:
    settings = service.settings
    requests = deployment.consumer("journey", NOTIFICATIONS_REQUESTED)
    for customer, events in story.events.items():
        journey_feed.send_events(producer, settings, customer, *events)
    got = read_until_quiet(requests, NOTIFICATIONS_REQUESTED, at_least=1)
    for step, heartbeats in enumerate(story.heartbeats):
        for clock_customer, heartbeat in heartbeats:  # every partition's clock moves
            journey_feed.send_events(producer, settings, clock_customer, heartbeat)
        got += read_until_quiet(requests, NOTIFICATIONS_REQUESTED, at_least=1)
        if step == MERGE_AFTER_STEP:
            send_journey_merges(producer, settings, story)
            # fold request and hand-off travel through the control topic
            wait_for_metric(
                service.workers, "kizuna_journey_merges_total", len(story.merges), stage="folded"
            )
    return {r.notification_id: (r.customer_id, r.journey_id, r.step_id) for r in got}


def send_journey_merges(producer: Producer, settings: Settings, story: JourneyStory) -> None:
    partition_of = partition_function(PARTITIONS)
    at = datetime.fromtimestamp(BASE + 2 * 3600.0, UTC)
    for n, (survivor, absorbed) in enumerate(story.merges):
        merged = CustomersMerged(
            customer_id=survivor,
            absorbed=(absorbed,),
            version=2,
            occurred_at=at,
            cause_event_id=f"login-{n}",
        )
        producer.produce(
            IDENTITY_CHANGES.name(settings.namespace),
            key=survivor.encode(),
            value=encode(merged),
            partition=partition_of(survivor),
        )
    flush(producer)
