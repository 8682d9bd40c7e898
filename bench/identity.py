"""identity throughput and memory on the real local Kafka + Redis.

    python bench/identity.py [--customers 20000] [--events 60000] [--partitions 4]

One identity worker (a real process) resolves a realistic mix: 70 % events whose
identifiers are already known, 25 % new customers, 5 % that merge two existing ones.
Prints resolved events/s, the same messages read by a bare confluent-kafka consumer
(the machine's ceiling: compare the ratio), and Redis bytes per identifier.

    python bench/identity.py --in-process [--customers 20000] [--events 60000]

The same workload through the resolver in this process (decode, rules, graph, commit on
the real Redis; outputs counted, not sent): its CPU per event and GC time, without
Kafka. Deterministic enough to count instructions with (``bench/instructions.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from common import (
    NoDeadLetters,
    cpu_figures,
    cpu_seconds,
    drop_redis_keys,
    in_process_figures,
    produce_waiting,
    record,
)
from confluent_kafka import Consumer

from runtime.kafka import create_admin, create_consumer, create_producer
from runtime.topics import delete_topics, ensure_topics
from schemas.codec import encode
from schemas.examples import example
from schemas.identifiers import Identifiers
from schemas.topics import CATALOGUE, CUSTOMER_EVENTS, RAW_TOPICS, raw_topic_for

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEMPLATES = {
    k: example(k) for k in ("page_viewed", "product_viewed", "identified", "pos_purchased")
}


def event(kind: str, n: int, minute: float, **ids: str) -> tuple[str, bytes, bytes]:
    at = T0 + timedelta(minutes=minute)
    model = TEMPLATES[kind].model_copy(
        update={
            "event_id": f"b{n}",
            "occurred_at": at,
            "received_at": at,
            "identifiers": Identifiers(**ids),
        }
    )
    return raw_topic_for(kind).suffix, model.identifiers.routing_key().encode(), encode(model)


def workload(customers: int, events: int, seed: int = 1) -> tuple[list, list]:
    rnd = random.Random(seed)
    warm = [
        event(
            "identified",
            i,
            i / 100,
            member_id=f"M{i}",
            anonymous_id=f"ck{i}",
            email=f"u{i}@example.jp",
        )
        for i in range(customers)
    ]
    timed = []
    fresh = customers
    for n in range(events):
        minute = customers / 100 + n / 100
        roll, p = rnd.random(), rnd.randrange(customers)
        if roll < 0.55:
            timed.append(event("page_viewed", customers + n, minute, anonymous_id=f"ck{p}"))
        elif roll < 0.70:
            timed.append(
                event(
                    "product_viewed",
                    customers + n,
                    minute,
                    member_id=f"M{p}",
                    anonymous_id=f"ck{p}",
                )
            )
        elif roll < 0.95:
            fresh += 1
            timed.append(event("page_viewed", customers + n, minute, anonymous_id=f"new{fresh}"))
        else:
            fresh += 1
            timed.append(
                event(
                    "pos_purchased",
                    customers + n,
                    minute,
                    pos_card=f"29{fresh:08d}",
                    email=f"u{p}@example.jp",
                )
            )
    return warm, timed


def produce(bootstrap: str, namespace: str, messages: list) -> None:
    producer = create_producer(bootstrap, **{"linger.ms": 20, "batch.num.messages": 10000})
    for suffix, key, value in messages:
        produce_waiting(producer, f"{namespace}.{suffix}", key, value)
    assert producer.flush(60) == 0


def drain(consumer: Consumer, count: int, timeout: float = 600) -> tuple[float, float]:
    """Read ``count`` messages; (time of the first, time of the last)."""
    got, first, deadline = 0, 0.0, time.monotonic() + timeout
    while got < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{got}/{count} messages")
        for message in consumer.consume(1000, 1.0):
            if message.error():
                continue
            if got == 0:
                first = time.perf_counter()
            got += 1
    return first, time.perf_counter()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.identity"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def memory_by_kind(client: redis.Redis, namespace: str) -> tuple[dict[str, int], int]:
    """Bytes (MEMORY USAGE) by key kind: index buckets, customers, other."""
    totals: dict[str, int] = {"index": 0, "customers": 0, "other": 0}
    keys = list(client.scan_iter(match=f"{namespace}:id:*", count=5000))
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.memory_usage(key, samples=0)
        for key, used in zip(chunk, pipe.execute(), strict=True):
            kind = {b"n": "index", b"c": "customers"}.get(key.split(b":")[2], "other")
            totals[kind] += used or 0
    identifiers = int(client.hget(f"{namespace}:id:stats", "identifiers") or 0)
    return totals, identifiers


class _CountingSink:
    """The resolver's outputs, counted instead of sent."""

    def __init__(self) -> None:
        self.messages = 0

    def produce(self, topic: str, key: bytes | None, value: bytes, **_: Any) -> None:
        self.messages += 1

    async def flush(self) -> None:
        return None


