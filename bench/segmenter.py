"""Segmenter throughput on real Kafka, and the time sweep over 1,000,000 customers.

    python bench/segmenter.py [--events 60000] [--customers 20000] [--sweep-customers 1000000]

1. Kafka: a realistic mixed stream (schemas.examples proportions: mostly page/product
   views, some carts, orders and receipts) re-keyed to ``--customers`` customers is
   produced to a fresh namespace's ``customer.events`` (1 partition); then ONE segmenter
   worker process (``python -m services.segmenter``, memory store) starts and consumes it.
   Prints customer events/s from the first to the last applied event (startup excluded),
   read from the worker's own ``kizuna_segmenter_events_applied_total``.
2. Sweep (in-process, no Kafka/Redis): 1M customers as encoded table rows plus the time
   index. Measures (a) finding the due customers of one business day in the index and
   (b) the worst case, every customer due at once: pop from the index, decode the row,
   re-score (domain), encode, write back, re-index. In the worker each due customer
   additionally costs its share of a tick message through Kafka, its segment changes'
   sends and its profile view's update in Redis.
3. Worker sweep (with Kafka): ``--sweep-buyers`` more customers order once, then the
   worker's clock jumps 2,000 days: every scored customer falls due at once. Prints the
   wall time from the clock message to the last time-caused change, per due customer
   and in worker CPU, and projects the two sweeps of (2) through one worker with it.
4. ``--in-process``: the stream of (1) through the worker's customer-events handler in
   this process (rows in a dict, the profile view on Redis, no Kafka): CPU per event,
   and what ``bench/instructions.py segmenter`` counts.

Needs KIZUNA_KAFKA / KIZUNA_REDIS (defaults: the local stack). Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    CountingEmitter,
    NoDeadLetters,
    clean_up,
    cpu_seconds,
    customer_events,
    drop_redis_keys,
    in_process_figures,
    produce_customer_events,
    record,
    steady_rate,
)

from runtime.kafka import create_admin, create_producer
from runtime.settings import load_settings
from runtime.time_index import TimeIndex
from runtime.topics import ensure_topics
from schemas.codec import encode
from schemas.customer import CustomerEvent
from schemas.examples import example
from services.segmenter.adapters.state_codec import (
    decode_state,
    encode_state,
    read_stored,
    restored,
)
from services.segmenter.domain.facts import Facts, Order
from services.segmenter.domain.handlers import on_stored_tick, on_tick
from services.segmenter.domain.standing import CustomerState, Policy, reevaluate
from services.segmenter.messages import ClockSet, control_topic

ROOT = Path(__file__).resolve().parent.parent
TIME_CHANGES = re.compile(
    r'^kizuna_segmenter_segment_transitions_total\{[^}]*reason="time"[^}]*\} ([0-9.e+]+)$', re.M
)
SWEEP_DUE = re.compile(r"^kizuna_segmenter_sweep_due_total ([0-9.e+]+)$", re.M)
APPLIED = re.compile(r"^kizuna_segmenter_events_applied_total\{[^}]*\} ([0-9.e+]+)$", re.M)


def applied(port: int) -> float:
    return _metric_sum(port, APPLIED)


def kafka_throughput(
    events: int, customers: int, buyers: int
) -> tuple[float, tuple[int, float, float]]:
    settings = load_settings()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    admin = create_admin(settings.kafka)
    ensure_topics(admin, namespace, partitions=1)
    produce_customer_events(namespace, settings.kafka, events, customers)
    port = 16000 + random.randrange(1000)
    env = dict(
        os.environ,
        KIZUNA_NAMESPACE=namespace,
        KIZUNA_PARTITIONS="1",
        KIZUNA_WEB_PORT=str(port),
        KIZUNA_DATA_DIR=f"/tmp/{namespace}",
        KIZUNA_LOG_LEVEL="WARNING",
        KIZUNA_SEGMENTER_SWEEP_INTERVAL_SECONDS="0.2",  # the worker sweep below: capacity,
        KIZUNA_SEGMENTER_SWEEP_BATCH="1000000",  # not the production pacing
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "services.segmenter"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rate = _time_consumption(port, events, worker.pid)
        return rate, _time_worker_sweep(port, settings.kafka, namespace, worker.pid, buyers)
    finally:
        worker.terminate()
        worker.wait(30)
        clean_up(admin, namespace)


def _time_consumption(port: int, events: int, pid: int) -> float:
    return steady_rate("segmenter", lambda: applied(port), events, pid, timeout=600).rate


def _metric_sum(port: int, pattern: re.Pattern[str]) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(value) for value in pattern.findall(text))


def _time_worker_sweep(
    port: int, bootstrap: str, namespace: str, pid: int, buyers: int
) -> tuple[int, float, float]:
    """``buyers`` more customers order once; then the worker's clock moves 2,000 days
    and every scored customer falls due at once. (due customers, seconds from the clock
    message to the last time-caused change, the worker's CPU seconds in between; the
    seconds are read to ~0.1 s, and include up to one 0.2 s sweep interval)."""
    producer = create_producer(bootstrap, **{"linger.ms": 20})
    before, now = applied(port), datetime.now(UTC)
    order = example("order_completed")
    for n in range(buyers):
        customer = f"s{n}"
        event = order.model_copy(update={"event_id": f"sweep-{n}", "occurred_at": now})
        wrapped = CustomerEvent(
            customer_id=customer, identity_version=1, resolved_at=now, event=event
        )
        producer.produce(
            f"{namespace}.customer.events", key=customer.encode(), value=encode(wrapped)
        )
        if n % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)
    while applied(port) < before + buyers:
        time.sleep(0.5)
    as_of = now + timedelta(days=2000)
    producer.produce(
        control_topic(namespace), key=b"clock", value=encode(ClockSet(as_of=as_of)), partition=0
    )
    producer.flush(10)
    started, last, last_change = time.monotonic(), -1.0, time.monotonic()
    cpu_before = cpu_at_change = cpu_seconds(pid)
    while time.monotonic() - last_change < 3.0 and time.monotonic() - started < 600:
        changes = _metric_sum(port, TIME_CHANGES)
        if changes != last:
            last, last_change, cpu_at_change = changes, time.monotonic(), cpu_seconds(pid)
        time.sleep(0.1)
    due = int(_metric_sum(port, SWEEP_DUE))
    return due, last_change - started, cpu_at_change - cpu_before


def population(count: int, policy: Policy, today_ts: int) -> tuple[dict[bytes, bytes], TimeIndex]:
    """``count`` scored customers with 1–4 orders over the last two years."""
    rng = random.Random(1)
    table: dict[bytes, bytes] = {}
    index = TimeIndex(bucket=1)  # due: day numbers, as the worker
    entries: dict[str, float] = {}
    for n in range(count):
        orders = {
            f"o{n}-{i}": Order(
                today_ts - rng.randrange(730 * 86_400),
                rng.randrange(500, 60_000),
                "online",
                f"e{n}-{i}",
            )
            for i in range(rng.choice((1, 1, 1, 2, 2, 3, 4)))
        }
        state, _ = reevaluate(CustomerState(f"c{n}", Facts(orders)), today_ts, "event", policy)
        table[state.customer_id.encode()] = encode_state(state, 0)
        if state.standing.next_due is not None:
            entries[state.customer_id] = state.standing.next_due
    index.load(0, entries)
    return table, index


def sweep(table: dict[bytes, bytes], index: TimeIndex, now: int, policy: Policy) -> tuple[int, int]:
    """What a worker does per due customer it holds nowhere decoded (``Processor.
    _tick_stored``): re-score from the stored purchases and standing, rewrite the row;
    else (absorbed, never bought) a full decode. The view and Kafka are left out."""
    due = index.pop_due(0, now, limit=10**9)
    changed = 0
    for customer in due:
        key = customer.encode()
        row = read_stored(table[key])
        if row.absorbed or not row.bought:
            state, partition = decode_state(table[key])
            outcome = on_tick(state, now, policy)
            if outcome.state is not None:
                table[key] = encode_state(outcome.state, partition)
                index.schedule(partition, customer, outcome.state.standing.next_due)
            changed += len(outcome.changes)
            continue
        ticked = on_stored_tick(customer, row.bought, row.standing, row.last_seen, now, policy)
        table[key] = restored(row, ticked.standing, 0)
        index.schedule(0, customer, ticked.standing.next_due)
        changed += len(ticked.changes)
    return len(due), changed


def sweep_bench(count: int, worker_per_due: float | None) -> None:
    """``worker_per_due``: a worker's measured seconds per due customer, for the
    projection of this population's sweeps through a worker (Kafka, view, population)."""
    policy = Policy()
    today = int(time.time())
    built = time.perf_counter()
    table, index = population(count, policy, today)
    took = time.perf_counter() - built
    print(f"sweep: {count:,} customers built in {took:.1f}s, index {index.size():,} entries")
    gc.collect()
    gc.freeze()  # the population is long-lived, as in a worker
    for label, now in (
        ("next business day", today + 86_400),
        ("all due (worst case)", today + 2000 * 86_400),
    ):
        started = time.perf_counter()
        due, changes = sweep(table, index, now, policy)
        seconds = time.perf_counter() - started
        print(f"sweep {label:22}: {seconds:7.2f}s  due {due:,}  segment changes {changes:,}")
        target = "< 10" if label.startswith("all due") else None
        note = f"{count:,} customers in-process, due {due:,}, segment changes {changes:,}"
        record("segmenter", f"sweep, {label}", seconds, "s", target, note)
        if worker_per_due is not None:
            projected = due * worker_per_due
            print(f"  through one worker (projected from its µs per due): {projected:7.1f}s")
            note = f"{due:,} due x the worker sweep's wall time per due customer"
            record("segmenter", f"worker sweep projected, {label}", projected, "s", None, note)


