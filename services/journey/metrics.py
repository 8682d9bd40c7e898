"""Journey metrics: module-level, units in the names, small fixed label sets."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "kizuna_journey_events_total",
    "Customer events seen, by what the journey did with them",
    ["handling"],  # skipped (type no journey uses) | applied | forwarded
)
EVENTS_SKIPPED = EVENTS.labels("skipped")
EVENTS_APPLIED = EVENTS.labels("applied")
EVENTS_FORWARDED = EVENTS.labels("forwarded")
ENTERED = Counter("kizuna_journey_entered_total", "Journey entries", ["journey", "variant"])
EXITED = Counter("kizuna_journey_exited_total", "Journey exits", ["journey", "reason"])
REQUESTED = Counter(
    "kizuna_journey_notifications_requested_total",
    "Notification requests sent to the notifier",
    ["journey", "channel"],  # channel = first preference
)
SKIPPED = Counter(
    "kizuna_journey_skipped_total", "Messages or entries skipped or deferred", ["reason"]
)
CONVERSIONS = Counter(
    "kizuna_journey_conversions_total", "Goal conversions", ["journey", "variant"]
)
REVENUE = Counter(
    "kizuna_journey_conversion_revenue_yen_total", "Revenue of converted orders", ["journey"]
)
RECOVERED = Counter(
    "kizuna_journey_recovered_total",
    "Conversions after a message of the journey went out (recovered carts)",
    ["journey"],
)
RECOVERED_REVENUE = Counter(
    "kizuna_journey_recovered_revenue_yen_total", "Revenue of recovered orders", ["journey"]
)
MERGES = Counter(
    "kizuna_journey_merges_total",
    "Identity merges moving journey state: fold requested, state handed off, folded in",
    ["stage"],
)
MERGE_REQUESTED = MERGES.labels("requested")
MERGE_HANDED_OFF = MERGES.labels("handed_off")
MERGE_FOLDED = MERGES.labels("folded")
INSTANCES = Gauge("kizuna_journey_instances_active", "Customers with a pending journey step")
TIMERS = Gauge("kizuna_journey_timers_pending", "Pending timers in this worker's due index")
LATENESS = Histogram(
    "kizuna_journey_timer_lateness_seconds",
    "How long after its due time a timer fired",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0),
)
SWEEP_SECONDS = Histogram("kizuna_journey_sweep_seconds", "Time to pop due timers and send ticks")
REBUILD_SECONDS = Gauge(
    "kizuna_journey_index_rebuild_seconds", "Time the last due-index rebuild took"
)
