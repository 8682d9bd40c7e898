"""Geofences: stores with a centre and radius, opening hours, and visit detection.

A ping counts as inside a store when its distance to the centre is within the radius
and its reported accuracy is good enough. A visit starts at the first ping inside and
ends after a gap (debounce); it triggers once the person has dwelt long enough, during
opening hours, and not within the per-store cooldown of the last trigger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import time

from services.journey.domain.policy import local
from services.journey.domain.scenario import GeofenceTrigger
from services.journey.domain.state import Visit

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Store:
    store_id: str
    name: str
    latitude: float
    longitude: float
    radius_m: float
    opens: time = time(10, 0)
    closes: time = time(20, 0)
    timezone: str = "Asia/Tokyo"

    def is_open(self, at: float) -> bool:
        t = local(at, self.timezone).time().replace(tzinfo=None)
        if self.opens <= self.closes:
            return self.opens <= t < self.closes
        return t >= self.opens or t < self.closes  # open past midnight


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def stores_containing(
    stores: tuple[Store, ...], lat: float, lon: float, accuracy_m: float, rule: GeofenceTrigger
) -> list[Store]:
    if accuracy_m > rule.max_accuracy_m:
        return []
    wanted = None if rule.stores == "all" else set(rule.stores)
    return [
        s
        for s in stores
        if (wanted is None or s.store_id in wanted)
        and distance_m(lat, lon, s.latitude, s.longitude) <= s.radius_m
    ]


def observe(visit: Visit | None, at: float, rule: GeofenceTrigger) -> Visit:
    """The visit after a ping inside the store at ``at`` (pings may arrive out of order)."""
    if (
        visit is None
        or at - visit.last_inside > rule.debounce
        or at < visit.first_inside - rule.debounce
    ):
        return Visit(
            first_inside=at,
            last_inside=at,
            last_triggered=None if visit is None else visit.last_triggered,
        )
    return Visit(
        first_inside=min(visit.first_inside, at),
        last_inside=max(visit.last_inside, at),
        last_triggered=visit.last_triggered,
    )


def should_trigger(visit: Visit, at: float, rule: GeofenceTrigger, store: Store) -> bool:
    dwelt = visit.last_inside - visit.first_inside >= rule.dwell
    cooled = visit.last_triggered is None or abs(at - visit.last_triggered) >= rule.cooldown
    return dwelt and cooled and store.is_open(at)
