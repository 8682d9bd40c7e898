"""Collector throughput over loopback: concurrent clients post Segment batches.

    python bench/gateway.py [--seconds 20] [--concurrency 12] [--batch 100] [--processes 1]

Starts ``python -m services.gateway`` on a free port against the running Kafka + Redis
(KIZUNA_KAFKA / KIZUNA_REDIS) under a fresh namespace, drives /v1/batch with realistic
mixed Segment calls (unique messageIds, so every event is produced and acknowledged),
prints sustained events/s and p50/p99 request latency, then deletes its topics and keys.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import redis
from common import record

from runtime.kafka import create_admin
from runtime.localstack import free_port
from runtime.settings import load_settings
from runtime.topics import delete_topics, ensure_topics
from schemas.topics import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
WRITE_KEY = "wk_bench"
PRODUCTS: list[dict[str, Any]] = [
    {"product_id": "tea-001", "sku": "TEA-SENCHA-100", "name": "静岡煎茶 100g", "price": 1080},
    {"product_id": "tea-014", "sku": "TEA-MATCHA-30", "name": "宇治抹茶 30g", "price": 2160},
    {"product_id": "cup-203", "sku": "CUP-ARITA-WHT", "name": "有田焼 湯呑み 白", "price": 3300},
]
CONTEXT = {
    "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
    "locale": "ja-JP",
    "ip": "203.0.113.7",
    "library": {"name": "analytics.js", "version": "5.2.0"},
    "page": {"url": "https://shop.example.jp/products/tea-001"},
}


def segment_call(rng: random.Random) -> dict[str, Any]:
    """One realistic call: mostly page and product views, some carts, few orders."""
    who = rng.randint(1, 50_000)
    base: dict[str, Any] = {"anonymousId": f"anon-{who}", "context": CONTEXT}
    if rng.random() < 0.3:
        base["userId"] = f"M{who:07d}"
    roll = rng.random()
    product = rng.choice(PRODUCTS)
    if roll < 0.45:
        url = f"https://shop.example.jp/products/{product['product_id']}"
        return {**base, "type": "page", "name": product["name"], "properties": {"url": url}}
    if roll < 0.75:
        return {**base, "type": "track", "event": "Product Viewed", "properties": product}
    if roll < 0.87:
        properties = {**product, "cart_id": f"cart-{who}", "quantity": 1}
        return {**base, "type": "track", "event": "Product Added", "properties": properties}
    if roll < 0.92:
        traits = {"email": f"user{who}@example.jp", "name": "山田 太郎", "plan": "gold"}
        return {**base, "type": "identify", "userId": f"M{who:07d}", "traits": traits}
    if roll < 0.96:
        order = {"order_id": f"o-{rng.getrandbits(40):x}", "total": product["price"] * 2,
                 "currency": "JPY", "products": [{**product, "quantity": 2}]}  # fmt: skip
        return {**base, "type": "track", "event": "Order Completed", "properties": order}
    return {**base, "type": "track", "event": "Coupon Applied", "properties": {"coupon": "AKI10"}}


def start_gateway(namespace: str, port: int, processes: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        KIZUNA_NAMESPACE=namespace,
        KIZUNA_WEB_PORT=str(port),
        KIZUNA_LOG_LEVEL="WARNING",
        KIZUNA_GATEWAY_WRITE_KEYS=orjson.dumps({WRITE_KEY: "web"}).decode(),
        KIZUNA_GATEWAY_PROCESSES=str(processes),
        KIZUNA_GATEWAY_DEDUPE_TTL_S="900",
    )
    profile = (
        ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]]
        if "BENCH_PROFILE" in os.environ
        else []
    )
    process = subprocess.Popen(
        [sys.executable, *profile, "-m", "services.gateway"], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    process.wait()
    raise SystemExit("gateway did not become healthy")


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.events = 0
        self.failures = 0


async def client(
    url: str, worker: int, batch: int, until: float, warm: float, stats: Stats
) -> None:
    rng = random.Random(worker)
    templates = [segment_call(rng) for _ in range(500)]
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    run = uuid.uuid4().hex[:8]
    n = 0
    async with aiohttp.ClientSession(headers=headers) as session:
        while time.monotonic() < until:
            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now))
            calls = []
            for i in range(batch):
                call = templates[(n * batch + i) % len(templates)]
                calls.append({**call, "messageId": f"{run}-{n}-{i}", "timestamp": stamp})
            body = orjson.dumps({"batch": calls, "sentAt": stamp})
            n += 1
            started = time.monotonic()
            async with session.post(url, data=body) as response:
                await response.read()
                ok = response.status == 200
            if started >= warm:
                stats.latencies.append(time.monotonic() - started)
                stats.events += batch if ok else 0
                stats.failures += 0 if ok else 1


async def drive(url: str, args: argparse.Namespace) -> tuple[Stats, float]:
    stats = Stats()
    start = time.monotonic()
    warm, until = start + args.warmup, start + args.warmup + args.seconds
    workers = [client(url, w, args.batch, until, warm, stats) for w in range(args.concurrency)]
    await asyncio.gather(*workers)
    return stats, time.monotonic() - warm


def cleanup(namespace: str, names: list[str]) -> None:
    settings = load_settings()
    delete_topics(create_admin(settings.kafka), names)
    client = redis.Redis.from_url(settings.redis)
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{namespace}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    settings = load_settings()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    ensure_topics(create_admin(settings.kafka), namespace, partitions=args.partitions)
    names = [spec.name(namespace) for spec in CATALOGUE]
    port = free_port()
    gateway = None
    try:
        gateway = start_gateway(namespace, port, args.processes)
        stats, elapsed = asyncio.run(drive(f"http://127.0.0.1:{port}/v1/batch", args))
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(30)
        cleanup(namespace, names)
    latencies = sorted(stats.latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    print(
        f"gateway /v1/batch: {args.concurrency} clients x {args.batch} events/request, "
        f"{args.processes} gateway process(es), {elapsed:.1f}s measured"
    )
    print(f"  sustained   {stats.events / elapsed:10,.0f} events/s acknowledged (200)")
    print(f"  requests    {len(latencies):10,d}  (non-200: {stats.failures})")
    if latencies:
        print(f"  latency p50 {statistics.median(latencies) * 1000:10.1f} ms")
        print(f"  latency p99 {p99 * 1000:10.1f} ms")
    setup = (
        f"{args.concurrency} clients x {args.batch} events/request, "
        f"{args.processes} process(es), {elapsed:.0f} s"
    )
    rate = stats.events / elapsed
    record("gateway", "/v1/batch events/s acknowledged", rate, "events/s", ">= 20000", setup)
    if latencies:
        note = f"per request of {args.batch} events; non-200: {stats.failures}"
        record(
            "gateway", "request latency p50", statistics.median(latencies) * 1000, "ms", None, note
        )
        record("gateway", "request latency p99", p99 * 1000, "ms", None, note)


if __name__ == "__main__":
    main()