async def events_in_process(events: int, customers: int, build_only: bool) -> None:
    """The Kafka bench's stream through the worker's customer-events handler in this
    process, in units of ``KIZUNA_SEGMENTER_INPUT_BATCH``: routing headers, decode,
    processor, unit of work, profile view flushes to the real Redis. The rows go to a
    dict, changes are counted: Kafka is left out. Deterministic enough to count
    instructions with (``bench/instructions.py segmenter``; ``build_only``: the records
    are made but not handled, the run whose instructions it subtracts)."""
    from runtime.app import FAST_GC, tune_gc
    from runtime.consumer import Record
    from runtime.redis import create_redis
    from services.segmenter.app import _customer_events, _processor
    from services.segmenter.settings import SegmenterSettings

    settings = load_settings().model_copy(update={"namespace": f"bench{uuid.uuid4().hex[:8]}"})
    seg = SegmenterSettings()
    redis = create_redis(settings)
    emitter = CountingEmitter()
    table: dict[bytes, bytes] = {}
    processor = _processor(settings, seg, table, emitter, redis, lambda: {0})
    handle = _customer_events(processor, NoDeadLetters(), settings.max_message_bytes)
    topic = f"{settings.namespace}.customer.events"
    records = [
        Record(topic, 0, offset, key, value, headers)
        for offset, (key, value, headers) in enumerate(customer_events(events, customers))
    ]
    try:
        tune_gc(FAST_GC)
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, 0 if build_only else len(records), seg.input_batch):
            await handle(records[start : start + seg.input_batch])
        await processor.flush_views()
        await processor.views.settle()  # type: ignore[attr-defined]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        count = max(len(records), 1)
        print(f"segmenter in-process: {len(records):,} customer events, {customers:,} customers")
        note = f"{len(records):,} events, Redis view, no Kafka"
        in_process_figures("segmenter", len(records), cpu, wall, note)
        sent = emitter.sent["segment_changed"] + emitter.sent["control"]
        print(f"{'segment changes per event':40} {sent / count:12.3f}")
    finally:
        await redis.aclose()
        drop_redis_keys(settings.namespace)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--sweep-customers", type=int, default=1_000_000)
    parser.add_argument(
        "--sweep-buyers",
        type=int,
        default=100_000,
        help="one-order customers added before "
        "the worker sweep (all due then, with the --customers)",
    )
    parser.add_argument("--skip-kafka", action="store_true")
    parser.add_argument(
        "--in-process", action="store_true", help="the events through the handler, no Kafka"
    )
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        asyncio.run(events_in_process(args.events, args.customers, args.build_only))
        return
    per_due = None
    if not args.skip_kafka:
        rate, (due, sweep_seconds, sweep_cpu) = kafka_throughput(
            args.events, args.customers, args.sweep_buyers
        )
        print(
            f"kafka: {args.events:,} customer events, {args.customers:,} customers, "
            f"1 worker, 1 partition: {rate:,.0f} events/s"
        )
        note = f"{args.events:,} events, {args.customers:,} customers, 1 partition"
        record("segmenter", "customer events/s, one worker", rate, "events/s", ">= 30000", note)
        per_due = sweep_seconds / due if due else None
        per = per_due * 1e6 if per_due is not None else float("nan")
        cpu_per = sweep_cpu / due * 1e6 if due else float("nan")
        print(
            f"worker sweep, all {due:,} due at once: {sweep_seconds:.1f}s "
            f"({per:,.0f} µs per due customer, tick through Kafka included; "
            f"worker CPU {cpu_per:,.0f} µs per due customer)"
        )
        scored = args.customers + args.sweep_buyers
        note = f"{due:,} due customers of {scored:,}, sweep every 0.2 s, 1 partition"
        record("segmenter", "worker sweep, µs per due customer", per, "µs", None, note)
        record("segmenter", "worker sweep, CPU µs per due customer", cpu_per, "µs", None, note)
    sweep_bench(args.sweep_customers, per_due)


if __name__ == "__main__":
    main()
