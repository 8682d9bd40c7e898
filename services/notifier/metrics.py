"""The notifier's metrics: requests, sends by channel and outcome, provider latency,
retries, suppressions by reason, consent changes."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "kizuna_notifier_requests_total", "SendNotification requests handled", ["purpose", "origin"]
)
SENDS = Counter(
    "kizuna_notifier_sends_total",
    "Provider calls by channel and how the provider answered",
    ["channel", "outcome"],
)
OUTCOMES = Counter("kizuna_notifier_outcomes_total", "Outcomes published, by status", ["status"])
SUPPRESSED = Counter("kizuna_notifier_suppressed_total", "Requests not sent, by reason", ["reason"])
RETRIES = Counter("kizuna_notifier_retries_total", "Sends scheduled for retry", ["channel"])
RATE_DEFERRED = Counter(
    "kizuna_notifier_rate_deferred_total",
    "Sends put off because the provider's rate limit had no slot soon enough",
    ["channel"],
)
PROVIDER_LATENCY = Histogram(
    "kizuna_notifier_provider_latency_seconds",
    "Time a provider took to answer one send",
    ["channel"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
CONSENT_CHANGES = Counter(
    "kizuna_notifier_consent_changes_total",
    "Consent records kept in the ledger",
    ["channel", "purpose", "state", "method"],
)
UNSUBSCRIBES = Counter(
    "kizuna_notifier_unsubscribes_total", "One-click unsubscribe requests", ["result"]
)


# Hot-path shortcuts: a label set's child, looked up once (``labels()`` costs µs per call).
@cache
def requests_for(purpose: str, origin: str) -> Counter:
    return REQUESTS.labels(purpose, origin)


@cache
def sends_for(channel: str, outcome: str) -> Counter:
    return SENDS.labels(channel, outcome)


@cache
def outcomes_for(status: str) -> Counter:
    return OUTCOMES.labels(status)


@cache
def latency_for(channel: str) -> Histogram:
    return PROVIDER_LATENCY.labels(channel)
