"""Integration fixtures: fresh topics per test, Kafka clients, faust workers as processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, Producer

from runtime.kafka import create_admin, create_consumer, create_producer
from runtime.localstack import free_port
from runtime.settings import Settings
from runtime.topics import delete_topics, ensure_topics
from schemas.topics import CATALOGUE
from simulator.observe import Scrape, parse

ROOT = Path(__file__).resolve().parents[2]
WORKERS = pytest.StashKey[list["Worker"]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report ends with the tail of each worker's log: on CI the log
    files are gone with the run, and a worker that stalled says where only there."""
    report = yield
    if report.failed and call.when == "call":
        for worker in item.stash.get(WORKERS, []):
            report.sections.append((f"worker log {worker.log_path.name}", worker.log_tail(60)))
    return report


@pytest.fixture
def topics(settings: Settings) -> Iterator[list[str]]:
    """The whole catalogue, created fresh under this test's namespace, deleted after."""
    admin = create_admin(settings.kafka)
    ensure_topics(admin, settings.namespace, partitions=settings.partitions)
    names = [spec.name(settings.namespace) for spec in CATALOGUE]
    yield names
    delete_topics(admin, names)


@pytest.fixture
def producer(settings: Settings) -> Iterator[Producer]:
    producer = create_producer(settings.kafka)
    yield producer
    producer.flush(10)


@pytest.fixture
def consumer_factory(settings: Settings) -> Iterator[Callable[..., Consumer]]:
    made: list[Consumer] = []

    def make(*topic_names: str) -> Consumer:
        consumer = create_consumer(settings.kafka, f"{settings.namespace}-test-{len(made)}")
        consumer.subscribe(list(topic_names))
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        consumer.close()


def consume(consumer: Consumer, count: int, timeout: float = 30.0) -> list[Any]:
    """Poll until ``count`` messages arrived (or fail with what did arrive)."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            raise AssertionError(f"consumer error: {message.error()}")
        got.append(message)
    assert len(got) >= count, f"expected {count} messages within {timeout}s, got {len(got)}"
    return got


def wait_until(
    check: Callable[[], bool], timeout: float = 30.0, what: str | Callable[[], str] = "condition"
) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` (a callable: said at the end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    said = what() if callable(what) else what
    raise AssertionError(f"not within {timeout:.0f}s: {said}")


def wait_for_metric(
    workers: Worker | Sequence[Worker],
    name: str,
    value: float,
    timeout: float = 30.0,
    **labels: str,
) -> None:
    """Wait until a metric, summed over the samples with ``labels`` of every worker given,
    reaches ``value``."""
    every = [workers] if isinstance(workers, Worker) else list(workers)
    seen: list[float] = []

    def reached() -> bool:
        total = sum(Scrape(parse(w.metrics())).total(name, **labels) or 0.0 for w in every)
        seen[:] = [total]
        return total >= value

    wait_until(reached, timeout, lambda: f"{name} stayed at {seen}, wanted {value}")


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis)
    yield client
    keys = list(client.scan_iter(match=f"{settings.namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


class Worker:
    """A service worker as a real process (``python -m <module>``), ready when /health is 200."""

    def __init__(self, module: str, settings: Settings, log_path: Path) -> None:
        self.port = free_port()
        env = dict(os.environ)
        for field in ("kafka", "redis", "namespace", "data_dir", "log_format"):
            env[f"KIZUNA_{field.upper()}"] = str(getattr(settings, field))
        env["KIZUNA_PARTITIONS"] = str(settings.partitions or "")
        env["KIZUNA_WEB_PORT"] = str(self.port)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout}s: {self.log_tail()}")

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def worker_factory(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], Worker]]:
    started: list[Worker] = []
    request.node.stash[WORKERS] = started

    def start(module: str) -> Worker:
        worker = Worker(
            module, settings, tmp_path / f"{module.rsplit('.', 1)[-1]}-{len(started)}.log"
        )
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