async def in_process(customers: int, events: int, redis_url: str, build_only: bool) -> None:
    """The workload through ``Resolver.handle`` in batches of 500, as the worker takes
    them (its GC thresholds too); the warm customers first, untimed. ``build_only``:
    the timed events are made but not resolved (``bench/instructions.py`` subtracts that
    run's instructions, so making the workload doesn't count)."""
    from runtime.app import IDENTITY_GC, tune_gc
    from runtime.consumer import Record
    from services.identity.adapters.redis_graph import RedisGraph
    from services.identity.resolver import Resolver
    from services.identity.settings import IdentitySettings

    namespace = f"bench{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis.from_url(redis_url)
    warm, timed = workload(customers, events)
    sink = _CountingSink()
    graph = RedisGraph(client, namespace, IdentitySettings().rules())
    resolver = Resolver(graph, sink, NoDeadLetters(), namespace=namespace, max_bytes=1_000_000)

    async def run(messages: list[tuple[str, bytes, bytes]]) -> None:
        records = [
            Record(f"{namespace}.{suffix}", 0, offset, key, value)
            for offset, (suffix, key, value) in enumerate(messages)
        ]
        for start in range(0, len(records), 500):
            await resolver.handle(records[start : start + 500])
        await resolver._settled()

    collected = [0.0, 0.0]  # seconds in the collector, when the last collection started

    def timing(phase: str, _: dict[str, int]) -> None:
        if phase == "start":
            collected[1] = time.perf_counter()
        else:
            collected[0] += time.perf_counter() - collected[1]

    try:
        await run(warm)
        sink.messages = 0
        tune_gc(IDENTITY_GC)
        gc.callbacks.append(timing)
        cpu, wall = time.process_time(), time.perf_counter()
        await run([] if build_only else timed)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        gc.callbacks.remove(timing)
        count = max(len(timed), 1)
        print(f"identity in-process: {customers:,} warm customers, {len(timed):,} timed events")
        note = f"{len(timed):,} events, Redis, no Kafka"
        in_process_figures("identity", len(timed), cpu, wall, note, rate="resolved events/s")
        print(f"{'of which the GC (µs)':40} {collected[0] / count * 1e6:12.1f}")
        print(f"{'outputs per event':40} {sink.messages / count:12.2f}")
    finally:
        await client.aclose()
        drop_redis_keys(namespace, redis_url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--kafka", default=os.environ.get("KIZUNA_KAFKA", "127.0.0.1:19092"))
    parser.add_argument(
        "--redis", default=os.environ.get("KIZUNA_REDIS", "redis://127.0.0.1:16379/0")
    )
    parser.add_argument("--in-process", action="store_true", help="no Kafka, no worker")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        asyncio.run(in_process(args.customers, args.events, args.redis, args.build_only))
        return
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    admin = create_admin(args.kafka)
    ensure_topics(admin, namespace, partitions=args.partitions)
    client = redis.Redis.from_url(args.redis)
    env = dict(
        os.environ,
        KIZUNA_KAFKA=args.kafka,
        KIZUNA_REDIS=args.redis,
        KIZUNA_NAMESPACE=namespace,
        KIZUNA_WEB_PORT="6199",
        KIZUNA_LOG_LEVEL="WARNING",
        KIZUNA_DATA_DIR="/tmp/kizuna-bench",
    )
    log = Path("/tmp") / f"{namespace}-identity.log"
    worker = None
    try:
        warm, timed = workload(args.customers, args.events)
        out = create_consumer(args.kafka, f"{namespace}-bench-out")
        out.subscribe([CUSTOMER_EVENTS.name(namespace)])
        worker = start_worker(env, log)
        produce(args.kafka, namespace, warm)
        drain(out, len(warm))
        cpu_before = cpu_seconds(worker.pid)
        produce(args.kafka, namespace, timed)
        first, last = drain(out, len(timed))
        cpu = cpu_seconds(worker.pid) - cpu_before
        resolved_rate = (len(timed) - 1) / (last - first)
        baseline = create_consumer(args.kafka, f"{namespace}-bench-raw")
        baseline.subscribe([spec.name(namespace) for spec in RAW_TOPICS])
        b_first, b_last = drain(baseline, len(warm) + len(timed))
        raw_rate = (len(warm) + len(timed) - 1) / (b_last - b_first)
        parts, identifiers = memory_by_kind(client, namespace)
        total = sum(parts.values())
        print(
            f"identity bench: {args.customers} warm customers, {len(timed)} timed events, "
            f"{args.partitions} partitions, 1 worker"
        )
        print(f"{'resolved events/s (one worker)':40} {resolved_rate:12,.0f}")
        print(f"{'confluent-kafka raw read events/s':40} {raw_rate:12,.0f}")
        print(f"{'ratio resolved / raw read':40} {resolved_rate / raw_rate:12.3f}")
        cpu_figures("identity", cpu, last - first, len(timed))
        print(f"{'identifiers in graph':40} {identifiers:12,}")
        print(f"{'Redis bytes per identifier (all keys)':40} {total / max(identifiers, 1):12.0f}")
        for kind, used in parts.items():
            print(f"{'  of which ' + kind:40} {used / max(identifiers, 1):12.0f}")
        setup = f"{len(timed):,} events, {args.partitions} partitions, 1 worker"
        record("identity", "resolved events/s", resolved_rate, "events/s", ">= 20000", setup)
        record(
            "identity",
            "confluent-kafka raw read (own baseline)",
            raw_rate,
            "events/s",
            note="the same raw messages, read by this bench",
        )
        record(
            "identity",
            "Redis bytes per identifier",
            total / max(identifiers, 1),
            "B",
            "<= 200",
            f"{identifiers:,} identifiers, all keys",
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        # the catalogue plus faust's own (<namespace>-identity-__assignor-__leader)
        ours = {spec.name(namespace) for spec in CATALOGUE}
        ours |= {t for t in admin.list_topics(timeout=30).topics if t.startswith(f"{namespace}-")}
        delete_topics(admin, sorted(ours))
        drop_redis_keys(namespace, args.redis)


if __name__ == "__main__":
    main()
