"""Given the whole stream running on a private Kafka + Redis — a shop posting orders
through the gateway to identity and the segmenter, and notification requests flowing to
the notifier and a local LINE — when the Kafka broker or Redis (AOF) is killed -9 under
that load and started again, then:

- the gateway answers 503 while Kafka is away and loses nothing it answered 200 to;
- every accepted order reaches customer.events (at least once: identity may emit an
  event again after a fault; consumers are idempotent on event_id / order_id) and is
  counted exactly once on its customer's profile;
- LINE accepts every requested notification exactly once (one 200 per X-Line-Retry-Key),
  none is lost, each has one "sent" outcome;
- the dead-letter topic holds exactly the invalid orders (each at least once: a request
  refused with 503 may have reached Kafka before the broker died, and is sent again).

During a Redis outage identity waits (backpressure) while the gateway keeps accepting; a
worker that exits is started again, as docker-compose's ``restart: unless-stopped`` does.
The notifier rides a Redis outage out without exiting (its timers skip a tick).

These tests kill servers, so they start their own with deploy/local/stack.sh on other
ports and under a temporary directory; the shared stack is never touched.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.localstack import StackAddress
from runtime.settings import Settings
from tests.faults.harness import (
    WRITE_KEY,
    PrivateStack,
    Processes,
    Requests,
    ShopTraffic,
    assert_each_notification_sent_once,
    customer_events,
    dead_letters,
    duplicates,
    line_followers,
    profiles_count_each_order_once,
    wait_until,
)
from tests.integration.conftest import redis_client, topics  # noqa: F401  (fixtures)
from tests.integration.notifier.fakes import FakeProvider, ThreadedFake


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateStack]:
    if shutil.which("java") is None:
        pytest.skip("Java is missing: no private Kafka broker to kill and restart")
    private = PrivateStack(tmp_path_factory.mktemp("private-stack"))
    try:
        private.up()
        yield private
    finally:
        private.down()


@pytest.fixture
def stack(private_stack: PrivateStack) -> StackAddress:
    """Every fixture of this module (settings, topics, workers) uses the private stack."""
    return private_stack.address


@pytest.fixture
def line() -> Iterator[ThreadedFake]:
    server = ThreadedFake(FakeProvider())
    yield server
    server.close()


@pytest.fixture
def processes(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: ThreadedFake
) -> Iterator[Processes]:
    for name, value in {
        "KIZUNA_GATEWAY_WRITE_KEYS": json.dumps({WRITE_KEY: "web"}),
        "KIZUNA_GATEWAY_REQUEST_TIMEOUT_S": "3",
        "KIZUNA_SEGMENTER_VIEW_FLUSH_SECONDS": "0.1",
        "KIZUNA_NOTIFIER_DRY_RUN": "false",
        "KIZUNA_NOTIFIER_LINE_BASE_URL": line.url,
        "KIZUNA_NOTIFIER_LINE_CHANNEL_TOKEN": "line-token",
        "KIZUNA_NOTIFIER_SMTP_PORT": "1",
        "KIZUNA_NOTIFIER_LEASE_S": "3",
        "KIZUNA_NOTIFIER_RETRY_BASE_S": "0.5",
        "KIZUNA_NOTIFIER_RETRY_POLL_S": "0.2",
        "KIZUNA_NOTIFIER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "KIZUNA_NOTIFIER_MARKETING_CAP_PER_DAY": "0",  # many messages per customer, on purpose
    }.items():
        monkeypatch.setenv(name, value)
    running = Processes(settings, tmp_path)
    yield running
    running.stop_all()


def assert_orders_count_once(settings: Settings, traffic: ShopTraffic) -> str:
    events = customer_events(settings.kafka, settings.namespace, traffic.acked)
    order_ids = [e.event.event_id for e in events if e.event.event_id.startswith("order-")]
    assert set(order_ids) == set(traffic.acked)
    profiles_count_each_order_once(settings.redis, settings.namespace, events, traffic.acked)
    letters = dead_letters(settings.kafka, settings.namespace, traffic.bad)
    assert {letter.key.decode() for letter in letters} == traffic.bad  # at least once each
    assert {(letter.service, letter.reason) for letter in letters} == {("gateway", "invalid")}
    return (
        f"{len(traffic.acked)} orders, {len(traffic.bad)} bad, refused {dict(traffic.refusals)},"
        f" {duplicates(order_ids)} customer events and {len(letters) - len(traffic.bad)}"
        " dead letters repeated"
    )


@pytest.mark.usefixtures("topics", "redis_client")
def test_when_the_broker_is_killed_and_restarted_under_load_then_nothing_is_lost_or_doubled(
    settings: Settings, private_stack: PrivateStack, processes: Processes, line: ThreadedFake
) -> None:
    gateway, *_ = processes.start(
        "services.gateway", "services.identity", "services.segmenter", "services.notifier"
    )
    line_followers(settings)
    requests = Requests(settings)
    traffic = ShopTraffic(gateway.port, on_batch=requests.send).start()
    traffic.wait_acked(60)

    private_stack.kill_kafka()
    wait_until(lambda: traffic.refusals["503"] >= 2, 30, "the gateway refuses with 503")
    private_stack.up()
    traffic.wait_acked(len(traffic.acked) + 80, timeout=120)
    traffic.stop()

    assert processes.restart_exited() == []  # every worker rode the outage out
    orders = assert_orders_count_once(settings, traffic)
    notifications = assert_each_notification_sent_once(settings, requests, line)
    print(f"\nbroker restart: {orders}; {notifications}")


def redis_outage(private_stack: PrivateStack, traffic: ShopTraffic, seconds: float) -> None:
    """Redis killed -9 for ``seconds`` while the shop keeps selling, then started again
    (from its AOF: what it acknowledged is still there)."""
    private_stack.kill_redis()
    outage = time.monotonic()
    traffic.wait_acked(len(traffic.acked) + 24, timeout=30)  # the gateway needs no Redis
    time.sleep(max(0.0, seconds - (time.monotonic() - outage)))
    private_stack.up()


@pytest.mark.usefixtures("topics", "redis_client")
def test_when_redis_is_killed_and_restarted_under_load_then_every_order_counts_once(
    settings: Settings, private_stack: PrivateStack, processes: Processes
) -> None:
    gateway, *_ = processes.start("services.gateway", "services.identity", "services.segmenter")
    traffic = ShopTraffic(gateway.port).start()
    traffic.wait_acked(60)

    redis_outage(private_stack, traffic, seconds=6)
    restarted = processes.restart_exited()  # as docker-compose's restart: unless-stopped
    traffic.wait_acked(len(traffic.acked) + 80, timeout=120)
    traffic.stop()
    restarted += processes.restart_exited()

    orders = assert_orders_count_once(settings, traffic)
    print(f"\nredis restart: {orders}; restarted: {restarted or 'none'}")


@pytest.mark.usefixtures("topics", "redis_client")
def test_when_redis_is_away_for_seconds_then_the_notifier_rides_it_out_and_sends_each_once(
    settings: Settings, private_stack: PrivateStack, processes: Processes, line: ThreadedFake
) -> None:
    (notifier,) = processes.start("services.notifier")
    line_followers(settings)
    requests = Requests(settings)
    for n in range(10):
        requests.send(n)
    requests.flush()

    private_stack.kill_redis()
    for n in range(10, 20):
        requests.send(n)
        time.sleep(0.5)
    private_stack.up()
    for n in range(20, 30):
        requests.send(n)

    assert notifier.process.poll() is None, f"the notifier exited: {notifier.log_tail(5)}"
    sent = assert_each_notification_sent_once(settings, requests, line, timeout=30)
    print(f"\nredis outage, notifier: {sent}")
