"""Notifier throughput: one real worker (python -m services.notifier) over Kafka + Redis.

    python bench/notifier_worker.py [--n 20000] [--customers 5000] [--partitions 4]

Unlike bench/notifier.py (the delivery engine in-process), this runs the whole worker:
SendNotification requests are produced to notifications.requested, one notifier worker
process consumes them, claims, renders, rate-limits and POSTs each to local fake LINE /
FCM servers (a separate process, half each), and produces a NotificationOutcome.
Consent and contact points are seeded in Redis beforehand the way bench/notifier.py does.
A warm-up batch runs first (connections, templates, consumer assignment). Prints
notifications/s between the first and last outcome (their Kafka timestamps) and from the
start of producing to the last outcome, outcome status counts, the provider latency
the outcomes carry (p50/p99), and the worker's CPU time per notification over the timed
part (from /proc: steadier than the rate on a machine shared with other work). Provider
rate limits are off unless --line-rate/--fcm-rate. --provider-delay-ms makes the fake
providers answer that much later (LINE and FCM are ~30-100 ms away in production): then
the sends in flight (KIZUNA_NOTIFIER_CONCURRENCY), not CPU, set the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis
from common import produce_waiting, record, serve_providers
from confluent_kafka import Consumer
from notifier import DATA, T0, seed  # bench/notifier.py (bench/ is on sys.path)

from runtime.kafka import create_admin, create_consumer, create_producer
from runtime.localstack import free_port
from runtime.redis import create_redis
from runtime.settings import load_settings
from runtime.topics import delete_topics, ensure_topics
from schemas.channels import Channel, Purpose
from schemas.codec import encode
from schemas.notifications import SendNotification
from schemas.topics import CATALOGUE, NOTIFICATIONS_OUTCOMES, NOTIFICATIONS_REQUESTED
from services.notifier.adapters.ledger import LedgerStore

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_AUTH = "bench"  # the fake providers accept anything


def requests(run: str, count: int, customers: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of ``count`` marketing sends, LINE and push alternating."""
    for i in range(count):
        customer = f"c-{i % customers}"
        request = SendNotification(
            notification_id=f"{run}-{i}",
            customer_id=customer,
            purpose=Purpose.MARKETING,
            channels=(Channel.LINE if i % 2 else Channel.PUSH,),
            template="cart_abandoned",
            data=DATA,
            requested_at=T0,
        )
        yield customer.encode(), encode(request)


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = create_producer(bootstrap, **{"linger.ms": 20, "batch.num.messages": 10000})
    for key, value in messages:
        produce_waiting(producer, topic, key, value)
    assert producer.flush(60) == 0


@dataclass
class Outcomes:
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    first_ts_ms: int = 0
    last_ts_ms: int = 0
    last_seen: float = 0.0


def drain(consumer: Consumer, count: int, timeout: float) -> Outcomes:
    """Read ``count`` outcomes: statuses, provider latencies, Kafka timestamps (ms)."""
    seen, got = Outcomes(), 0
    deadline = time.monotonic() + timeout
    while got < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{got}/{count} outcomes; statuses so far {dict(seen.statuses)}")
        for message in consumer.consume(1000, 1.0):
            if message.error():
                continue
            outcome = orjson.loads(message.value() or b"{}")
            seen.statuses[outcome["status"]] += 1
            if outcome.get("provider_latency_ms") is not None:
                seen.latencies_ms.append(outcome["provider_latency_ms"])
            stamp = message.timestamp()[1]
            seen.first_ts_ms = min(seen.first_ts_ms or stamp, stamp)
            seen.last_ts_ms = max(seen.last_ts_ms, stamp)
            got += 1
    seen.last_seen = time.time()
    return seen


