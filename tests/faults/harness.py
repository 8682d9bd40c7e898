"""What the fault tests share: a shop's SDK that keeps posting orders through the gateway
(retrying a 503 with the same messageIds, as Segment's SDKs do), a private Kafka + Redis
stack that may be killed and restarted, and readers that take whole topics."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from confluent_kafka import Consumer, Producer

from runtime.kafka import create_consumer, create_producer
from runtime.localstack import StackAddress, kafka_healthy, redis_healthy
from runtime.settings import Settings
from schemas.channels import Channel, Purpose
from schemas.codec import decode, encode
from schemas.customer import CustomerEvent
from schemas.notifications import SendNotification
from schemas.topics import (
    CUSTOMER_EVENTS,
    DEADLETTER,
    NOTIFICATIONS_OUTCOMES,
    NOTIFICATIONS_REQUESTED,
)
from services.notifier.adapters.line import retry_key
from tests.integration.conftest import ROOT, Worker, wait_until
from tests.integration.notifier.conftest import CART_DATA, consent, line_followed
from tests.integration.notifier.fakes import ThreadedFake

WRITE_KEY = "wk_web_faults"
STACK_SCRIPT = ROOT / "deploy" / "local" / "stack.sh"


@dataclass(frozen=True)
class Order:
    event_id: str
    member: str
    total: int


@dataclass
class ShopTraffic:
    """A background thread posting batches of ``Order Completed`` to the gateway.

    Every batch is retried until the gateway answers 200, so an order the gateway
    refused with 503 is sent again under the same messageId. ``bad_every``: every n-th
    event of the stream is invalid (a fractional yen total) and must be dead-lettered.
    """

    gateway_port: int
    members: int = 12
    batch: int = 8
    pause_s: float = 0.05
    bad_every: int = 9
    on_batch: Callable[[int], None] | None = None
    acked: dict[str, Order] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)
    refusals: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _failure: BaseException | None = None

    def start(self) -> ShopTraffic:
        self._thread = threading.Thread(target=self._run, name="shop-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(60)
        assert not self._thread.is_alive(), "the shop's SDK is stuck retrying"
        if self._failure is not None:
            raise AssertionError(f"shop traffic failed: {self._failure!r}")

    def wait_acked(self, count: int, timeout: float = 60.0) -> None:
        wait_until(lambda: len(self.acked) >= count, timeout, f"{count} orders accepted")

    def _run(self) -> None:
        sequence = 0
        try:
            while not self._stop.is_set():
                orders, bad, messages = self._next_batch(sequence)
                sequence += len(messages)
                self._post_until_accepted(messages)
                self.acked.update((o.event_id, o) for o in orders)
                self.bad |= bad
                if self.on_batch is not None:
                    self.on_batch(sequence)
                time.sleep(self.pause_s)
        except BaseException as err:  # reported by stop()
            self._failure = err

    def _next_batch(self, start: int) -> tuple[list[Order], set[str], list[dict[str, Any]]]:
        orders, bad, messages = [], set(), []
        now = datetime.now(UTC) - timedelta(minutes=5)
        for n in range(start, start + self.batch):
            event_id = f"order-{n}"
            member = f"M-{n % self.members:03d}"
            total = 1_000 + n
            properties: dict[str, Any] = {
                "order_id": event_id,
                "total": total,
                "products": [{"product_id": "tea-9", "price": total, "quantity": 1}],
            }
            if n % self.bad_every == self.bad_every - 1:
                properties["total"] = total + 0.5  # not whole yen: a dead letter
                bad.add(event_id)
            else:
                orders.append(Order(event_id, member, total))
            messages.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": member,
                    "messageId": event_id,
                    "timestamp": (now + timedelta(milliseconds=n)).isoformat(),
                    "properties": properties,
                }
            )
        return orders, bad, messages

    def _post_until_accepted(self, messages: list[dict[str, Any]]) -> None:
        body = json.dumps({"batch": messages}).encode()
        auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
        while True:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.gateway_port}/v1/batch",
                data=body,
                headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (loopback)
                    report = json.loads(response.read())
                    assert report["accepted"] + report["duplicates"] == sum(
                        1 for m in messages if isinstance(m["properties"]["total"], int)
                    ), report
                    return
            except urllib.error.HTTPError as err:
                if err.code != 503:
                    raise AssertionError(f"gateway answered {err.code}: {err.read()!r}") from None
                self.refusals["503"] += 1
            except OSError as err:
                self.refusals[type(err).__name__] += 1
            time.sleep(0.2)


def read_topic(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Any]], bool],
    timeout: float = 90.0,
    settle: float = 3.0,
) -> list[Any]:
    """Every message of ``topic`` from the start: until ``done(messages)``, then ``settle``
    quiet seconds more to catch anything extra (a duplicate)."""
    consumer: Consumer = create_consumer(bootstrap, f"faults-reader-{time.monotonic_ns()}")
    consumer.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    quiet_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if quiet_until is None and done(got):
                quiet_until = time.monotonic() + settle
            if quiet_until is not None and time.monotonic() > quiet_until:
                break
            message = consumer.poll(0.3)
            if message is None or message.error():
                continue
            got.append(message)
            if quiet_until is not None:
                quiet_until = time.monotonic() + settle
    finally:
        consumer.close()
    return got


def customer_events(bootstrap: str, namespace: str, expected: Iterable[str]) -> list[Any]:
    """The customer events identity emitted, once every ``expected`` event id is among them."""
    wanted = set(expected)
    decoded: list[Any] = []

    def done(messages: list[Any]) -> bool:
        decoded.extend(decode(CUSTOMER_EVENTS.adapter, m.value()) for m in messages[len(decoded) :])
        return wanted <= {e.event.event_id for e in decoded}

    messages = read_topic(bootstrap, CUSTOMER_EVENTS.name(namespace), done)
    done(messages)
    return decoded


def dead_letters(bootstrap: str, namespace: str, expected: Iterable[str]) -> list[Any]:
    """The dead letters, once one for each ``expected`` key (the bad messageIds) is there."""
    wanted = {key.encode() for key in expected}

    def done(messages: list[Any]) -> bool:
        return wanted <= {decode(DEADLETTER.adapter, m.value()).key for m in messages}

    messages = read_topic(bootstrap, DEADLETTER.name(namespace), done, timeout=30)
    return [decode(DEADLETTER.adapter, m.value()) for m in messages]


# --- a private stack -------------------------------------------------------------------


class PrivateStack:
    """Kafka + Redis of our own (deploy/local/stack.sh on other ports and directory), so a
    test may kill them without touching the servers everyone else is using."""

    kafka_port, controller_port, redis_port = 39092, 39093, 36379

    def __init__(self, local_dir: Path) -> None:
        self.local_dir = local_dir
        self.env = dict(
            os.environ,
            KIZUNA_LOCAL_DIR=str(local_dir),
            KIZUNA_KAFKA_PORT=str(self.kafka_port),
            KIZUNA_KAFKA_CONTROLLER_PORT=str(self.controller_port),
            KIZUNA_REDIS_PORT=str(self.redis_port),
            KIZUNA_STACK_TIMEOUT="90",
            PYTHON=sys.executable,
        )
        self.address = StackAddress(
            kafka=f"127.0.0.1:{self.kafka_port}", redis=f"redis://127.0.0.1:{self.redis_port}/0"
        )
        self._reuse_resolved_jars()

    def _reuse_resolved_jars(self) -> None:
        """stack.sh resolves the Kafka jars through Maven into each LOCAL_DIR unless a
        ``lib-<version>/.complete`` is there: link the main checkout's, already resolved."""
        main_local = Path(os.environ.get("KIZUNA_LOCAL_DIR") or ROOT / ".local")
        for lib in (main_local / "kafka").glob("lib-*"):
            if (lib / ".complete").exists():
                (self.local_dir / "kafka").mkdir(parents=True, exist_ok=True)
                (self.local_dir / "kafka" / lib.name).symlink_to(lib, target_is_directory=True)

    def up(self) -> None:
        """Start whatever part is down (stack.sh leaves a running part alone)."""
        subprocess.run([str(STACK_SCRIPT), "up"], env=self.env, check=True, timeout=240)

    def down(self) -> None:
        subprocess.run([str(STACK_SCRIPT), "down"], env=self.env, check=False, timeout=120)

    def kill_kafka(self) -> None:
        self._kill(self.local_dir / "kafka" / "kafka.pid")
        wait_until(lambda: not kafka_healthy(self.address.kafka), 30, "kafka gone")

    def kill_redis(self) -> None:
        self._kill(self.local_dir / "redis" / "redis.pid")
        wait_until(lambda: not redis_healthy(self.address.redis), 30, "redis gone")

    @staticmethod
    def _kill(pidfile: Path) -> None:
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGKILL)
        # stack.sh takes a live pid as "already running"; a dead one not yet reaped by
        # this container's init still answers kill -0, so forget it here.
        pidfile.unlink()


