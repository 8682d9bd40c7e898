"""Metrics shared by every service (service-specific ones live with the service).

Module-level constants, units in the name, a small fixed label set.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_CONSUMED = Counter(
    "kizuna_messages_consumed_total",
    "Messages read from a kizuna topic, valid or not",
    ["service", "topic"],
)
DEADLETTERS = Counter(
    "kizuna_deadletters_total",
    "Messages sent to the dead-letter topic, by reason",
    ["service", "reason"],
)
PROCESSING_SECONDS = Histogram(
    "kizuna_processing_seconds",
    "Time to process one message: per message in a faust agent (stage = its topic), the "
    "batch's time over its size in a batch consumer (stage = batch)",
    ["service", "stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
CONSUMER_LAG = Gauge(
    "kizuna_consumer_lag_messages",
    "Messages on a partition a batch consumer holds that are not yet committed",
    ["service", "topic", "partition"],
)


@cache
def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, looked up once per label set (``labels()`` takes a
    lock and builds a tuple: µs on a per-event path). For bounded label sets only."""
    return metric.labels(*values)


@cache
def processing(service: str, stage: str) -> Histogram:
    """The histogram's child for one stage, looked up once (``labels()`` costs µs)."""
    return PROCESSING_SECONDS.labels(service, stage)
