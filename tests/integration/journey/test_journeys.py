"""The journey worker on real Kafka + Redis: cart reminders at the right (simulated)
times, cancelled by purchases anywhere, timers that survive kill -9, geo-push."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from runtime.settings import Settings
from schemas.channels import Channel
from schemas.codec import decode, encode
from schemas.identity import CustomersMerged
from schemas.notifications import SendNotification
from schemas.topics import IDENTITY_CHANGES, JOURNEY_CONVERSIONS, NOTIFICATIONS_REQUESTED
from services.journey.adapters.partitioning import partition_function
from tests.integration.conftest import consume, wait_for_metric
from tests.integration.journey.helpers import (
    BASE,
    JOURNEY,
    SIMULATED_CLOCK,
    advance_clock,
    at_offsets,
    requests,
    send_events,
    treated,
)
from tests.integration.journey.stitching import cart_then_store_visit
from tests.unit.journey.builders import DAY, HOUR, MINUTE, added, consent, followed, order, ping

pytestmark = pytest.mark.usefixtures("topics", "redis_client")
NEAR_SHIBUYA = (35.6600, 139.7010)


@pytest.fixture(params=["batch", "faust"])
def journey_worker(
    request: pytest.FixtureRequest,
    worker_factory: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[], Any]:
    """The worker on either intake: confluent-kafka batches and a changelog table, or
    faust agents and a faust table (KIZUNA_JOURNEY_INTAKE)."""
    monkeypatch.setenv("KIZUNA_JOURNEY_INTAKE", request.param)
    for name, value in SIMULATED_CLOCK.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KIZUNA_JOURNEY_TICK_INTERVAL_SECONDS", "0.1")
    monkeypatch.setenv("KIZUNA_SESSION_TIMEOUT_SECONDS", "6")  # a killed worker's turn passes fast
    return lambda: worker_factory(JOURNEY)


@pytest.fixture
def requested(settings: Settings, consumer_factory: Callable[..., Consumer]) -> Consumer:
    return consumer_factory(NOTIFICATIONS_REQUESTED.name(settings.namespace))


def test_when_a_cart_is_abandoned_then_three_reminders_go_out_at_1h_1d_3d(
    settings: Settings, producer: Producer, journey_worker: Callable[[], Any], requested: Consumer
) -> None:
    worker = journey_worker()
    [customer] = treated("cart", "cart_abandonment", 0.05)
    send_events(producer, settings, customer, followed(BASE - DAY), added(BASE))

    advance_clock(producer, settings, BASE + 59 * MINUTE)
    assert requests(requested, 0, quiet=3) == []
    advance_clock(producer, settings, BASE + HOUR + MINUTE)
    first = requests(requested, 1)
    advance_clock(producer, settings, BASE + DAY + MINUTE)
    second = requests(requested, 1)
    advance_clock(producer, settings, BASE + 3 * DAY + MINUTE)
    third = requests(requested, 1)

    assert at_offsets(first + second + third, BASE) == [HOUR, DAY, 3 * DAY]
    assert [r.data["reminder"] for r in first + second + third] == [1, 2, 3]
    assert {r.customer_id for r in first + second + third} == {customer}
    assert (first + second + third)[0].channels[0] is Channel.LINE
    report = http_json(worker, "/journeys/cart_abandonment/report")
    [default] = [v for v in report["variants"] if v["variant"] == "default"]
    assert (default["entered"], default["sent"]) == (1, 3)
    assert report["recovery"]["lost_opportunity_yen"] == 3_000  # the cart's value


def test_when_the_same_customer_buys_in_a_store_then_no_reminder(
    settings: Settings,
    producer: Producer,
    worker_factory: Callable[[str], Any],
    journey_worker: Callable[[], Any],
    requested: Consumer,
) -> None:
    """Identity stitches the web visitor and the store's member card; the journey sees
    one customer whose store purchase ends the online cart journey."""
    worker_factory("services.identity")
    worker = journey_worker()
    buyer = cart_then_store_visit(producer, settings, BASE, 1, buys_in_store=True)
    browser = cart_then_store_visit(producer, settings, BASE, 2, buys_in_store=False)
    # identity resolves the 7 events and the journey takes them in before the clock
    # moves: a store receipt that came after the reminder was due would be too late
    wait_for_metric(worker, "kizuna_journey_events_total", 7)
    advance_clock(producer, settings, BASE + HOUR + MINUTE)
    # the buyer's post-purchase thanks comes first (due at the receipt): wait for the
    # browser's reminder itself, then a quiet while for a reminder to the buyer
    got = until_each(requested, [browser], "reminder_1", [], timeout=30)
    got = carts(got + requests(requested, 0, quiet=4))
    assert [(r.customer_id, r.step_id) for r in got] == [(browser, "reminder_1")]
    assert buyer not in {r.customer_id for r in got}


def test_when_an_order_arrives_late_with_an_earlier_event_time_then_it_still_cancels(
    settings: Settings,
    producer: Producer,
    journey_worker: Callable[[], Any],
    requested: Consumer,
    consumer_factory: Callable[..., Consumer],
) -> None:
    conversions = consumer_factory(JOURNEY_CONVERSIONS.name(settings.namespace))
    worker = journey_worker()
    [customer] = treated("late", "cart_abandonment", 0.05)
    send_events(producer, settings, customer, followed(BASE - DAY), added(BASE))
    advance_clock(producer, settings, BASE + HOUR + MINUTE)
    assert len(requests(requested, 1)) == 1  # reminder 1 went out before the order was known
    # the order was placed at 10:30 but its event reaches us only now, a day later
    send_events(producer, settings, customer, order(BASE + 30 * MINUTE, cart_id="cart-1"))
    wait_for_metric(worker, "kizuna_journey_events_total", 4)  # taken in before the clock moves
    advance_clock(producer, settings, BASE + DAY + MINUTE)
    advance_clock(producer, settings, BASE + 3 * DAY + MINUTE)
    later = requests(requested, 1, timeout=8, quiet=3)  # the order's thank-you mail
    assert [r.journey_id for r in later] == ["post_purchase"]
    converted = [
        decode(JOURNEY_CONVERSIONS.adapter, m.value() or b"") for m in consume(conversions, 1)
    ]
    assert [(c.journey_id, c.amount, c.recovered) for c in converted] == [
        ("cart_abandonment", 3_000, False)  # bought before the reminder: not a recovery
    ]


def until_each(
    requested: Consumer,
    customers: list[str],
    step: str,
    got: list[SendNotification],
    timeout: float,
) -> list[SendNotification]:
    """Read requests until each customer has had ``step`` (or ``timeout`` passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if {r.customer_id for r in got if r.step_id == step} >= set(customers):
            break
        got = got + requests(requested, 1, timeout=2.0, quiet=0)
    return got


def assert_each_step_once(got: list[SendNotification], customers: list[str]) -> None:
    steps = {(r.customer_id, r.step_id) for r in got}
    assert steps == {(c, s) for c in customers for s in ("reminder_1", "reminder_2", "reminder_3")}
    by_id: dict[str, set[str]] = {}
    for r in got:
        by_id.setdefault(r.notification_id, set()).add(r.model_dump_json(exclude={"data"}))
    assert len(by_id) == 3 * len(customers)  # one notification id per step and customer
    assert all(len(bodies) == 1 for bodies in by_id.values())  # a repeat is the same request


def pending_then_killed(
    settings: Settings, producer: Producer, journey_worker: Callable[[], Any], prefix: str
) -> list[str]:
    """20 customers with a cart reminder pending; the worker that holds them is killed."""
    customers = treated(prefix, "cart_abandonment", 0.05, count=20)
    worker = journey_worker()
    for customer in customers:
        send_events(producer, settings, customer, followed(BASE - DAY), added(BASE))
    wait_for_metric(worker, "kizuna_journey_timers_pending", 20)
    time.sleep(1.5)  # let the table's changelog catch up with the rows
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(10)
    return customers


def later_reminders(
    producer: Producer,
    settings: Settings,
    requested: Consumer,
    customers: list[str],
    got: list[SendNotification],
) -> list[SendNotification]:
    for later, step in (
        (BASE + DAY + MINUTE, "reminder_2"),
        (BASE + 3 * DAY + MINUTE, "reminder_3"),
    ):
        advance_clock(producer, settings, later)
        got = until_each(requested, customers, step, got, timeout=60)
    return got + requests(requested, 0, quiet=2.0)  # anything extra


def test_when_restarted_and_the_clock_moves_at_once_then_every_pending_step_fires_once(
    settings: Settings, producer: Producer, journey_worker: Callable[[], Any], requested: Consumer
) -> None:
    customers = pending_then_killed(settings, producer, journey_worker, "pend")

    journey_worker()  # recovers the rows, rebuilds the due index
    advance_clock(producer, settings, BASE + HOUR + MINUTE)
    got = until_each(requested, customers, "reminder_1", [], timeout=90)
    got = later_reminders(producer, settings, requested, customers, got)

    assert_each_step_once(got, customers)


def test_when_the_worker_is_killed_with_timers_pending_then_each_step_fires_exactly_once(
    settings: Settings, producer: Producer, journey_worker: Callable[[], Any], requested: Consumer
) -> None:
    customers = pending_then_killed(settings, producer, journey_worker, "kill")

    worker = journey_worker()  # recovers the rows, rebuilds the due index
    advance_clock(producer, settings, BASE + HOUR + MINUTE)
    early = requests(requested, 10, quiet=0)  # some fired ...
    worker.process.send_signal(signal.SIGKILL)  # ... and the worker dies mid-firing
    worker.process.wait(10)

    journey_worker()  # each step is given time to fire before the clock moves on:
    # a reminder whose clock jumped past its expiry would be skipped as stale
    advance_clock(producer, settings, BASE + HOUR + 2 * MINUTE)
    # counted per customer, not per message: a request the killed worker sent without
    # its row reaching the changelog is sent again (same id), and would fill a count
    got = until_each(requested, customers, "reminder_1", list(early), timeout=90)
    got = later_reminders(producer, settings, requested, customers, got)

    assert_each_step_once(got, customers)


def test_when_two_customers_merge_mid_journey_then_the_survivor_continues_without_repeats(
    settings: Settings, producer: Producer, journey_worker: Callable[[], Any], requested: Consumer
) -> None:
    worker = journey_worker()
    web, store = treated("merge", "cart_abandonment", 0.05, count=2)
    send_events(producer, settings, web, followed(BASE - DAY), added(BASE))
    advance_clock(producer, settings, BASE + HOUR + MINUTE)
    first = requests(requested, 1)
    merged = CustomersMerged(
        customer_id=store,
        absorbed=(web,),
        version=2,
        occurred_at=datetime.fromtimestamp(BASE + 2 * HOUR, UTC),
        cause_event_id="login-1",
    )
    partition = partition_function(settings.partitions or 1)(store)
    producer.produce(
        IDENTITY_CHANGES.name(settings.namespace),
        key=store.encode(),
        value=encode(merged),
        partition=partition,
    )
    assert producer.flush(10) == 0
    # the fold request and the hand-off travel through the control topic
    wait_for_metric(worker, "kizuna_journey_merges_total", 1, stage="folded")
    advance_clock(producer, settings, BASE + DAY + MINUTE)
    second = requests(requested, 1)
    advance_clock(producer, settings, BASE + 3 * DAY + MINUTE)
    third = requests(requested, 1)
    got = first + second + third
    assert [(r.customer_id, r.step_id) for r in got] == [
        (web, "reminder_1"),
        (store, "reminder_2"),
        (store, "reminder_3"),
    ]
    assert len({r.instance_id for r in got}) == 1  # one journey, moved, not restarted


def test_when_the_app_reports_a_location_in_a_store_then_one_push_within_the_cooldown(
    settings: Settings, producer: Producer, journey_worker: Callable[[], Any], requested: Consumer
) -> None:
    journey_worker()
    [customer] = treated("geo", "geo_push", 0.0)
    visit = BASE + 2 * HOUR  # 12:00 in Tokyo, the store is open
    send_events(
        producer,
        settings,
        customer,
        consent(BASE - DAY, Channel.PUSH),
        ping(visit, *NEAR_SHIBUYA),
        ping(visit + 3 * MINUTE, *NEAR_SHIBUYA),
    )
    [push] = requests(requested, 1)
    assert (push.template, push.channels, push.data["store_id"]) == (
        "geo_store_nearby",
        (Channel.PUSH,),
        "shibuya",
    )
    send_events(
        producer,
        settings,
        customer,
        ping(visit + DAY, *NEAR_SHIBUYA),
        ping(visit + DAY + 3 * MINUTE, *NEAR_SHIBUYA),
    )
    assert requests(requested, 0, quiet=4) == []


def http_json(worker: Any, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}{path}", timeout=10) as r:
        return json.loads(r.read())


def carts(got: list[SendNotification]) -> list[SendNotification]:
    return [r for r in got if r.journey_id == "cart_abandonment"]
