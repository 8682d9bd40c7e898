"""Policies across journeys: frequency caps, quiet hours, holdout and split assignment.

All pure: times are epoch seconds, zones are IANA names, randomness is a keyed hash so
a customer lands in the same variant and the same holdout on every replay and worker.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from services.journey.domain.scenario import QuietHours, Variant
from services.journey.domain.state import SendRecord


@dataclass(frozen=True, slots=True)
class Cap:
    window: float  # seconds
    limit: int


@dataclass(frozen=True, slots=True)
class Policy:
    """Settings that hold across every journey (from ``JourneySettings``)."""

    timezone: str = "Asia/Tokyo"
    global_cap: Cap | None = Cap(16 * 3600.0, 1)
    channel_caps: dict[str, Cap] = field(
        default_factory=lambda: {"email": Cap(16 * 3600.0, 1), "push": Cap(24 * 3600.0, 1)}
    )
    quiet_hours: QuietHours | None = field(default_factory=QuietHours)
    global_holdout: float = 0.0
    salt: str = "kizuna"
    template_defaults: dict[str, Any] = field(default_factory=dict)  # e.g. the shop's name
    longest_window: float = field(init=False, repr=False, compare=False)
    """The longest cap window: how long a send is remembered (worked out once: every
    event's prune asks)."""

    def __post_init__(self) -> None:
        windows = [c.window for c in self.channel_caps.values()]
        if self.global_cap is not None:
            windows.append(self.global_cap.window)
        object.__setattr__(self, "longest_window", max(windows, default=0.0))

    def longest_cap_window(self) -> float:
        return self.longest_window


def unit_hash(*parts: str) -> float:
    """A stable number in [0, 1) for ``parts``."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def short_id(prefix: str, *parts: str) -> str:
    return prefix + hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


def in_holdout(policy: Policy, customer_id: str, journey: str, share: float) -> bool:
    global_share = policy.global_holdout
    if global_share > 0 and unit_hash(policy.salt, "global-holdout", customer_id) < global_share:
        return True
    return share > 0 and unit_hash(policy.salt, "holdout", journey, customer_id) < share


def pick_variant(
    policy: Policy, customer_id: str, journey: str, variants: tuple[Variant, ...]
) -> Variant:
    """Sticky weighted choice: the same customer always gets the same variant."""
    point = unit_hash(policy.salt, "split", journey, customer_id) * sum(v.weight for v in variants)
    for variant in variants:
        point -= variant.weight
        if point < 0:
            return variant
    return variants[-1]


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(at: float, tz: str) -> datetime:
    return datetime.fromtimestamp(at, UTC).astimezone(zone(tz))


def next_local_time(after: float, days: int, at: clock, tz: str) -> float:
    """The first ``at`` wall-clock time in ``tz`` at least ``days`` calendar days after
    ``after`` (and not before it): "next day 10:00" is ``days=1, at=10:00``."""
    start = local(after, tz)
    day = start.date() + timedelta(days=days)
    candidate = datetime.combine(day, at, zone(tz))
    if candidate.timestamp() < after:
        candidate = datetime.combine(day + timedelta(days=1), at, zone(tz))
    return candidate.timestamp()


def quiet_until(at: float, quiet: QuietHours, tz: str) -> float | None:
    """When the quiet window that ``at`` falls in ends, or None if ``at`` is not quiet."""
    now = local(at, tz)
    t = now.time().replace(tzinfo=None)
    start, end = quiet.start, quiet.end
    if start == end:
        return None
    crosses_midnight = start > end
    inside = (t >= start or t < end) if crosses_midnight else (start <= t < end)
    if not inside:
        return None
    end_day = now.date() + timedelta(days=1) if crosses_midnight and t >= start else now.date()
    return datetime.combine(end_day, end, zone(tz)).timestamp()


def cap_free_at(sends: list[SendRecord], cap: Cap, at: float, channel: str | None) -> float | None:
    """None when one more message fits at ``at``; else the earliest time it fits.

    ``channel`` None counts every marketing send (the global cap); a channel counts the
    sends that went on it, and sends whose channel is not known yet count everywhere.
    """
    times = sorted(
        s.at
        for s in sends
        if at - cap.window < s.at <= at and (channel is None or s.channel in (None, channel))
    )
    if len(times) < cap.limit:
        return None
    return times[len(times) - cap.limit] + cap.window
