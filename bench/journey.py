"""Journey: events/s for one worker, memory per pending timer, and the p99 lateness of
timer firing with 1,000,000 timers pending.

    python bench/journey.py [--events 100000] [--customers 20000] [--timers 1000000]
                            [--fire-rate 200] [--window 60] [--store rocksdb]
                            [--skip-throughput | --skip-timers | --in-process]

1. Throughput: a realistic mixed stream (schemas.examples proportions: mostly page and
   product views, some carts, orders, receipts, consents, locations) re-keyed to
   ``--customers`` customers goes to a fresh namespace's ``customer.events`` (one
   partition); ONE journey worker (``python -m services.journey``, all shipped
   scenarios) consumes it. Events/s between the first and the last poll of
   ``kizuna_journey_events_total`` while it works (startup and idle time excluded). By
   default (``--clock event``) the stream is a live shop's: its events lie ahead of the
   wall clock, ending 14:00 JST as in (3), and the worker's clock follows them, so waits
   come due and fire through the sweep as the stream's time passes. Most of those ticks
   queue behind the events and fire after the last one: a second rate counts them in
   (events over the time until no more timers fire). ``--clock wall``: the stream ends
   now, a ~28-hour backlog behind the wall clock, every passed wait firing inline at
   once (before 2026-12-06 the only mode; its figure depends on the hour of day through
   the quiet hours).
2. Pending timers: ``--timers`` journey rows (a cart journey waiting for its next
   reminder, as the worker writes them) go straight into the journey table's changelog;
   a fresh worker recovers them and rebuilds its due index. ``--fire-rate`` of them per
   second come due during a ``--window`` s measurement window, the rest days later.
   Prints the worker's RSS growth per pending timer (its RSS once every timer is
   indexed, less the RSS of a ready worker with an empty table), the due index's own
   bytes per timer
   (tracemalloc, in-process), the row size, and the p99 of
   ``kizuna_journey_timer_lateness_seconds`` over the window (each firing also requests
   a notification and rewrites its row, as in production).
3. ``--in-process`` (also printed before (1)): the same stream through the worker's
   customer-events handler in this process, Kafka left out, on the events' own clock:
   CPU per event, and what ``bench/instructions.py journey`` counts.

Needs KIZUNA_KAFKA / KIZUNA_REDIS (defaults: the local stack). Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from common import (
    BenchWorker,
    CountingEmitter,
    NoDeadLetters,
    clean_up,
    customer_events,
    drop_redis_keys,
    histogram,
    in_process_figures,
    produce_customer_events,
    produce_waiting,
    quantile,
    record,
    steady_rate,
)
from confluent_kafka.admin import NewTopic

from runtime.kafka import create_admin, create_producer
from runtime.settings import load_settings
from runtime.time_index import TimeIndex
from runtime.topics import ensure_topics
from schemas.codec import encode
from schemas.customer import CustomerEvent
from schemas.examples import example_stream
from services.journey.adapters.codec import encode as encode_row
from services.journey.adapters.reports import JourneyReports
from services.journey.domain.policy import short_id
from services.journey.domain.state import CustomerState, Entries, Instance, SendRecord
from services.journey.processor import EventClock

JOURNEY = "services.journey"
EVENTS_METRIC = "kizuna_journey_events_total"
LATENESS = "kizuna_journey_timer_lateness_seconds"


def throughput(events: int, customers: int, store: str, clock: str = "event") -> float:
    """``clock``: "event" (a live shop): the stream's events are ahead of the wall clock
    and the worker's clock follows them (``KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS``, the
    simulation mode), so its waits come due as the stream's own time passes and fire
    through the sweep, and the stream ends at 14:00 JST as the in-process one does. "wall":
    the stream ends now, ``events`` seconds of it behind the wall clock: a backlog after
    an outage, every wait whose time has passed firing inline, capped or deferred by the
    quiet hours the wall clock is in (so the figure depends on the hour it runs)."""
    settings = load_settings()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    admin = create_admin(settings.kafka)
    ensure_topics(admin, namespace, partitions=1)
    env = {"KIZUNA_STORE": store}
    end = None
    if clock == "event":
        end = next_afternoon(datetime.now(UTC) + timedelta(seconds=events + 600))
        ahead = (end - datetime.now(UTC)).total_seconds()
        env["KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS"] = str(int(ahead) + 3_600)
    produce_customer_events(namespace, settings.kafka, events, customers, end=end)
    worker = BenchWorker(JOURNEY, namespace, 1, **env)
    try:
        worker.wait_ready(timeout=180)
        steady = steady_rate(
            "journey", lambda: worker.total(EVENTS_METRIC), events, worker.process.pid
        )
        done_at = time.monotonic()  # (the events: within a poll)
        fired = timers_settled(worker)
        requested = worker.total("kizuna_journey_notifications_requested_total")
        per_event = f"{requested / events:.3f} / {fired.fired / events:.3f}"
        print(f"{'requests / timers fired, per event':40} {per_event:>12}")
        if clock == "event":  # most of its timers fire after its last event: count them in
            until = max(fired.at, done_at)
            with_timers = (events - steady.counted) / (until - steady.started)
            print(f"{'events/s, timers they made due fired too':40} {with_timers:12,.0f}")
            note = f"{events:,} mixed events, 1 partition, {store}: events / time until idle"
            record(
                "journey",
                "events/s with their timers, one worker",
                with_timers,
                "events/s",
                None,
                note,
            )
        return steady.rate
    finally:
        worker.stop()
        clean_up(admin, namespace)


class Settled(NamedTuple):
    fired: float  # timers fired in all
    at: float  # time.monotonic() of the last poll that found one more fired


def timers_settled(worker: BenchWorker, quiet: float = 3.0) -> Settled:
    """Timers the worker fired (``kizuna_journey_timer_lateness_seconds_count``) once no
    more have fired for ``quiet`` seconds, and when the last of them had."""
    count, at = worker.total(f"{LATENESS}_count"), time.monotonic()
    while time.monotonic() - at < quiet:
        time.sleep(0.5)
        now = worker.total(f"{LATENESS}_count")
        if now != count:
            count, at = now, time.monotonic()
    return Settled(count, at)


def next_afternoon(after: datetime) -> datetime:
    """The first 14:00 JST (05:00 UTC) at or after ``after``."""
    at = after.replace(hour=5, minute=0, second=0, microsecond=0)
    return at if at >= after else at + timedelta(days=1)


# A fixed afternoon (14:00 JST) for the in-process stream's last event.
IN_PROCESS_END = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)


async def events_in_process(events: int, customers: int, build_only: bool) -> float:
    """The Kafka bench's stream through the worker's customer-events handler in this
    process, in units of ``KIZUNA_JOURNEY_INPUT_BATCH``: the peek at the routing headers,
    decode, engine, unit of work, row encode, reports flushed to the real Redis. Rows go
    to a dict, requests are counted: Kafka is left out. Event-time clock ending at a
    fixed instant, so deterministic enough to count instructions with
    (``bench/instructions.py journey``; ``build_only``: the records are made but not
    handled, the run whose instructions it subtracts)."""
    from runtime.app import CPYTHON_GC, tune_gc
    from runtime.consumer import Record
    from runtime.redis import create_redis
    from services.journey.app import Handlers, _processor, load_context
    from services.journey.settings import JourneySettings

    settings = load_settings().model_copy(update={"namespace": f"bench{uuid.uuid4().hex[:8]}"})
    journey = JourneySettings()
    redis = create_redis(settings)
    emitter = CountingEmitter()
    table: dict[bytes, bytes] = {}
    topic = f"{settings.namespace}.customer.events"
    records = [
        Record(topic, 0, offset, key, value, headers)
        for offset, (key, value, headers) in enumerate(
            customer_events(events, customers, end=IN_PROCESS_END)
        )
    ]
    try:
        ctx = await load_context(settings, journey, redis)
        reports = JourneyReports(redis, settings.namespace, journey.why_keep)
        processor = _processor(settings, journey, ctx, table, emitter, reports, lambda: {0})
        processor.clock = EventClock()  # the events' own time: repeats at any hour
        handle = Handlers(processor, NoDeadLetters(), settings.max_message_bytes).customer_events
        tune_gc(CPYTHON_GC)  # the journey worker's (services/journey/__main__.py)
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, 0 if build_only else len(records), journey.input_batch):
            await handle(records[start : start + journey.input_batch])
        await processor.flush_reports()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        count = max(len(records), 1)
        print(f"journey in-process: {len(records):,} customer events, {customers:,} customers")
        note = f"{len(records):,} events, Redis reports, no Kafka"
        in_process_figures("journey", len(records), cpu, wall, note)
        print(f"{'requests per event':40} {emitter.sent['request'] / count:12.3f}")
        print(f"{'rows':40} {len(table):12,}")
        return len(records) / wall
    finally:
        await redis.aclose()
        drop_redis_keys(settings.namespace)


def pending_row(n: int, due: float, now: float) -> tuple[bytes, bytes]:
    """A customer in the cart journey, reminder 1 sent, waiting for reminder 2."""
    customer = f"c{n:09d}"
    entered = now - 3600.0
    instance_id = short_id("i", "cart_abandonment", customer, f"e{n}")
    state = CustomerState(
        instances=[
            Instance(
                journey="cart_abandonment",
                version=1,
                instance_id=instance_id,
                entered_at=entered,
                step=2,
                at=entered + 3600.0,
                due=due,
                key=f"cart-{n}",
                priority=3,
                value=4_800,
                data={"cart_id": f"cart-{n}"},
                sent=1,
                first_sent_at=entered + 3600.0,
                goal_until=entered + 7 * 86_400.0,
            )
        ],
        entries={"cart_abandonment": Entries(1, entered, f"e{n}")},
        sends=[SendRecord(entered + 3600.0, short_id("n", instance_id, "reminder_1"), "line")],
        consents={"line": True},
    )
    return customer.encode(), encode_row(state, 0)


def rows(timers: int, firing: int, first_due: float, rate: float) -> Iterator[tuple[bytes, bytes]]:
    now = time.time()
    for n in range(timers):
        due = first_due + n / rate if n < firing else first_due + 30 * 86_400.0 + n
        yield pending_row(n, due, now)


def index_bytes_per_timer(timers: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = TimeIndex()
    now = time.time()
    index.load(0, {f"c{n:09d}": now + n for n in range(timers)})
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert index.size() == timers
    return (after - before) / timers


def timers_and_lateness(timers: int, rate: float, window: float, store: str) -> None:
    """Lateness in steady state, whatever recovery takes: the rows' due times lie a year
    ahead on the shop's clock, and once the worker has recovered and indexed them all a
    heartbeat (a page view every 50 ms, dated base + elapsed wall time) makes that clock
    run at wall speed from the base. The heartbeat's 50 ms step is part of the figure."""
    settings = load_settings()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    admin = create_admin(settings.kafka)
    ensure_topics(admin, namespace, partitions=1)
    admin.create_topics([_compacted(f"{namespace}-journey-journeys-changelog")])
    skew = {"KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS": str(2 * 365 * 86_400)}
    baseline = idle_rss(namespace, store, skew)
    base = time.time() + 365 * 86_400.0
    firing = int(rate * window)
    producer = create_producer(settings.kafka, **{"linger.ms": 50, "batch.num.messages": 10000})
    row_bytes = 0
    changelog = f"{namespace}-journey-journeys-changelog"
    for key, value in rows(timers, firing, base + 2.0, rate):
        produce_waiting(producer, changelog, key, value, partition=0)
        row_bytes += len(value)
    producer.flush(120)
    worker = BenchWorker(JOURNEY, namespace, 1, KIZUNA_STORE=store, **skew)
    try:
        ready_at = time.time()
        worker.wait_for("kizuna_journey_timers_pending", timers * 0.99, timeout=1800)
        ready = time.time()
        grown = worker.rss_bytes() - baseline
        before = histogram(worker.metrics(), LATENESS)
        heartbeat(producer, namespace, base, window + 3.0)
        after = histogram(worker.metrics(), LATENESS)
    finally:
        worker.stop()
        clean_up(admin, namespace)
    delta = [(le, n - dict(before).get(le, 0.0)) for le, n in after]
    fired = delta[-1][1] if delta else 0
    print(f"pending timers           {timers:,} (recovered + indexed in {ready - ready_at:.1f} s)")
    print(f"row size                 {row_bytes / timers:.0f} B per pending timer (table value)")
    print(f"worker RSS growth        {grown / timers:.0f} B per pending timer ({store} store)")
    print(f"timers fired in window   {fired:,.0f} over {window:.0f} s ({fired / window:.0f}/s)")
    p50, p99 = quantile(delta, 0.5) * 1000, quantile(delta, 0.99) * 1000
    print(f"lateness p50 / p99       {p50:.0f} ms / {p99:.0f} ms  (target p99 <= 1 s)")
    setup = f"{timers:,} pending timers, {store} store"
    record("journey", "pending timers recovered + indexed", ready - ready_at, "s", None, setup)
    record("journey", "row size per pending timer", row_bytes / timers, "B", None, "table value")
    record("journey", "worker RSS growth per pending timer", grown / timers, "B", "<= 300", setup)
    record("journey", "timers fired/s in window", fired / window, "timers/s", None, setup)
    record("journey", "timer lateness p50", p50 / 1000, "s", None, setup)
    record("journey", "timer lateness p99", p99 / 1000, "s", "<= 1", setup)


