"""The cached faust monitor counts exactly what faust's own monitor counts."""

from __future__ import annotations

from types import SimpleNamespace

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry

from runtime.monitor import CachedPrometheusMonitor


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def drive(monitor: PrometheusMonitor) -> None:
    table = SimpleNamespace(name="journeys")
    for offset in range(3):
        for tp in (TP("kizuna.customer.events", 0), TP("kizuna.customer.events", 1)):
            monitor.on_message_in(tp, offset, SimpleNamespace())
            monitor.on_table_get(table, b"k")  # type: ignore[arg-type]
            monitor.on_table_set(table, b"k", b"v")  # type: ignore[arg-type]
    monitor.on_table_del(table, b"k")  # type: ignore[arg-type]


def test_when_messages_flow_then_the_cached_monitor_reports_what_faust_reports() -> None:
    plain_registry, cached_registry = CollectorRegistry(), CollectorRegistry()
    plain = PrometheusMonitor(metrics=FaustMetrics.create(plain_registry, "t"))
    cached = CachedPrometheusMonitor(metrics=FaustMetrics.create(cached_registry, "t"))
    drive(plain)
    drive(cached)
    assert samples(cached_registry) == samples(plain_registry)
    assert (
        samples(cached_registry)[
            ("t_messages_received_per_topic_total", (("topic", "kizuna.customer.events"),))
        ]
        == 6
    )
