"""The metric names kizuna's workers export, read from the code that exports them.

Alerts and dashboards refer to metrics by name; these helpers let a test say "every name
used there is exported by some worker", so renaming a metric breaks the test instead of
silently emptying a panel or disarming an alert.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from pathlib import Path

from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[3]

# The journey service is being written; DESIGN.md and issue 8 fix these names for it.
# Once services/journey/metrics.py exports them, this list is redundant (not wrong).
JOURNEY_METRICS = {
    "kizuna_journey_events_total": "counter",
    "kizuna_journey_instances_active": "gauge",
    "kizuna_journey_timers_pending": "gauge",
    "kizuna_journey_notifications_requested_total": "counter",
    "kizuna_journey_skipped_total": "counter",
    "kizuna_journey_conversions_total": "counter",
    "kizuna_journey_timer_lateness_seconds": "histogram",
}
# journey is a faust worker too (DESIGN.md: faust tables), so it gets faust's sensor.
PENDING_FAUST_WORKERS = {"journey"}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
METRIC_NAME = re.compile(r"\bkizuna_[a-z0-9_]+")
NAME_MATCHER = re.compile(r"""__name__\s*=~\s*"([^"]+)\"""")


def sample_names(name: str, kind: str) -> set[str]:
    """The series names Prometheus stores for one metric family."""
    base = name.removesuffix("_total") if kind == "counter" else name
    return {base + suffix for suffix in _SUFFIXES.get(kind, ("",))}


def _families(metrics: Iterable[Metric]) -> set[str]:
    return {sample for family in metrics for sample in sample_names(family.name, family.type)}


def metrics_modules() -> list[str]:
    """``runtime.metrics`` and every ``services.<name>.metrics``."""
    modules = ["runtime.metrics"]
    modules += [
        f"services.{path.parent.name}.metrics"
        for path in sorted((ROOT / "services").glob("*/metrics.py"))
    ]
    return modules


def module_metric_names(module_name: str) -> set[str]:
    module = importlib.import_module(module_name)
    collectors = [value for value in vars(module).values() if isinstance(value, MetricWrapperBase)]
    return _families(family for collector in collectors for family in collector.describe())


def faust_workers() -> set[str]:
    """Workers built on runtime.app.create_app, which wires faust's Prometheus sensor."""
    workers = set(PENDING_FAUST_WORKERS)
    for package in (ROOT / "services").iterdir():
        if any("create_app(" in path.read_text("utf-8") for path in package.glob("*.py")):
            workers.add(package.name)
    return workers


def faust_metric_names(service: str) -> set[str]:
    """What faust's sensor exports under runtime/app.py's prefix ``kizuna_faust_<service>``."""
    registry = CollectorRegistry()
    FaustMetrics.create(registry, f"kizuna_faust_{service}")
    return _families(registry.collect())


def exported_metric_names() -> set[str]:
    names = {name for module in metrics_modules() for name in module_metric_names(module)}
    for service in faust_workers():
        names |= faust_metric_names(service)
    for name, kind in JOURNEY_METRICS.items():
        names |= sample_names(name, kind)
    return names


def unknown_metric_names(expressions: Iterable[str], exported: set[str]) -> list[str]:
    """Names (and ``__name__=~`` patterns) in PromQL expressions that nothing exports."""
    unknown: set[str] = set()
    for expr in expressions:
        for pattern in NAME_MATCHER.findall(expr):
            if not any(re.fullmatch(pattern, name) for name in exported):
                unknown.add(f'__name__=~"{pattern}"')
        plain = NAME_MATCHER.sub("", expr)
        unknown |= {name for name in METRIC_NAME.findall(plain) if name not in exported}
    return sorted(unknown)
