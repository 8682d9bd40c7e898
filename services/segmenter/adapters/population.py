"""Exact population quantiles from Redis sorted sets, published as versioned snapshots.

One sorted set per dimension holds every scored customer: recency as the last purchase
day (time-invariant, so ageing needs no rewrite), frequency and monetary as trailing
window figures. A cut point is the member at rank ``ceil(q·n) − 1`` (ZRANGE by rank,
O(log n)): exact, and a customer's old value is simply replaced — which a quantile sketch
cannot do. Each snapshot gets the next version; workers pick up the current one.
"""

from __future__ import annotations

import math
from dataclasses import replace

import orjson
import redis.asyncio as aioredis

from services.segmenter.domain.scoring import Thresholds

QUANTILES = (0.2, 0.4, 0.6, 0.8)
DIMENSIONS = ("recency", "frequency", "monetary")


class RedisPopulation:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:segmenter"
        self._staged: dict[str, tuple[int, int, int] | None] = {}

    def key(self, dimension: str) -> str:
        return f"{self._prefix}:population:{dimension}"

    def stage(self, customer_id: str, values: tuple[int, int, int] | None) -> None:
        """(last purchase day, window F, window M), or None to leave the population."""
        self._staged[customer_id] = values

    async def flush(self) -> None:
        if not self._staged:
            return
        staged, self._staged = self._staged, {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for customer_id, values in staged.items():
                for dimension, value in zip(DIMENSIONS, values or (None,) * 3, strict=True):
                    if value is None:
                        pipe.zrem(self.key(dimension), customer_id)
                    else:
                        pipe.zadd(self.key(dimension), {customer_id: value})
            await pipe.execute()

    async def cut_points(self, dimension: str) -> tuple[float, ...] | None:
        key = self.key(dimension)
        size = int(await self._redis.zcard(key))
        if size == 0:
            return None
        async with self._redis.pipeline(transaction=False) as pipe:
            for q in QUANTILES:
                rank = max(0, math.ceil(q * size) - 1)
                pipe.zrange(key, rank, rank, withscores=True)
            answers = await pipe.execute()
        return tuple(float(answer[0][1]) for answer in answers)

    async def snapshot(
        self, today: int, base: Thresholds, dimensions: tuple[str, ...] = ("recency", "monetary")
    ) -> Thresholds:
        """Compute quantile cuts for ``dimensions`` (others keep ``base``) and publish
        them as the next version."""
        thresholds = base
        if "recency" in dimensions and (days := await self.cut_points("recency")):
            # higher last-purchase day = more recent; the 20 % most recent score 5
            edges = tuple(sorted(today - day for day in days))
            thresholds = replace(thresholds, recency_edges=edges)
        if "frequency" in dimensions and (cuts := await self.cut_points("frequency")):
            thresholds = replace(thresholds, frequency_cuts=cuts)
        if "monetary" in dimensions and (cuts := await self.cut_points("monetary")):
            thresholds = replace(thresholds, monetary_cuts=cuts)
        version = int(await self._redis.incr(f"{self._prefix}:thresholds:version"))
        published = replace(thresholds, version=version)
        await self._redis.set(f"{self._prefix}:thresholds:current", _dump(published))
        return published

    async def current(self) -> Thresholds | None:
        raw = await self._redis.get(f"{self._prefix}:thresholds:current")
        return None if raw is None else _load(raw)


def _dump(t: Thresholds) -> bytes:
    return orjson.dumps(
        {
            "version": t.version,
            "recency_edges": t.recency_edges,
            "frequency_cuts": t.frequency_cuts,
            "monetary_cuts": t.monetary_cuts,
            "hysteresis": t.hysteresis,
        }
    )


def _load(raw: bytes | str) -> Thresholds:
    data = orjson.loads(raw)
    return Thresholds(
        version=data["version"],
        recency_edges=tuple(data["recency_edges"]),
        frequency_cuts=tuple(data["frequency_cuts"]),
        monetary_cuts=tuple(data["monetary_cuts"]),
        hysteresis=data["hysteresis"],
    )
