"""One deployment of the stateful services on 4-partition topics: N worker processes per
service, each service in its own namespace so that every service sees exactly the
inputs the test gives it (identity's output does not reach the segmenter here)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from confluent_kafka import Consumer, Producer

from runtime.kafka import create_admin, create_consumer
from runtime.settings import Settings
from runtime.topics import delete_topics, ensure_topics
from schemas.codec import decode
from schemas.topics import CATALOGUE, CUSTOMER_EVENTS, RAW_WEB, TopicSpec
from tests.integration.conftest import Worker
from tests.integration.scaling.stories import PARTITIONS

# service -> (module, the topic whose partitions it must split)
SERVICES = {
    "identity": ("services.identity", RAW_WEB),
    "segmenter": ("services.segmenter", CUSTOMER_EVENTS),
    "journey": ("services.journey", CUSTOMER_EVENTS),
}


@dataclass
class Service:
    name: str
    settings: Settings
    workers: list[Worker] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    def topic(self, spec: TopicSpec) -> str:
        return spec.name(self.namespace)

    def assignments(self) -> list[set[int]]:
        """Partitions of the service's input topic each worker holds (per /health)."""
        _, spec = SERVICES[self.name]
        topic = self.topic(spec)
        held = []
        for worker in self.workers:
            health = _get_json(worker.port, "/health")
            held.append(
                {
                    int(tp.rsplit(":", 1)[1])
                    for tp in health["assigned"]
                    if tp.startswith(topic + ":")
                }
            )
        return held

    def consumed(self) -> list[float]:
        """Messages each worker read from its topics (kizuna_messages_consumed_total)."""
        return [
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in w.metrics().splitlines()
                if line.startswith("kizuna_messages_consumed_total{")
            )
            for w in self.workers
        ]


def _get_json(port: int, path: str) -> Any:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:  # 503 while rebalancing still carries the body
        return json.loads(err.read())


def wait_until_shared(service: Service, timeout: float = 180.0) -> list[set[int]]:
    """Until the workers hold disjoint, non-empty shares that cover every partition."""
    deadline = time.monotonic() + timeout
    held: list[set[int]] = []
    while time.monotonic() < deadline:
        try:
            held = service.assignments()
        except (OSError, ValueError):
            held = []
        covered = set().union(*held) if held else set()
        disjoint = sum(len(h) for h in held) == len(covered)
        if held and all(held) and disjoint and covered == set(range(PARTITIONS)):
            return held
        time.sleep(0.5)
    logs = "\n".join(w.log_tail(15) for w in service.workers)
    raise AssertionError(f"{service.name}: partitions never shared out, last {held}\n{logs}")


class Deployment:
    """Namespaces, topics and worker processes of one run; ``close`` removes them all."""

    def __init__(self, label: str, base: Settings, workers: int, logs: Path) -> None:
        self.label, self.base, self.logs = label, base, logs
        self.services = {
            name: Service(name, self._settings(f"{base.namespace}-{label}-{name}"))
            for name in SERVICES
        }
        self._admin = create_admin(base.kafka)
        self._consumers: list[Consumer] = []
        for service in self.services.values():
            ensure_topics(self._admin, service.namespace, partitions=PARTITIONS)
        for name, service in self.services.items():
            module, _ = SERVICES[name]
            for n in range(workers):
                log = logs / f"{label}-{name}-{n}.log"
                service.workers.append(Worker(module, self._settings(service.namespace, n), log))

    def _settings(self, namespace: str, worker: int = 0) -> Settings:
        data_dir = self.logs / "faust" / f"{namespace}-{worker}"
        return self.base.model_copy(
            update={"namespace": namespace, "partitions": PARTITIONS, "data_dir": str(data_dir)}
        )

    def __getitem__(self, name: str) -> Service:
        return self.services[name]

    def start(self) -> dict[str, list[set[int]]]:
        for service in self.services.values():
            for worker in service.workers:
                worker.wait_ready(timeout=120)
        return {name: wait_until_shared(s) for name, s in self.services.items()}

    def consumer(self, service: str, spec: TopicSpec) -> Consumer:
        group = f"{self.services[service].namespace}-reader-{len(self._consumers)}"
        consumer = create_consumer(self.base.kafka, group)
        consumer.subscribe([self.services[service].topic(spec)])
        self._consumers.append(consumer)
        return consumer

    def close(self) -> None:
        for service in self.services.values():
            for worker in service.workers:
                worker.stop()
        for consumer in self._consumers:
            consumer.close()
        names = [spec.name(s.namespace) for s in self.services.values() for spec in CATALOGUE]
        delete_topics(self._admin, names)
        client = redis.Redis.from_url(self.base.redis)
        for service in self.services.values():
            keys = list(client.scan_iter(match=f"{service.namespace}:*", count=1000))
            if keys:
                client.delete(*keys)
        client.close()


def read_until_quiet(
    consumer: Consumer,
    spec: TopicSpec,
    *,
    at_least: int = 0,
    quiet: float = 3.0,
    timeout: float = 60.0,
) -> list[Any]:
    """Messages decoded with ``spec``: at least ``at_least``, then until ``quiet`` seconds
    pass without one (so late extras and duplicates are caught too)."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and not message.error():
            got.append(decode(spec.adapter, message.value() or b""))
            last = time.monotonic()
        elif len(got) >= at_least and time.monotonic() - last >= quiet:
            return got
    assert len(got) >= at_least, f"expected at least {at_least} on {spec.suffix}, got {len(got)}"
    return got


def flush(producer: Producer) -> None:
    assert producer.flush(15) == 0