def idle_rss(namespace: str, store: str, env: dict[str, str]) -> int:
    """RSS of a ready journey worker with an empty table: what a worker costs before any
    timer (interpreter, libraries, caches, buffers). Its data dir is removed after, so
    the measured worker recovers every row from the changelog."""
    idle = BenchWorker(JOURNEY, namespace, 1, KIZUNA_STORE=store, **env)
    try:
        idle.wait_ready(timeout=120)
        time.sleep(3.0)  # the first sweep and metrics pages have run
        return idle.rss_bytes()
    finally:
        idle.stop()
        shutil.rmtree(idle.data_dir, ignore_errors=True)


def heartbeat(producer: Any, namespace: str, base: float, seconds: float) -> None:
    """Page views dated ``base`` + elapsed wall time, every 50 ms, for ``seconds``."""
    page = next(e for e in example_stream(50, seed=7) if getattr(e, "type", None) == "page_viewed")
    topic, started = f"{namespace}.customer.events", time.time()
    while (elapsed := time.time() - started) < seconds:
        at = datetime.fromtimestamp(base + elapsed, UTC)
        event = page.model_copy(update={"occurred_at": at, "event_id": f"hb{elapsed:.3f}"})
        wrapped = CustomerEvent(
            customer_id="c-heartbeat", identity_version=1, resolved_at=at, event=event
        )
        producer.produce(topic, key=b"c-heartbeat", value=encode(wrapped), partition=0)
        producer.poll(0)
        time.sleep(0.05)
    producer.flush(10)


