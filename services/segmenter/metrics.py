"""Segmenter metrics: module-level constants, units in the names, small label sets."""

from __future__ import annotations

from functools import cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPLIED = Counter(
    "kizuna_segmenter_events_applied_total",
    "Customer events applied to state, by outcome (changed, unchanged, forwarded)",
    ["outcome"],
)
APPLIED_CHANGED = EVENTS_APPLIED.labels("changed")
APPLIED_UNCHANGED = EVENTS_APPLIED.labels("unchanged")
APPLIED_FORWARDED = EVENTS_APPLIED.labels("forwarded")
TRANSITIONS = Counter(
    "kizuna_segmenter_segment_transitions_total",
    "Segment changes emitted, by dimension, from and to segment and reason",
    ["dimension", "from_segment", "to_segment", "reason"],
)


@cache  # bounded: 2 dimensions x the segments and groups x 5 reasons
def transition(dimension: str, from_segment: str, to_segment: str, reason: str) -> Any:
    """The counter's child for one transition, looked up once (``labels()`` costs ~1 µs,
    and a sweep counts hundreds of thousands)."""
    return TRANSITIONS.labels(dimension, from_segment, to_segment, reason)


SWEEP_SECONDS = Histogram(
    "kizuna_segmenter_sweep_seconds",
    "Time for one sweep of the time index (popping due customers, sending ticks)",
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0),
)
SWEEP_DUE = Counter("kizuna_segmenter_sweep_due_total", "Customers found due by the time sweep")
TICKS_IN_FLIGHT = Gauge(
    "kizuna_segmenter_ticks_in_flight",
    "Due customers the sweep sent as ticks that this worker has not re-scored yet (above 0 "
    "for long: a backlog being caught up, or ticks not coming back)",
)
CUSTOMERS = Gauge(
    "kizuna_segmenter_customers", "Customer rows this worker's active partitions hold"
)
CLOCK_PINNED = Gauge(
    "kizuna_segmenter_clock_pinned_seconds",
    "Event time (epoch s) a ClockSet pinned the clock to (replays, tests); 0: the wall clock",
)
TIME_INDEX_ENTRIES = Gauge(
    "kizuna_segmenter_time_index_entries", "Customers waiting in the time index"
)
IDENTITY_CHANGES = Counter(
    "kizuna_segmenter_identity_changes_total",
    "identity.changes handled, by type (merged folds, split keeps the old state)",
    ["type"],
)
