"""Metrics shared by every service (service-specific ones live with the service).

Module-level constants, units in the name, a small fixed label set.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
    "Time to process one message in an agent",
    ["service", "stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
