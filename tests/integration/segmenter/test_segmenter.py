"""Given a real Kafka + Redis and the segmenter as a process, when stitched customer
events, identity merges and the passage of time reach it, then segment changes come out
once each and the profile view tells journey and notifier where the customer stands."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from confluent_kafka import Producer

from runtime.settings import Settings
from services.segmenter import cli as segmenter_cli
from tests.integration.conftest import Worker
from tests.integration.segmenter.helpers import (
    SEGMENTER,
    changes_consumer,
    http_json,
    no_more_changes,
    partition_of,
    read_changes,
    send_events,
    send_merge,
    set_clock,
    wait_for_profile,
)
from tests.unit.segmenter.builders import order, page, receipt

NOW = datetime.now(UTC).replace(microsecond=0)


def moves(changes: list[Any]) -> list[tuple[str, str | None, str, str]]:
    return [(c.dimension, c.from_segment, c.to_segment, c.reason) for c in changes]


@pytest.fixture(params=["batch", "faust"])
def segmenter(
    request: pytest.FixtureRequest,
    topics: list[str],
    monkeypatch: pytest.MonkeyPatch,
    worker_factory: Callable[[str], Worker],
) -> Callable[[], Worker]:
    """The worker on either intake: confluent-kafka batches and a changelog table, or
    faust agents and a faust table (KIZUNA_SEGMENTER_INTAKE)."""
    monkeypatch.setenv("KIZUNA_SEGMENTER_INTAKE", request.param)
    monkeypatch.setenv("KIZUNA_SEGMENTER_SWEEP_INTERVAL_SECONDS", "0.5")
    monkeypatch.setenv("KIZUNA_SEGMENTER_VIEW_FLUSH_SECONDS", "0.1")
    return lambda: worker_factory(SEGMENTER)


def test_when_an_ec_order_and_a_pos_receipt_of_one_customer_arrive_then_f_is_2_and_she_grows(
    settings: Settings,
    segmenter: Callable[[], Worker],
    producer: Producer,
    consumer_factory: Callable[..., Any],
    redis_client: redis.Redis,
) -> None:
    worker = segmenter()
    changes = changes_consumer(consumer_factory, settings)

    send_events(producer, settings, "cust-hanako", order("o-1", 4_800, NOW - timedelta(days=3)))
    send_events(producer, settings, "cust-hanako", receipt("umeda", "R-77", 3_300, NOW))

    assert moves(read_changes(changes, 4)) == [
        ("rfm", None, "New Customers", "event"),
        ("cpm", None, "初回客/現役", "event"),
        ("rfm", "New Customers", "Potential Loyalist", "event"),
        ("cpm", "初回客/現役", "よちよち客/現役", "event"),
    ]
    profile = wait_for_profile(redis_client, settings, "cust-hanako", "window_frequency", "2")
    assert profile["cpm_group"] == "よちよち客/現役"
    assert (profile["online_orders"], profile["store_orders"]) == ("1", "1")
    assert profile["lifetime_amount"] == "8100"
    looked_up = http_json(worker.port, "/customers/cust-hanako/profile")
    assert looked_up["rfm_segment"] == "Potential Loyalist"
    assert looked_up["f_score"] == 2


def test_when_a_customer_goes_quiet_then_the_sweep_alone_moves_her_to_at_risk_once(
    settings: Settings,
    segmenter: Callable[[], Worker],
    producer: Producer,
    consumer_factory: Callable[..., Any],
    redis_client: redis.Redis,
) -> None:
    segmenter()
    changes = changes_consumer(consumer_factory, settings)
    send_events(
        producer,
        settings,
        "cust-taro",
        *(order(f"o-{day}", 9_000, NOW - timedelta(days=day)) for day in (2, 1, 0)),
    )
    assert read_changes(changes, 4)[-1].to_segment == "よちよち客/現役"

    set_clock(producer, settings, NOW + timedelta(days=250))

    assert moves(read_changes(changes, 2)) == [
        ("rfm", "Potential Loyalist", "At Risk", "time"),
        ("cpm", "よちよち客/現役", "よちよち客/離脱", "time"),
    ]
    assert no_more_changes(changes) == []
    profile = wait_for_profile(redis_client, settings, "cust-taro", "rfm_segment", "At Risk")
    assert profile["r_score"] == "2"


def test_when_identity_merges_customers_on_two_partitions_then_the_survivor_has_both_histories(
    settings: Settings,
    segmenter: Callable[[], Worker],
    producer: Producer,
    consumer_factory: Callable[..., Any],
    redis_client: redis.Redis,
) -> None:
    survivor, absorbed = "member-1", "pos-card-3"
    assert partition_of(settings, survivor) != partition_of(settings, absorbed)
    segmenter()
    changes = changes_consumer(consumer_factory, settings)
    send_events(producer, settings, survivor, order("o-1", 6_000, NOW - timedelta(days=5)))
    send_events(
        producer, settings, absorbed, receipt("ginza", "R-1", 2_000, NOW - timedelta(days=1))
    )
    read_changes(changes, 4)

    send_merge(producer, settings, survivor, absorbed, NOW)

    merged = read_changes(changes, 2)
    assert {c.customer_id for c in merged} == {survivor}
    assert moves(merged) == [
        ("rfm", "New Customers", "Potential Loyalist", "merge"),
        ("cpm", "初回客/現役", "よちよち客/現役", "merge"),
    ]
    wait_for_profile(redis_client, settings, absorbed, "absorbed_into", survivor)

    browsed = NOW + timedelta(hours=1)  # a page view: read for its time alone
    send_events(producer, settings, absorbed, receipt("ginza", "R-2", 1_000, NOW), page(browsed))

    profile = wait_for_profile(redis_client, settings, survivor, "lifetime_orders", "3")
    assert profile["lifetime_amount"] == "9000"
    seen_at = browsed.astimezone(ZoneInfo("Asia/Tokyo")).isoformat()
    wait_for_profile(redis_client, settings, survivor, "last_seen_at", seen_at)
    assert no_more_changes(changes, wait=1.0) == []


def test_when_the_worker_restarts_then_state_is_rebuilt_from_the_changelog_identically(
    settings: Settings,
    segmenter: Callable[[], Worker],
    producer: Producer,
    consumer_factory: Callable[..., Any],
    redis_client: redis.Redis,
) -> None:
    first = segmenter()
    changes = changes_consumer(consumer_factory, settings)
    customers = {f"cust-{n}": n for n in range(1, 7)}
    for customer, n in customers.items():
        send_events(
            producer,
            settings,
            customer,
            *(order(f"{customer}-o{i}", 1_000 * n, NOW - timedelta(days=40 * i)) for i in range(n)),
        )
    before = {
        c: wait_for_profile(redis_client, settings, c, "lifetime_orders", str(n))
        for c, n in customers.items()
    }
    emitted = read_changes(changes, 2 * len(customers)) + no_more_changes(changes)
    first.stop()
    for key in redis_client.scan_iter(match=f"{settings.namespace}:profile:*"):
        redis_client.delete(key)

    segmenter()

    after = {
        c: wait_for_profile(redis_client, settings, c, "lifetime_orders", str(n))
        for c, n in customers.items()
    }
    for profiles in (before, after):
        for profile in profiles.values():
            profile.pop("updated_at")
    assert after == before
    assert no_more_changes(changes) == []
    assert {c.customer_id for c in emitted} == set(customers)


def test_when_thresholds_follow_the_population_then_a_snapshot_rescores_new_spending(
    settings: Settings,
    topics: list[str],
    producer: Producer,
    redis_client: redis.Redis,
    worker_factory: Callable[[str], Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Quantile thresholds: the shop's ten customers spent ¥1,000…¥10,000. Until an
    operator publishes a snapshot, ¥9,500 scores M=2 on the fixed bands (¥5,000–20,000);
    after `cli thresholds`, the worker adopts the population's cuts and ¥9,500 is in the
    top fifth: M=5."""
    for name, value in {
        "KIZUNA_SEGMENTER_THRESHOLDS": "quantile",
        "KIZUNA_SEGMENTER_THRESHOLDS_REFRESH_SECONDS": "0.5",
        "KIZUNA_SEGMENTER_VIEW_FLUSH_SECONDS": "0.1",
        "KIZUNA_NAMESPACE": settings.namespace,  # for the CLI run in this process
        "KIZUNA_KAFKA": settings.kafka,
        "KIZUNA_REDIS": settings.redis,
    }.items():
        monkeypatch.setenv(name, value)
    worker_factory(SEGMENTER)
    bought = NOW - timedelta(days=1)
    for n in range(1, 11):
        send_events(producer, settings, f"cust-{n}", order(f"o-{n}", n * 1_000, bought))
    for n in range(1, 11):
        wait_for_profile(redis_client, settings, f"cust-{n}", "window_monetary", str(n * 1_000))

    send_events(producer, settings, "cust-before", order("o-before", 9_500, bought))
    before = wait_for_profile(redis_client, settings, "cust-before", "window_monetary", "9500")
    assert segmenter_cli.main(["thresholds"]) == 0
    scored = []
    for n in range(30):  # the worker's refresh timer (0.5 s) picks the snapshot up
        send_events(producer, settings, f"cust-after-{n}", order(f"o-after-{n}", 9_500, bought))
        after = wait_for_profile(
            redis_client, settings, f"cust-after-{n}", "window_monetary", "9500"
        )
        scored.append(after["m_score"])
        if after["m_score"] != "2":
            break
        time.sleep(0.5)

    assert before["m_score"] == "2"
    assert scored[-1] == "5", scored


