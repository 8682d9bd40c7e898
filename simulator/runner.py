"""Drive the shop in real time: ``rate`` emissions per second, ``speed`` times faster clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from simulator.messages import DirectEvent, Emission, LineEvent, SegmentCall
from simulator.model import Shop
from simulator.sinks import Gateway, RawTopics

log = logging.getLogger(__name__)
TICK_S = 0.25


@dataclass(frozen=True)
class Pace:
    rate: float  # emissions per real second
    speed: float  # simulated seconds per real second

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.speed / self.rate)


@dataclass
class Batch:
    web: list[dict[str, object]]
    app: list[dict[str, object]]
    line: list[LineEvent]
    direct: list[DirectEvent]

    @classmethod
    def of(cls, emissions: list[Emission]) -> Batch:
        batch = cls([], [], [], [])
        for e in emissions:
            if isinstance(e, SegmentCall):
                (batch.web if e.source == "web" else batch.app).append(e.message)
            elif isinstance(e, LineEvent):
                batch.line.append(e)
            else:
                batch.direct.append(e)
        return batch


class Runner:
    def __init__(
        self, shop: Shop, pace: Pace, gateway: Gateway, raw: RawTopics, stats: Counter[str]
    ) -> None:
        self.shop = shop
        self.pace = pace
        self.gateway = gateway
        self.raw = raw
        self.stats = stats
        self._stream = shop.emissions()

    async def run(self, stop: asyncio.Event, stats_file: Path, seconds: float | None) -> None:
        started = time.monotonic()
        budget, written = 0.0, 0.0
        while not stop.is_set():
            tick = time.monotonic()
            if seconds is not None and tick - started >= seconds:
                break
            budget += self.pace.rate * TICK_S
            count, budget = int(budget), budget - int(budget)
            await self.send([next(self._stream) for _ in range(count)])
            if tick - written >= 1.0:
                self.write_stats(stats_file, tick - started)
                written = tick
            pause = TICK_S - (time.monotonic() - tick)
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
        self.write_stats(stats_file, time.monotonic() - started)

    async def send(self, emissions: list[Emission]) -> None:
        batch = Batch.of(emissions)
        for event in batch.direct:
            self.raw.send(event)
        await asyncio.gather(
            self.gateway.batch("web", batch.web),
            self.gateway.batch("app", batch.app),
            self.gateway.line(batch.line),
        )
        self.raw.poll()
        self.stats["emitted"] += len(emissions)

    def write_stats(self, path: Path, elapsed_s: float) -> None:
        document = {
            "elapsed_s": round(elapsed_s, 1),
            "simulated_at": self.shop.now.isoformat(),
            "rate": self.pace.rate,
            "speed": self.pace.speed,
            "counts": dict(self.stats),
            "sessions": dict(self.shop.started),
            "written_at": datetime.now().astimezone().isoformat(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(document))
        tmp.replace(path)
