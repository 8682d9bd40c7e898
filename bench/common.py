"""Shared bench plumbing: a throwaway namespace, a worker process, its metrics, and the
machine-readable results every bench appends next to what it prints.

Results: when ``KIZUNA_BENCH_RESULTS`` names a file (``make bench`` sets it), each
:func:`record` call appends one JSON line ``{bench, figure, value, unit, target, note}``;
``bench/report.py`` turns the lines into ``bench/results/latest.{md,json}``. Without the
variable a bench only prints, as before.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast

from runtime.kafka import create_producer
from runtime.localstack import free_port
from runtime.redis import create_sync_redis
from runtime.settings import load_settings
from runtime.topics import delete_topics
from schemas.codec import encode
from schemas.customer import CustomerEvent, HeaderList, routing_headers
from schemas.events import RawEvent
from schemas.examples import example_stream

ROOT = Path(__file__).resolve().parent.parent
RESULTS_ENV = "KIZUNA_BENCH_RESULTS"


def record(
    bench: str,
    figure: str,
    value: float,
    unit: str,
    target: str | None = None,
    note: str = "",
) -> None:
    """Append one figure to the run's results file (if any).

    ``target`` is a comparison the figure should meet, e.g. ``">= 20000"`` or ``"<= 1"``
    (same unit as ``value``); the report marks it met or not.
    """
    path = os.environ.get(RESULTS_ENV)
    if not path:
        return
    line = {
        "bench": bench,
        "figure": figure,
        "value": value if math.isfinite(value) else None,
        "unit": unit,
        "target": target,
        "note": note,
    }
    with open(path, "a", encoding="utf-8") as results:
        results.write(json.dumps(line, ensure_ascii=False) + "\n")


class BenchWorker:
    """``python -m <module>`` in a bench namespace, logs to /tmp/<namespace>-<name>.log."""

    def __init__(self, module: str, namespace: str, partitions: int, **env: str) -> None:
        self.port = free_port()
        self.log = Path(f"/tmp/{namespace}-{module.rsplit('.', 1)[-1]}.log")
        self.data_dir = Path(f"/tmp/{namespace}")  # faust's tables and offsets
        environment = dict(
            os.environ,
            KIZUNA_NAMESPACE=namespace,
            KIZUNA_PARTITIONS=str(partitions),
            KIZUNA_WEB_PORT=str(self.port),
            KIZUNA_DATA_DIR=str(self.data_dir),
            KIZUNA_LOG_LEVEL="WARNING",
            **env,
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module], cwd=ROOT, env=environment, stdout=log, stderr=log
            )

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            return str(r.read().decode())

    def total(self, name: str, labels: str = "") -> float:
        """Sum of every sample of ``name`` whose label set contains ``labels`` (all label
        sets when empty); 0 while the worker starts."""
        try:
            text = self.metrics()
        except OSError:
            return 0.0
        pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", re.M)
        return sum(float(v) for found, v in pattern.findall(text) if labels in found)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until ``/health`` answers 200 (faust: partitions assigned, not rebalancing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"worker exited, see {self.log}")
            try:
                url = f"http://127.0.0.1:{self.port}/health"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"worker not ready in {timeout}s, see {self.log}")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def wait_for(self, name: str, at_least: float, timeout: float = 900.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"worker exited, see {self.log}")
            if (value := self.total(name)) >= at_least:
                return value
            time.sleep(0.2)
        raise SystemExit(f"{name} did not reach {at_least} in {timeout}s, see {self.log}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def produce_waiting(
    producer: Any,
    topic: str,
    key: bytes | None,
    value: bytes,
    partition: int | None = None,
    headers: HeaderList | None = None,
) -> None:
    """Produce one message; while librdkafka's local queue is full, wait for deliveries."""
    extra: dict[str, Any] = {} if partition is None else {"partition": partition}
    if headers is not None:
        extra["headers"] = headers
    while True:
        try:
            producer.produce(topic, key=key, value=value, **extra)
            return
        except BufferError:
            producer.poll(0.1)


