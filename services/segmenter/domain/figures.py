"""Figures of one customer as of a business day: RFM inputs, CPM inputs, lifetime sums."""

from __future__ import annotations

from dataclasses import dataclass

from services.segmenter.domain.calendar import BusinessCalendar
from services.segmenter.domain.facts import Facts


@dataclass(frozen=True, slots=True)
class Purchase:
    at: int  # epoch seconds
    net: int
    channel: str


@dataclass(frozen=True, slots=True)
class Figures:
    first_at: int
    last_at: int
    recency_days: int
    tenure_days: int
    lifetime_orders: int
    lifetime_amount: int
    window_frequency: int
    window_monetary: int
    online_orders: int
    store_orders: int


def purchases(facts: Facts, until: int | None = None) -> list[Purchase]:
    """Counted purchases (placed, not cancelled), oldest first; only those at or
    before ``until`` when given."""
    bought = [
        Purchase(order.placed_at, order.net, order.channel)
        for order in facts.orders.values()
        if order.placed_at is not None
        and not order.cancelled
        and (until is None or order.placed_at <= until)
    ]
    bought.sort(key=lambda p: p.at)
    return bought


def figures_of(
    bought: list[Purchase], today: int, calendar: BusinessCalendar, window_days: int
) -> Figures | None:
    """Figures as of business day ``today``; None for a customer who never bought.
    An order is in the trailing window while fewer than ``window_days`` days old."""
    if not bought:
        return None
    first_day, last_day = calendar.day(bought[0].at), calendar.day(bought[-1].at)
    window_f = window_m = online = 0
    for purchase in bought:
        if today - calendar.day(purchase.at) < window_days:
            window_f += 1
            window_m += purchase.net
        online += purchase.channel == "online"
    return Figures(
        first_at=bought[0].at,
        last_at=bought[-1].at,
        recency_days=max(0, today - last_day),
        tenure_days=last_day - first_day,
        lifetime_orders=len(bought),
        lifetime_amount=sum(p.net for p in bought),
        window_frequency=window_f,
        window_monetary=window_m,
        online_orders=online,
        store_orders=len(bought) - online,
    )
