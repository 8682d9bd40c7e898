"""What to do after a provider answered: done, next channel, retry later, or give up."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """How a provider answered one send."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # the provider had it already (LINE 409 on the same retry key)
    RETRYABLE = "retryable"  # 5xx, 429 (rate), timeout, connection refused
    PERMANENT = "permanent"  # other 4xx (and LINE's quota 429): not on this channel
    GONE = "gone"  # the address is dead (FCM UNREGISTERED, Web Push 404/410, SMTP 550)
    THROTTLED = "throttled"  # not sent: our own rate limit has no slot soon enough


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_s: float = 2.0
    cap_s: float = 600.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Exponential backoff with equal jitter; never sooner than ``Retry-After``."""
        ceiling = min(self.cap_s, self.base_s * 2 ** max(attempt - 1, 0))
        jittered = ceiling / 2 + rng.uniform(0, ceiling / 2)
        return float(max(jittered, retry_after or 0.0))


class Step(StrEnum):
    SENT = "sent"
    NEXT_CHANNEL = "next_channel"
    RETRY = "retry"
    DEFER = "defer"  # not tried: schedule at the rate limit's next slot, no attempt used
    FAIL = "fail"


def next_step(verdict: Verdict, attempt: int, policy: RetryPolicy, has_next: bool) -> Step:
    """Retry only what may succeed later; fall back on permanent failure when allowed."""
    if verdict in (Verdict.ACCEPTED, Verdict.DUPLICATE):
        return Step.SENT
    if verdict is Verdict.THROTTLED:
        return Step.DEFER
    if verdict is Verdict.RETRYABLE:
        return Step.RETRY if attempt < policy.max_attempts else Step.FAIL
    return Step.NEXT_CHANNEL if has_next else Step.FAIL