def customer_events(
    events: int, customers: int, *, end: datetime | None = None
) -> Iterator[tuple[bytes, bytes, HeaderList]]:
    """The realistic mixed stream (``schemas.examples`` proportions) as customer.events
    messages (key, value, the routing headers identity writes), re-keyed to ``customers``
    customers, one a second, the last one at ``end`` (default: now)."""
    now = end or datetime.now(UTC)
    for index, event in enumerate(example_stream(events, seed=7)):
        customer = f"c{index % customers}"
        shifted = event.model_copy(update={"occurred_at": now - timedelta(seconds=events - index)})
        wrapped = CustomerEvent(
            customer_id=customer, identity_version=1, resolved_at=now, event=shifted
        )
        yield customer.encode(), encode(wrapped), routing_headers(cast(RawEvent, shifted))


def produce_customer_events(
    namespace: str, bootstrap: str, events: int, customers: int, *, end: datetime | None = None
) -> None:
    """:func:`customer_events` to ``customer.events`` partition 0."""
    producer = create_producer(bootstrap, **{"linger.ms": 20, "batch.num.messages": 10000})
    topic = f"{namespace}.customer.events"
    for key, value, headers in customer_events(events, customers, end=end):
        produce_waiting(producer, topic, key, value, 0, headers)
    producer.flush(60)


