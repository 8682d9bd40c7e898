"""Every kizuna worker as a real process on one fresh namespace, after a little traffic.

The workers run once per module (starting them is the slow part); the namespace, topics
and Redis keys are this module's own and are removed afterwards.
"""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import AdminClient

from runtime.kafka import create_admin, create_producer
from runtime.localstack import StackAddress
from runtime.settings import Settings
from runtime.topics import delete_topics, ensure_topics
from schemas.channels import Channel, Purpose
from schemas.codec import encode
from schemas.notifications import SendNotification
from schemas.topics import CUSTOMER_EVENTS, NOTIFICATIONS_REQUESTED, RAW_WEB
from tests.integration.conftest import Worker

ROOT = Path(__file__).resolve().parents[3]
WRITE_KEY = "wk_observability"
# Input topics that get one undecodable message, so dead-letter metrics carry labels.
GARBAGE_TOPICS = (RAW_WEB, CUSTOMER_EVENTS, NOTIFICATIONS_REQUESTED)


def worker_names() -> list[str]:
    """Every ``services/<name>/`` that ``python -m services.<name>`` starts (journey too,
    as soon as its ``__main__.py`` lands)."""
    return sorted(main.parent.name for main in (ROOT / "services").glob("*/__main__.py"))


@dataclass
class Fleet:
    settings: Settings
    workers: dict[str, Worker] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def worker(self, name: str) -> Worker:
        if name in self.failures:
            pytest.fail(f"{name} did not start: {self.failures[name]}")
        return self.workers[name]


def segment_batch() -> bytes:
    """Two good calls (identify with an email, an order) and one without any identity."""
    at = "2026-11-20T10:00:00+09:00"
    order = {"order_id": "o-1", "total": 2160, "products": [{"product_id": "tea", "price": 1080}]}
    calls = [
        {"type": "identify", "userId": "M1", "anonymousId": "a-1", "traits": {"email": "a@ex.jp"}},
        {"type": "track", "userId": "M1", "event": "Order Completed", "properties": order},
        {"type": "track", "event": "Product Viewed", "properties": {"product_id": "tea"}},
    ]
    batch = [{**call, "messageId": uuid.uuid4().hex, "timestamp": at} for call in calls]
    return json.dumps({"batch": batch}).encode()


def post_to_gateway(port: int) -> None:
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/batch",
        data=segment_batch(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
    )
    try:
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310  (http://127.0.0.1)
    except urllib.error.HTTPError as error:  # a partly rejected batch may answer 400
        error.close()


def unconsented_request() -> SendNotification:
    """A marketing message to a customer who never opted in: the notifier suppresses it."""
    return SendNotification(
        notification_id=f"n-{uuid.uuid4().hex}",
        customer_id="c-observability",
        purpose=Purpose.MARKETING,
        channels=(Channel.LINE, Channel.EMAIL),
        template="cart_abandoned",
        requested_at=datetime.now(UTC),
    )


def drive_traffic(fleet: Fleet) -> None:
    namespace = fleet.settings.namespace
    producer = create_producer(fleet.settings.kafka)
    for spec in GARBAGE_TOPICS:
        producer.produce(spec.name(namespace), key=b"k", value=b"{not json")
    request = unconsented_request()
    producer.produce(
        NOTIFICATIONS_REQUESTED.name(namespace),
        key=request.customer_id.encode(),
        value=encode(request),
    )
    assert producer.flush(10) == 0
    if "gateway" in fleet.workers:
        post_to_gateway(fleet.workers["gateway"].port)


def wait_for_processing(fleet: Fleet, timeout: float = 45.0) -> None:
    """Until every consuming worker has counted a message (or the time is up: the
    metrics are checked either way; an idle registry is still live output)."""
    deadline = time.monotonic() + timeout
    waiting = {name for name in fleet.workers if name != "gateway"}
    while waiting and time.monotonic() < deadline:
        waiting = {name for name in waiting if not own_samples(name, fleet.workers[name])}
        time.sleep(0.5)


def own_samples(service: str, worker: Worker) -> list[str]:
    """``kizuna_<service>_*`` sample lines: the service's own metrics module at work."""
    return re.findall(rf"^kizuna_{service}_[a-z0-9_]+.*$", worker.metrics(), flags=re.MULTILINE)


def namespace_topics(admin: AdminClient, namespace: str) -> list[str]:
    """The catalogue under ``namespace`` and what the workers declared (changelogs, the
    segmenter's control topic, faust's leader topics)."""
    names = admin.list_topics(timeout=10).topics
    return [name for name in names if name.startswith((f"{namespace}.", f"{namespace}-"))]


@pytest.fixture(scope="module")
def fleet(stack: StackAddress, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("observability")
    settings = Settings(
        kafka=stack.kafka,
        redis=stack.redis,
        namespace=f"t{uuid.uuid4().hex[:12]}",
        partitions=2,
        data_dir=str(tmp / "faust"),
        log_format="console",
    )
    admin = create_admin(settings.kafka)
    ensure_topics(admin, settings.namespace, partitions=settings.partitions)
    fleet = Fleet(settings)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KIZUNA_GATEWAY_WRITE_KEYS", json.dumps({WRITE_KEY: "web"}))
        for name in worker_names():
            fleet.workers[name] = Worker(f"services.{name}", settings, tmp / f"{name}.log")
    for name, worker in list(fleet.workers.items()):
        try:
            worker.wait_ready(timeout=120)
        except AssertionError as error:
            fleet.failures[name] = str(error)
            worker.stop()
            del fleet.workers[name]
    drive_traffic(fleet)
    wait_for_processing(fleet)
    yield fleet
    for worker in fleet.workers.values():
        worker.stop()
    delete_topics(admin, namespace_topics(admin, settings.namespace))
    client = redis.Redis.from_url(settings.redis)
    keys = list(client.scan_iter(match=f"{settings.namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
