"""Notifier throughput: one worker's delivery pipeline against local LINE and FCM servers.

    KIZUNA_REDIS=redis://127.0.0.1:16379/0 python bench/notifier.py [--n 20000] [--batch 256]

Each notification goes the full way a worker takes it (Kafka I/O aside): claim its id in
Redis with the customer's consent/contact read in the same round trip (one call per
batch), plan the channel, render the Jinja2 template, take a rate-limit token (Redis
Lua, coalesced across concurrent sends), POST to the provider (LINE push or FCM v1,
half each, served by a separate process), mark it sent in Redis (coalesced).
Prints notifications/s, the rate for a redelivered batch (all duplicates), and the
idempotency overhead per message (claim + finish + reported, timed on their own).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import redis
import uvloop
from common import record, serve_providers

from runtime.redis import create_redis
from runtime.settings import load_settings
from schemas.channels import Channel, Purpose
from schemas.codec import encode
from schemas.notifications import NotificationOutcome, SendNotification
from services.notifier.adapters.fcm import FcmProvider
from services.notifier.adapters.http import HttpClient
from services.notifier.adapters.ledger import LedgerStore
from services.notifier.adapters.line import LinePushProvider
from services.notifier.adapters.messages import Provider
from services.notifier.adapters.oauth import StaticToken
from services.notifier.adapters.ratelimit import RateLimiter
from services.notifier.adapters.state import ClaimRequest, NotificationStore
from services.notifier.bootstrap import build_renderer
from services.notifier.delivery import Delivery
from services.notifier.domain.ledger import Register, consent_field, push_field, sort_key
from services.notifier.settings import NotifierSettings

PORT = 18931
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DATA = {
    "store_name": "絆茶舗 渋谷店",
    "items": [{"name": "宇治抹茶 30g", "quantity": 2, "price": 2160}],
    "total": 4320,
    "cart_url": "https://kizuna.example/cart/1",
}


class CountingSink:
    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}

    async def outcome(self, outcome: NotificationOutcome, encoded: bytes) -> None:
        self.statuses[outcome.status] = self.statuses.get(outcome.status, 0) + 1

    async def dead_letter(self, letter: object) -> None:
        raise AssertionError(f"unexpected dead letter: {letter}")

    async def flush(self) -> None:
        return None


def requests(run: str, start: int, count: int, customers: int) -> Iterator[SendNotification]:
    for i in range(start, start + count):
        channel = Channel.LINE if i % 2 else Channel.PUSH
        yield SendNotification(
            notification_id=f"{run}-{i}",
            customer_id=f"c-{i % customers}",
            purpose=Purpose.MARKETING,
            channels=(channel,),
            template="cart_abandoned",
            data=DATA,
            requested_at=T0,
        )


async def seed(ledger: LedgerStore, customers: int) -> None:
    key = sort_key(T0, "seed")
    for c in range(customers):
        await ledger.apply(
            f"c-{c}",
            [
                Register(consent_field(Channel.LINE, Purpose.MARKETING), key, "granted"),
                Register(consent_field(Channel.PUSH, Purpose.MARKETING), key, "granted"),
                Register("line_id", key, f"U{c:032x}"),
                Register("line_follow", key, "1"),
                Register(push_field(f"token-{c}"), key, "on"),
            ],
        )


async def timed_run(delivery: Delivery, run: str, n: int, batch: int, customers: int) -> float:
    started = time.perf_counter()
    for start in range(0, n, batch):
        await delivery.handle_many(
            list(requests(run, start, min(batch, n - start), customers)), "request"
        )
    return n / (time.perf_counter() - started)


async def idempotency_overhead(store: NotificationStore, n: int, batch: int, limit: int) -> float:
    """Microseconds per message for claim + finish + reported, batched as the pipeline
    does it: one claim call per batch, finishes of ``limit`` concurrent sends coalesced,
    one reported call per batch."""
    payload = encode(next(requests("x", 0, 1, 1)))
    run = uuid.uuid4().hex[:6]
    started = time.perf_counter()
    for start in range(0, n, batch):
        ids = [f"idem-{run}-{i}" for i in range(start, min(start + batch, n))]
        now = time.time()
        await store.claim_batch([ClaimRequest(i, payload, now, "request", "none") for i in ids])
        for part in range(0, len(ids), limit):
            chunk = ids[part : part + limit]
            await asyncio.gather(
                *(store.finish(i, "sent", b"{}", "none", marketing=False, now=now) for i in chunk)
            )
        await store.mark_reported(ids)
    return (time.perf_counter() - started) / n * 1e6


async def main(n: int, batch: int, customers: int, concurrency: int) -> None:
    settings = load_settings(namespace=f"bench{uuid.uuid4().hex[:8]}")
    client = create_redis(settings)
    config = NotifierSettings(dry_run=False)
    sink = CountingSink()
    http = HttpClient(max_connections=batch)
    try:
        base = f"http://127.0.0.1:{PORT}"
        providers: dict[Channel, Provider] = {
            Channel.LINE: LinePushProvider(http, base, "bench", 5.0),
            Channel.PUSH: FcmProvider(http, base, "bench", StaticToken("bench"), 5.0),
        }
        ledger = LedgerStore(client, settings.namespace)
        store = NotificationStore(client, settings.namespace, 30.0, 3600)
        delivery = Delivery(
            store=store,
            ledger=ledger,
            limiter=RateLimiter(client, settings.namespace, {"line": 1e6, "push": 1e6}),
            renderer=build_renderer(config),
            providers=providers,
            sink=sink,
            unsubscribe_url=lambda c, ch: "",
            concurrency=concurrency,
        )
        await seed(ledger, customers)
        await timed_run(delivery, "warm", min(n, 2000), batch, customers)
        fresh = await timed_run(delivery, "run", n, batch, customers)
        duplicates = await timed_run(delivery, "run", n, batch, customers)
        overhead = await idempotency_overhead(store, n, batch, concurrency)
    finally:
        await http.aclose()
    await client.aclose()
    cleanup(settings.redis, settings.namespace)
    print(
        f"{n} notifications, {customers} customers, batch {batch}, "
        f"{concurrency} in flight, LINE/FCM half each"
    )
    print(f"{'delivered (claim+render+rate limit+HTTP+mark)':48} {fresh:10,.0f} notifications/s")
    print(f"{'redelivered (all duplicates, no send)':48} {duplicates:10,.0f} notifications/s")
    print(f"{'idempotency overhead (claim+finish+reported)':48} {overhead:10,.1f} µs/message")
    print(f"outcomes: {sink.statuses}")
    setup = (
        f"in-process delivery engine, {n:,} notifications, batch {batch}, {concurrency} in flight"
    )
    record("notifier", "delivered (in-process)", fresh, "notifications/s", ">= 2000", setup)
    record("notifier", "redelivered, all duplicates", duplicates, "notifications/s", None, setup)
    record(
        "notifier", "idempotency overhead", overhead, "µs/message", None, "claim+finish+reported"
    )


def cleanup(url: str, namespace: str) -> None:
    sync = redis.Redis.from_url(url)
    keys = list(sync.scan_iter(match=f"{namespace}:*", count=1000))
    for i in range(0, len(keys), 1000):
        sync.delete(*keys[i : i + 1000])
    sync.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=64, help="sends in flight (<= 90)")
    args = parser.parse_args()
    server = multiprocessing.Process(target=serve_providers, args=(PORT,), daemon=True)
    server.start()
    time.sleep(1.0)
    try:
        # uvloop, as the worker runs (runtime.settings.event_loop)
        uvloop.run(main(args.n, args.batch, args.customers, args.concurrency))
    finally:
        server.terminate()
        server.join(5)