# --- workers and what they show --------------------------------------------------------


class Processes:
    """Service workers as real processes, started side by side (a 2-core box boots four
    faust workers faster together than one after the other), stopped at the end."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.started: list[Worker] = []
        self.module_of: dict[Worker, str] = {}

    def start(self, *modules: str) -> list[Worker]:
        workers = []
        for module in modules:
            name = f"{module.rsplit('.', 1)[-1]}-{len(self.started)}.log"
            workers.append(Worker(module, self.settings, self.log_dir / name))
            self.module_of[workers[-1]] = module
            self.started.append(workers[-1])
        for worker in workers:
            worker.wait_ready(120)
        return workers

    def restart_exited(self) -> list[str]:
        """What a supervisor does (docker-compose: ``restart: unless-stopped``): start again
        each worker that exited. Returns their modules with exit codes, to report."""
        exited = [w for w in self.running() if w.process.poll() is not None]
        self.start(*(self.module_of[w] for w in exited))
        return [f"{self.module_of[w]} (exit {w.process.returncode})" for w in exited]

    def running(self) -> list[Worker]:
        """The latest worker of each module (a killed one is replaced by its restart)."""
        latest = {self.module_of[w]: w for w in self.started}
        return list(latest.values())

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


def kill(worker: Worker) -> None:
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(10)


def profiles_count_each_order_once(
    redis_url: str, namespace: str, events: list[Any], acked: dict[str, Order]
) -> None:
    """Each member's profile (segmenter's view in Redis) holds exactly her accepted orders:
    as many as she placed, for the amount she paid, counted once however often delivered."""
    customer_of: dict[str, set[str]] = {}
    for item in events:
        order = acked.get(item.event.event_id)
        if order is not None:
            customer_of.setdefault(order.member, set()).add(item.customer_id)
    assert all(len(ids) == 1 for ids in customer_of.values()), customer_of
    expected: dict[str, tuple[str, str]] = {}
    for order in acked.values():
        count, amount = expected.get(order.member, ("0", "0"))
        expected[order.member] = (str(int(count) + 1), str(int(amount) + order.total))
    client = redis.Redis.from_url(redis_url, decode_responses=True)

    def shown() -> dict[str, tuple[str, str]]:
        out = {}
        for member, (customer_id,) in customer_of.items():
            view = client.hgetall(f"{namespace}:profile:{customer_id}")
            out[member] = (
                str(view.get("lifetime_orders", "")),
                str(view.get("lifetime_amount", "")),
            )
        return out

    try:
        deadline = time.monotonic() + 60
        while shown() != expected and time.monotonic() < deadline:
            time.sleep(0.3)
        now = shown()
        wrong = {
            m: f"{now[m]} shown, {expected[m]} placed" for m in expected if now[m] != expected[m]
        }
        assert not wrong, f"profiles (orders, yen) not as placed after 60s: {wrong}"
    finally:
        client.close()


def duplicates(ids: Iterable[str]) -> int:
    return sum(n - 1 for n in Counter(ids).values())


# --- notifications -------------------------------------------------------------------

LINE_CUSTOMERS = tuple(f"c-line-{n}" for n in range(4))


class Requests:
    """Notification requests produced next to the shop's orders, one per batch."""

    def __init__(self, settings: Settings) -> None:
        self.topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
        self.producer: Producer = create_producer(settings.kafka, log_level=0)
        self.ids: list[str] = []

    def send(self, sequence: int) -> None:
        notification_id = f"n-{sequence}"
        customer_id = LINE_CUSTOMERS[len(self.ids) % len(LINE_CUSTOMERS)]
        request = SendNotification(
            notification_id=notification_id,
            customer_id=customer_id,
            purpose=Purpose.MARKETING,
            channels=(Channel.LINE,),
            template="cart_abandoned",
            data=CART_DATA,
            requested_at=datetime.now(UTC),
        )
        self.producer.produce(self.topic, key=customer_id.encode(), value=encode(request))
        self.producer.poll(0)
        self.ids.append(notification_id)

    def flush(self) -> None:
        assert self.producer.flush(120) == 0, "notification requests not acknowledged"