def test_when_the_worker_moves_from_faust_to_batches_then_each_customer_keeps_her_state(
    settings: Settings,
    topics: list[str],
    producer: Producer,
    consumer_factory: Callable[..., Any],
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    worker_factory: Callable[[str], Worker],
) -> None:
    """A deployment switching KIZUNA_SEGMENTER_INTAKE: the batch intake reads the faust
    table's changelog and starts where the faust agents' group stopped, so nothing is
    forgotten and nothing already handled changes anyone's segment again."""
    monkeypatch.setenv("KIZUNA_SEGMENTER_VIEW_FLUSH_SECONDS", "0.1")
    monkeypatch.setenv("KIZUNA_SEGMENTER_INTAKE", "faust")
    old = worker_factory(SEGMENTER)
    changes = changes_consumer(consumer_factory, settings)
    customers = [f"cust-{n}" for n in range(1, 5)]
    for customer in customers:
        send_events(
            producer, settings, customer, order(f"{customer}-o1", 3_000, NOW - timedelta(days=3))
        )
    for customer in customers:
        wait_for_profile(redis_client, settings, customer, "lifetime_orders", "1")
    first = read_changes(changes, 2 * len(customers)) + no_more_changes(changes)
    old.stop()

    monkeypatch.setenv("KIZUNA_SEGMENTER_INTAKE", "batch")
    worker_factory(SEGMENTER)
    for customer in customers:
        send_events(
            producer, settings, customer, order(f"{customer}-o2", 4_000, NOW - timedelta(days=1))
        )

    for customer in customers:
        profile = wait_for_profile(redis_client, settings, customer, "lifetime_orders", "2")
        assert profile["lifetime_amount"] == "7000"
    later = read_changes(changes, len(customers)) + no_more_changes(changes)
    assert {c.customer_id for c in first} == set(customers)
    assert all(c.from_segment is not None for c in later)  # moves on from the faust-era one
