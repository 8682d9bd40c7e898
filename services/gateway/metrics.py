"""Gateway metrics: module-level constants, units in the names, small label sets."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "kizuna_gateway_requests_total",
    "HTTP requests answered, by route and status code",
    ["route", "status"],
)
REQUEST_SECONDS = Histogram(
    "kizuna_gateway_request_seconds",
    "Time to answer one HTTP request",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
EVENTS_ACCEPTED = Counter(
    "kizuna_gateway_events_accepted_total",
    "Events acknowledged by Kafka on a raw topic, by source",
    ["source"],
)
EVENTS_DUPLICATE = Counter(
    "kizuna_gateway_events_duplicate_total",
    "Events answered as success without producing: their messageId was already accepted",
    ["source"],
)
EVENTS_REJECTED = Counter(
    "kizuna_gateway_events_rejected_total",
    "Events rejected (and dead-lettered), by reason",
    ["source", "reason"],
)
REQUESTS_REFUSED = Counter(
    "kizuna_gateway_requests_refused_total",
    "Whole requests refused before any event was read, by reason",
    ["reason"],
)
PRODUCE_SECONDS = Histogram(
    "kizuna_gateway_produce_seconds",
    "From handing a request's events to the producer until Kafka acknowledged all of them",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
KAFKA_UNAVAILABLE = Counter(
    "kizuna_gateway_kafka_unavailable_total",
    "Requests answered 503 because Kafka did not acknowledge their events in time",
)
DEDUPE_ERRORS = Counter(
    "kizuna_gateway_dedupe_errors_total",
    "Redis errors of the messageId store (the event is produced anyway; consumers dedupe)",
    ["operation"],
)
LINE_EVENTS_IGNORED = Counter(
    "kizuna_gateway_line_events_ignored_total",
    "LINE webhook events acknowledged without a kizuna event (message, postback, …)",
    ["type"],
)
POS_ROWS = Counter(
    "kizuna_gateway_pos_rows_total",
    "POS CSV rows read by the importer, by outcome",
    ["outcome"],
)
