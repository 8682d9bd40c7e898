"""Provider HTTP client cost: the notifier's HttpClient against aiohttp, same server.

    python bench/http_client.py [--calls 20000] [--concurrency 64] [--rounds 2]

Posts a LINE-sized JSON body ``--calls`` times, ``--concurrency`` in flight, to the
bench's fake provider server (its own process), with each client in turn, alternating
``--rounds`` times; uvloop, as the workers run. Prints calls/s and the client process's
CPU time per call (user + system, from getrusage: steadier than the rate on a shared
machine). aiohttp is used the way the providers used it before HttpClient (one session,
TCPConnector limit = concurrency, a total timeout per call).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
import uvloop
from common import record, serve_providers

from services.notifier.adapters.http import HttpClient

BODY = orjson.dumps(
    {"to": "U" + "a" * 32, "messages": [{"type": "text", "text": "カートに商品が残っています" * 8}]}
)
Send = Callable[[int], Awaitable[None]]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def headers(i: int) -> dict[str, str]:
    return {
        "Authorization": "Bearer bench",
        "Content-Type": "application/json",
        "X-Line-Retry-Key": f"key-{i}",
    }


async def drive(send: Send, calls: int, concurrency: int) -> tuple[float, float]:
    """(calls/s, CPU µs per call) for ``calls`` sends, ``concurrency`` at a time."""
    numbers = iter(range(calls))

    async def lane() -> None:
        for i in numbers:
            await send(i)

    wall, cpu = time.perf_counter(), cpu_s()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return calls / (time.perf_counter() - wall), (cpu_s() - cpu) / calls * 1e6


async def with_aiohttp(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        timeout = aiohttp.ClientTimeout(total=10)

        async def send(i: int) -> None:
            async with session.post(url, data=BODY, headers=headers(i), timeout=timeout) as r:
                await r.read()
                assert r.status == 200

        await drive(send, min(calls, 2000), concurrency)  # warm: connections, caches
        return await drive(send, calls, concurrency)


async def with_http_client(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    http = HttpClient(max_connections=concurrency)

    async def send(i: int) -> None:
        response = await http.post(url, BODY, headers(i), 10.0)
        assert response.status == 200

    try:
        await drive(send, min(calls, 2000), concurrency)
        return await drive(send, calls, concurrency)
    finally:
        await http.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=18932)
    args = parser.parse_args()
    server = multiprocessing.Process(target=serve_providers, args=(args.port,), daemon=True)
    server.start()
    time.sleep(1.0)
    url = f"http://127.0.0.1:{args.port}/v2/bot/message/push"
    clients = {"aiohttp": with_aiohttp, "HttpClient": with_http_client}
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    try:
        for _ in range(args.rounds):
            for name, run in clients.items():
                figures[name].append(uvloop.run(run(url, args.calls, args.concurrency)))
    finally:
        server.terminate()
        server.join(5)
    print(f"{args.calls:,} POSTs per round, {args.concurrency} in flight, {args.rounds} rounds")
    best = {name: min(cpu for _, cpu in runs) for name, runs in figures.items()}
    for name, runs in figures.items():
        rates = " / ".join(f"{rate:,.0f}" for rate, _ in runs)
        cpus = " / ".join(f"{cpu:.0f}" for _, cpu in runs)
        print(f"{name:12} calls/s {rates:24} client CPU µs/call {cpus}")
        record("http_client", f"{name} CPU per call (best round)", best[name], "µs")
    ratio = best["aiohttp"] / best["HttpClient"]
    print(f"aiohttp / HttpClient CPU per call: {ratio:.2f}x")
    record("http_client", "aiohttp / HttpClient CPU per call", ratio, "x")


if __name__ == "__main__":
    main()
