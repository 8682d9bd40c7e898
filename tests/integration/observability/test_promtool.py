"""Prometheus' own checker accepts what we ship and what every worker serves.

``promtool check config`` / ``check rules`` on deploy/prometheus/, and ``promtool check
metrics`` on each worker's live /metrics after it processed real traffic (good events,
an event without identity, undecodable bytes) on the real Kafka + Redis.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.observability.conftest import Fleet, own_samples, worker_names
from tests.unit.deploy.promtool import promtool

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"

# Lint findings we accept, each for a reason outside kizuna's code. Our own metrics get
# no exemption. faust's Prometheus sensor (wired in runtime/app.py) names a millisecond
# histogram `<prefix>_events_runtime_ms`; renaming it means replacing faust's sensor.
ACCEPTED = [
    (
        re.compile(r"^kizuna_faust_[a-z]+_events_runtime_ms(_created)?$"),
        re.compile(r"^metric names should not contain abbreviated units$"),
    ),
]


def problems(output: str) -> list[str]:
    """promtool's findings (``<metric> <finding>`` lines), minus the accepted ones."""
    found = []
    for line in output.splitlines():
        metric, _, finding = line.strip().partition(" ")
        if not line.strip():
            continue
        if any(name.match(metric) and why.match(finding) for name, why in ACCEPTED):
            continue
        found.append(line)
    return found


@pytest.mark.parametrize(
    ("check", "path"),
    [("config", PROMETHEUS_DIR / "prometheus.yml"), ("rules", PROMETHEUS_DIR / "alerts.yml")],
    ids=["config", "rules"],
)
def test_when_promtool_checks_the_prometheus_files_then_they_are_valid(
    check: str, path: Path
) -> None:
    result = promtool("check", check, str(path))

    assert result.ok, f"promtool check {check} {path.name}:\n{result.output}"


@pytest.mark.parametrize("service", worker_names())
def test_when_a_worker_has_processed_traffic_then_promtool_accepts_its_live_metrics(
    fleet: Fleet, service: str
) -> None:
    exposition = fleet.worker(service).metrics()

    result = promtool("check", "metrics", stdin=exposition)

    assert own_samples(service, fleet.worker(service)), (
        f"{service} serves no kizuna_{service}_* samples after traffic:\n{exposition}"
    )
    assert problems(result.output) == [], (
        f"promtool check metrics on {service}'s /metrics (exit {result.returncode}):\n"
        f"{result.output}"
    )
