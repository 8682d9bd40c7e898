"""``python -m simulator.console``: the pipeline live, from each worker's ``/metrics``.

    python -m simulator.console [--seconds N] [--interval 2] [--summary]

Refreshes every ``--interval`` seconds: events/s per stage, consumer lag per group
``<namespace>-<service>``, identity customers and merges, segment distribution, messages
by channel and outcome, dead letters. "-" where a stage reports nothing. Without a
terminal (or with ``--summary``) it prints one final screen after ``--seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
from rich.console import Console, Group
from rich.live import Live

from runtime.settings import load_settings
from simulator.observe import Lag, scrape
from simulator.settings import SimulatorSettings
from simulator.view import Observation, Rates, render

TITLE = "kizuna · simulated shop · live"


class Observer:
    def __init__(self, sim: SimulatorSettings, lag: Lag) -> None:
        self._sim = sim
        self._lag = lag
        self._client = httpx.Client()

    def observe(self) -> Observation:
        scrapes = {name: scrape(self._client, url) for name, url in self._sim.metrics_urls.items()}
        return Observation(time.monotonic(), scrapes, self._lag.measure(), self._stats())

    def _stats(self) -> dict[str, Any] | None:
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            return dict(orjson.loads(self._sim.stats_file.read_bytes()))
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simulator.console")
    parser.add_argument("--seconds", type=float, default=None, help="exit after N seconds")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--summary", action="store_true", help="no live view: one final screen")
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> None:
    settings = load_settings()
    observer = Observer(SimulatorSettings(), Lag(settings.kafka, settings.namespace))
    console = Console()
    if not console.is_terminal:
        console = Console(width=110)  # a log or a CI page: wide enough for one screen
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    rates = Rates()
    screen = render(observer.observe(), rates, TITLE)
    if console.is_terminal and not args.summary:
        with Live(screen, console=console, auto_refresh=False) as live:
            for screen in _screens(observer, rates, stop, args.interval, deadline):
                live.update(screen, refresh=True)
        return
    for latest in _screens(observer, rates, stop, args.interval, deadline):
        screen = latest
    console.print(screen)


def _screens(
    observer: Observer, rates: Rates, stop: threading.Event, interval: float, deadline: float | None
) -> Iterator[Group]:
    while not stop.wait(_pause(interval, deadline)):
        yield render(observer.observe(), rates, TITLE)
        if deadline is not None and time.monotonic() >= deadline:
            return


def _pause(interval: float, deadline: float | None) -> float:
    if deadline is None:
        return interval
    return max(0.0, min(interval, deadline - time.monotonic()))


if __name__ == "__main__":
    main(parse_args())