class NoDeadLetters:
    """A dead-letter sink for an in-process bench whose input is valid: one is a bug."""

    async def send(self, letter: Any) -> None:
        raise AssertionError(f"the workload is valid, yet: {letter.error}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread: librdkafka's too) ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Steady(NamedTuple):
    rate: float  # events/s
    started: float  # time.monotonic() of the first poll that found the worker started
    counted: float  # what the worker had counted by then


def steady_rate(
    bench: str,
    count: Callable[[], float],
    total: float,
    pid: int,
    *,
    poll: float = 0.5,
    timeout: float = 900,
) -> Steady:
    """A worker's events/s (and its CPU figures) while it works through ``total`` events
    already waiting for it: ``count()`` (its own counter, read from /metrics) is polled
    every ``poll`` seconds, and the rate is taken between the first poll that finds it
    started and the last poll before it finished. Polls are far apart (each /metrics
    page costs the worker CPU; Prometheus scrapes every 15 s), yet neither the wait for
    its first batch nor the idle time after its last one counts: ending at the first
    poll that found it done counted up to a whole ``poll`` of idle time (0.5 s against a
    ~2-second segmenter run)."""
    deadline = time.monotonic() + timeout
    samples: list[tuple[float, float, float]] = []  # (time, count, worker CPU seconds)
    while time.monotonic() < deadline:
        try:
            done = count()
        except OSError:  # not serving yet
            done = 0.0
        at, cpu = time.monotonic(), cpu_seconds(pid)
        if done >= total:
            if not samples:
                raise SystemExit("the worker finished between two polls: give it more events")
            if len(samples) == 1:  # a short run: end at this poll, idle tail and all
                samples.append((at, done, cpu))
            (t0, n0, c0), (t1, n1, c1) = samples[0], samples[-1]
            print(f"{'rate measured over (s, events)':40} {t1 - t0:9.1f}s {n1 - n0:10,.0f}")
            cpu_figures(bench, c1 - c0, t1 - t0, int(n1 - n0))
            return Steady((n1 - n0) / (t1 - t0), t0, n0)
        if done > 0:
            samples.append((at, done, cpu))
        time.sleep(poll if samples else min(poll, 0.05))  # (its start: caught closely)
    raise SystemExit(f"the worker did not get through {total:,.0f} events in {timeout:.0f}s")


def cpu_figures(bench: str, cpu: float, wall: float, events: int) -> None:
    """Print and record what a worker's CPU says about its rate: µs of CPU per event
    (1,000,000 / it is the rate one busy core could reach) and how busy its core was
    (well under 100 %: it waited on Kafka or Redis; near: CPU-bound)."""
    per_event = cpu / max(events, 1) * 1e6
    busy = cpu / wall if wall > 0 else math.nan
    print(f"{'worker CPU per event (µs)':40} {per_event:12,.1f}")
    print(f"{'worker busy (share of one core)':40} {busy:12.0%}")
    record(bench, "worker CPU per event", per_event, "µs", note="user + system, all threads")
    record(bench, "worker busy (share of one core)", busy * 100, "%")


def in_process_figures(
    bench: str, events: int, cpu: float, wall: float, note: str, rate: str = "events/s"
) -> None:
    """Print and record an in-process run's rate and CPU per event (Kafka left out)."""
    per_event = cpu / max(events, 1) * 1e6
    print(f"{rate + ' (in-process)':40} {events / wall:12,.0f}")
    print(f"{'CPU per event (µs)':40} {per_event:12.1f}")
    record(bench, "in-process CPU per event", per_event, "µs", note=note)


class CountingEmitter:
    """A worker's emitter in an in-process bench: what it would send is counted by kind
    (``sent``), not sent; each send is "acknowledged" at once (a unit of work waits for
    the acknowledgements before it writes its rows)."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    async def segment_changed(self, change: Any) -> Awaitable[Any]:
        return self._count("segment_changed")

    async def request(self, request: Any) -> Awaitable[Any]:
        return self._count("request")

    async def conversion(self, conversion: Any) -> Awaitable[Any]:
        return self._count("conversion")

    async def control(self, partition: int, key: str, message: Any, *, wait: bool = False) -> None:
        self.sent["control"] += 1

    def _count(self, kind: str) -> Awaitable[None]:
        self.sent[kind] += 1
        return _acknowledged()


async def _acknowledged() -> None:
    return None


def clean_up(admin: Any, namespace: str) -> None:
    """Drop a bench namespace: its topics (faust's internal ones too), Redis keys, data."""
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(namespace)]
    delete_topics(admin, names)
    drop_redis_keys(namespace)
    shutil.rmtree(f"/tmp/{namespace}", ignore_errors=True)


def drop_redis_keys(namespace: str, redis_url: str | None = None) -> None:
    """Delete a bench namespace's Redis keys (``redis_url``: else the settings' Redis)."""
    settings = load_settings()
    if redis_url is not None:
        settings = settings.model_copy(update={"redis": redis_url})
    redis = create_sync_redis(settings)
    for batch in chunks(redis.scan_iter(match=f"{namespace}:*", count=5000), 5000):
        redis.delete(*batch)
    redis.close()


def chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def histogram(text: str, name: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) pairs of a Prometheus histogram."""
    pattern = re.compile(
        rf'^{re.escape(name)}_bucket\{{[^}}]*le="([^"]+)"[^}}]*\}} ([0-9.e+-]+)$', re.M
    )
    pairs = [
        (float("inf") if le == "+Inf" else float(le), float(n)) for le, n in pattern.findall(text)
    ]
    return sorted(pairs)


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Linear interpolation inside the bucket holding the q-th observation (as PromQL)."""
    total = buckets[-1][1] if buckets else 0.0
    if total == 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return lower


def serve_providers(port: int, delay_s: float = 0.0) -> None:
    """Fake LINE push + FCM v1 endpoints answering 200, for the notifier benches (run it
    in its own process), after ``delay_s`` (a remote provider's latency). uvloop, like the
    workers: the providers are remote in production, so the less of the shared cores
    they take here, the truer the figure."""
    import asyncio

    import uvloop
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        if delay_s:
            await asyncio.sleep(delay_s)
        return web.json_response({"name": "projects/p/messages/1"})

    app = web.Application()
    app.router.add_post("/v2/bot/message/push", ok)
    app.router.add_post("/v1/projects/{project}/messages:send", ok)
    web.run_app(
        app, host="127.0.0.1", port=port, print=None, access_log=None, loop=uvloop.new_event_loop()
    )