def line_followers(settings: Settings) -> None:
    """The LINE customers followed the shop and opted in, as identity would report."""
    producer = create_producer(settings.kafka)
    topic = CUSTOMER_EVENTS.name(settings.namespace)
    for customer_id in LINE_CUSTOMERS:
        for event in (line_followed(), consent(True, Channel.LINE)):
            item = CustomerEvent(
                customer_id=customer_id,
                identity_version=1,
                resolved_at=datetime.now(UTC),
                event=event,
            )
            producer.produce(topic, key=customer_id.encode(), value=encode(item))
    assert producer.flush(10) == 0
    client = redis.Redis.from_url(settings.redis)
    try:
        wait_until(
            lambda: all(
                len(client.hgetall(f"{settings.namespace}:notifier:c:{c}")) >= 3
                for c in LINE_CUSTOMERS
            ),
            60,
            "the notifier knows the LINE customers",
        )
    finally:
        client.close()


def assert_each_notification_sent_once(
    settings: Settings, requests: Requests, line: ThreadedFake, timeout: float = 90
) -> str:
    requests.flush()
    keys = {retry_key(n) for n in requests.ids}
    fake = line.fake
    wait_until(lambda: keys <= fake.accepted_keys, timeout, "LINE got every notification")
    time.sleep(3)  # a second send would come now
    accepted = Counter(s.headers["X-Line-Retry-Key"] for s in fake.seen if s.answered == 200)
    answers: dict[str, list[int]] = {}
    for push in fake.seen:
        answers.setdefault(push.headers["X-Line-Retry-Key"], []).append(push.answered)
    assert set(answers) == keys, "a push carried another retry key: LINE would send it twice"
    assert accepted == Counter(keys), {k: a for k, a in answers.items() if accepted[k] != 1}
    outcomes = [
        decode(NOTIFICATIONS_OUTCOMES.adapter, m.value())
        for m in read_topic(
            settings.kafka,
            NOTIFICATIONS_OUTCOMES.name(settings.namespace),
            lambda got: len(got) >= len(keys),
        )
    ]
    assert {(o.notification_id, o.status) for o in outcomes} == {(n, "sent") for n in requests.ids}
    answers = Counter(s.answered for s in fake.seen)
    return (
        f"{len(keys)} notifications in {len(fake.seen)} pushes {dict(answers)},"
        f" {duplicates(o.notification_id for o in outcomes)} outcomes repeated"
    )
