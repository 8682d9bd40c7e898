"""The simulated shop against real workers: events reach customers, people get stitched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import Consumer

from runtime.settings import Settings
from schemas.codec import decode
from schemas.topics import CUSTOMER_EVENTS
from simulator.observe import Scrape, parse
from tests.integration.conftest import ROOT

JST = ZoneInfo("Asia/Tokyo")
WRITE_KEYS = {"it-web-key": "web", "it-app-key": "app"}


def run_simulator(settings: Settings, gateway_port: int, stats: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env |= {
        "KIZUNA_KAFKA": settings.kafka,
        "KIZUNA_NAMESPACE": settings.namespace,
        "KIZUNA_SIM_GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "KIZUNA_SIM_STATS_FILE": str(stats),
    }
    command = [sys.executable, "-m", "simulator", "--seed", "5", "--rate", "60"]
    command += ["--customers", "80", "--seconds", "10", "--log", str(stats.with_suffix(".log"))]
    command += ["--start", shop_morning().isoformat()]
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=40)
    return dict(json.loads(stats.read_text()))


def shop_morning(now: datetime | None = None) -> datetime:
    """The latest 10:00 in Japan: the simulated ten hours then fall in the stores' opening
    hours whenever the suite runs (stores see nobody at night, so no POS events)."""
    now = (now or datetime.now(UTC)).astimezone(JST)
    morning = now.replace(hour=10, minute=0, second=0, microsecond=0)
    return morning if morning <= now else morning - timedelta(days=1)


def merges(metrics: Callable[[], str], timeout: float = 15.0) -> float:
    deadline = time.monotonic() + timeout
    found = 0.0
    while time.monotonic() < deadline:
        found = Scrape(parse(metrics())).total("kizuna_identity_merges_total") or 0.0
        if found > 0:
            break
        time.sleep(0.5)
    return found


def sources_seen(consumer: Consumer, timeout: float) -> set[str]:
    """Sources of the customer events that arrived, read until every kind was seen (the
    POS batch lands in bulk, not necessarily among the first few hundred events)."""
    wanted, seen = {"web", "app", "pos", "mall", "line"}, set[str]()
    deadline = time.monotonic() + timeout
    while not seen >= wanted and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert not message.error(), f"consumer error: {message.error()}"
        seen.add(str(decode(CUSTOMER_EVENTS.adapter, message.value()).event.source))
    return seen


@pytest.mark.usefixtures("topics")
def test_when_the_shop_runs_then_customer_events_flow_and_people_are_stitched(
    settings: Settings,
    worker_factory: Callable[[str], Any],
    consumer_factory: Callable[..., Consumer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KIZUNA_GATEWAY_WRITE_KEYS", json.dumps(WRITE_KEYS))
    monkeypatch.setenv("KIZUNA_GATEWAY_LINE_CHANNEL_SECRET", "it-line-secret")
    gateway = worker_factory("services.gateway")
    identity = worker_factory("services.identity")
    consumer = consumer_factory(CUSTOMER_EVENTS.name(settings.namespace))

    stats = run_simulator(settings, gateway.port, tmp_path / "stats.json")

    counts = stats["counts"]
    assert counts["emitted"] >= 400
    assert not {k: v for k, v in counts.items() if k.endswith("failed")}
    assert stats["sessions"]["store"] > 0, f"no store visits in the simulated hours: {stats}"
    assert sources_seen(consumer, timeout=40) >= {"web", "app", "pos", "mall", "line"}
    assert merges(identity.metrics) > 0