def _compacted(name: str) -> NewTopic:
    return NewTopic(
        name, num_partitions=1, replication_factor=1, config={"cleanup.policy": "compact"}
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--timers", type=int, default=1_000_000)
    parser.add_argument("--fire-rate", type=float, default=200.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--store", choices=["rocksdb", "memory"], default="rocksdb")
    parser.add_argument(
        "--clock",
        choices=["event", "wall"],
        default="event",
        help="the worker's clock in (1): the stream's own time (a live shop, the default) "
        "or the wall clock with the stream behind it (a backlog after an outage)",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-timers", action="store_true", help="throughput only")
    parser.add_argument(
        "--in-process", action="store_true", help="the events through the handler, no Kafka"
    )
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        asyncio.run(events_in_process(args.events, args.customers, args.build_only))
        return
    store = f"{args.store}://"
    if not args.skip_throughput:
        domain = asyncio.run(events_in_process(args.events, args.customers, False))
        note = f"{args.events:,} events, the handler with Redis reports, no Kafka"
        record("journey", "events/s, in-process", domain, "events/s", None, note)
        rate = throughput(args.events, args.customers, store, args.clock)
        print(
            f"events/s, one worker     {rate:,.0f} ({args.events:,} mixed events, target >= 20,000)"
        )
        note = f"{args.events:,} mixed events, 1 partition, {store}, {args.clock} clock"
        record("journey", "events/s, one worker", rate, "events/s", ">= 20000", note)
    if args.skip_timers:
        return
    index = index_bytes_per_timer(args.timers)
    print(f"due index                {index:.0f} B per pending timer (in RAM)")
    record("journey", "due index bytes per pending timer", index, "B", None, "tracemalloc")
    timers_and_lateness(args.timers, args.fire_rate, args.window, store)


if __name__ == "__main__":
    main()