def percentile(values: array[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def worker_env(args: argparse.Namespace, namespace: str, provider: str) -> dict[str, str]:
    return dict(
        os.environ,
        KIZUNA_KAFKA=args.kafka,
        KIZUNA_REDIS=args.redis,
        KIZUNA_NAMESPACE=namespace,
        KIZUNA_WEB_PORT=str(args.web_port),
        KIZUNA_PARTITIONS=str(args.partitions),
        KIZUNA_LOG_LEVEL="WARNING",
        KIZUNA_DATA_DIR=f"/tmp/kizuna-bench/{namespace}",
        KIZUNA_NOTIFIER_DRY_RUN="false",
        KIZUNA_NOTIFIER_LINE_BASE_URL=provider,
        KIZUNA_NOTIFIER_LINE_CHANNEL_TOKEN=PROVIDER_AUTH,
        KIZUNA_NOTIFIER_FCM_BASE_URL=provider,
        KIZUNA_NOTIFIER_FCM_PROJECT="bench",
        KIZUNA_NOTIFIER_FCM_TOKEN=PROVIDER_AUTH,
        KIZUNA_NOTIFIER_LINE_RATE_PER_S=str(args.line_rate),
        KIZUNA_NOTIFIER_FCM_RATE_PER_S=str(args.fcm_rate),
        KIZUNA_NOTIFIER_MARKETING_CAP_PER_DAY="0",  # several sends per customer, on purpose
    )


def wait_ready(worker: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"worker not ready in {timeout}s: {log.read_text()[-2000:]}")


async def seed_customers(args: argparse.Namespace, namespace: str) -> None:
    settings = load_settings(kafka=args.kafka, redis=args.redis, namespace=namespace)
    client = create_redis(settings)
    await seed(LedgerStore(client, namespace), args.customers)
    await client.aclose()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def report(args: argparse.Namespace, started: float, seen: Outcomes, cpu_s: float | None) -> None:
    span = (seen.last_ts_ms - seen.first_ts_ms) / 1000
    total = seen.last_ts_ms / 1000 - started
    print(
        f"notifier worker bench: {args.n} notifications, {args.customers} customers, "
        f"{args.partitions} partitions, 1 worker, LINE/FCM half each, "
        f"rates line={args.line_rate or 'unlimited'} fcm={args.fcm_rate or 'unlimited'}, "
        f"provider latency +{args.provider_delay_ms:g} ms"
    )
    print(f"{'notifications/s first->last outcome':44} {(args.n - 1) / span:10,.0f}")
    print(f"{'notifications/s produce start->last outcome':44} {args.n / total:10,.0f}")
    print(f"{'outcome statuses':44} {dict(seen.statuses)}")
    print(
        f"{'provider latency ms p50 / p99':44} "
        f"{percentile(seen.latencies_ms, 0.5):10.2f} / {percentile(seen.latencies_ms, 0.99):.2f}"
        f"  ({len(seen.latencies_ms)} outcomes carry it)"
    )
    if cpu_s is not None:
        busy = cpu_s / (seen.last_seen - started)
        print(
            f"{'worker CPU µs/notification (busy share)':44} "
            f"{cpu_s / args.n * 1e6:10,.0f}  ({busy:.0%} of one core)"
        )
    setup = (
        f"{args.n:,} requests, {args.partitions} partitions, 1 worker process, "
        f"providers +{args.provider_delay_ms:g} ms"
    )
    name = "notifier_worker"
    rate = (args.n - 1) / span
    record(name, "notifications/s, first->last outcome", rate, "notifications/s", ">= 2000", setup)
    record(name, "notifications/s, produce start->last outcome", args.n / total, "notifications/s")
    note = f"statuses {dict(seen.statuses)}"
    record(name, "provider latency p50", percentile(seen.latencies_ms, 0.5), "ms", None, note)
    record(name, "provider latency p99", percentile(seen.latencies_ms, 0.99), "ms", None, note)
    if cpu_s is not None:
        record(name, "worker CPU per notification", cpu_s / args.n * 1e6, "µs")


def run(args: argparse.Namespace, namespace: str, provider: str) -> None:
    requested = NOTIFICATIONS_REQUESTED.name(namespace)
    asyncio.run(seed_customers(args, namespace))
    out = create_consumer(args.kafka, f"{namespace}-bench-out")
    out.subscribe([NOTIFICATIONS_OUTCOMES.name(namespace)])
    log = Path("/tmp") / f"{namespace}-notifier.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "services.notifier"],
        cwd=ROOT,
        env=worker_env(args, namespace, provider),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(worker, args.web_port, log, 90)
        produce(args.kafka, requested, list(requests("warm", args.warm, args.customers)))
        drain(out, args.warm, args.timeout)
        timed = list(requests("run", args.n, args.customers))
        cpu_before = cpu_seconds(worker.pid)
        started = time.time()
        produce(args.kafka, requested, timed)
        del timed
        seen = drain(out, args.n, args.timeout)
        cpu_after = cpu_seconds(worker.pid)
        cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        report(args, started, seen, cpu)
    finally:
        worker.terminate()
        worker.wait(30)
        out.close()


def cleanup(args: argparse.Namespace, namespace: str) -> None:
    admin = create_admin(args.kafka)
    ours = {spec.name(namespace) for spec in CATALOGUE}
    # plus faust's own (e.g. <namespace>-notifier-__assignor-__leader)
    ours |= {t for t in admin.list_topics(timeout=30).topics if t.startswith(f"{namespace}-")}
    delete_topics(admin, sorted(ours))
    client = redis.Redis.from_url(args.redis)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=5000))
    for start in range(0, len(keys), 5000):
        client.delete(*keys[start : start + 5000])
    client.close()
    shutil.rmtree(f"/tmp/kizuna-bench/{namespace}", ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--warm", type=int, default=1_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--line-rate", type=float, default=0.0, help="req/s, 0 = unlimited")
    parser.add_argument("--fcm-rate", type=float, default=0.0, help="req/s, 0 = unlimited")
    parser.add_argument(
        "--provider-delay-ms", type=float, default=0.0, help="the fake providers' latency"
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--web-port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--kafka", default=os.environ.get("KIZUNA_KAFKA", "127.0.0.1:19092"))
    parser.add_argument(
        "--redis", default=os.environ.get("KIZUNA_REDIS", "redis://127.0.0.1:16379/0")
    )
    args = parser.parse_args()
    args.web_port = args.web_port or free_port()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    ensure_topics(create_admin(args.kafka), namespace, partitions=args.partitions)
    port = free_port()
    delay_s = args.provider_delay_ms / 1000
    server = multiprocessing.Process(target=serve_providers, args=(port, delay_s), daemon=True)
    server.start()
    try:
        time.sleep(1.0)
        run(args, namespace, f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.join(5)
        cleanup(args, namespace)


if __name__ == "__main__":
    main()
