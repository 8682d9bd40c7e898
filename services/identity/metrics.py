"""identity's metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_RESOLVED = Counter(
    "kizuna_identity_events_resolved_total", "Raw events attributed to a customer", ["path"]
)
CUSTOMERS_CREATED = Counter("kizuna_identity_customers_created_total", "New customers")
MERGES = Counter("kizuna_identity_merges_total", "Customers absorbed into a survivor")
SPLITS = Counter(
    "kizuna_identity_splits_total", "Customers split by a revoked link or a late event"
)
CONFLICTS = Counter("kizuna_identity_conflicts_total", "Links refused by a merge rule", ["rule"])
IDENTIFIERS_DROPPED = Counter(
    "kizuna_identity_identifiers_dropped_total",
    "Identifiers not used for linking (blocked, invalid, shared device)",
    ["kind", "why"],
)
BATCH_SECONDS = Histogram(
    "kizuna_identity_resolve_batch_seconds",
    "Time to resolve one batch, Redis and Kafka acknowledgements included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
GRAPH_WRITTEN_ELSEWHERE = Counter(
    "kizuna_identity_graph_written_elsewhere_total",
    "Times a worker found the graph written by another since its own last look, and read "
    "again what it kept (rising fast with several workers: contention on the graph)",
)
GRAPH_IDENTIFIERS = Gauge("kizuna_identity_graph_identifiers", "Identifiers in the graph")
GRAPH_CUSTOMERS = Gauge("kizuna_identity_graph_customers", "Customers in the graph")
RESOLVED_KNOWN = EVENTS_RESOLVED.labels("known")
RESOLVED_CHANGED = EVENTS_RESOLVED.labels("changed")
