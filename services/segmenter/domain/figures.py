"""Figures of one customer as of a business day: RFM inputs, CPM inputs, lifetime sums."""

from __future__ import annotations

from typing import NamedTuple

from services.segmenter.domain.calendar import BusinessCalendar
from services.segmenter.domain.facts import Facts, net_of


class Purchase(NamedTuple):
    """A counted purchase (a tuple: a sweep builds millions of them)."""

    at: int  # epoch seconds
    net: int
    channel: str


class Figures(NamedTuple):
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
    bought: list[Purchase] = []
    add = bought.append
    # unpacked by position, with the net inlined: ~40 % cheaper than reading the fields
    # (a sweep asks this of every due customer, a view flush of every changed one)
    for at, total, channel, _, cancelled, refunds in facts.orders.values():
        if at is None or cancelled or (until is not None and at > until):
            continue
        add(Purchase(at, net_of(total, refunds) if refunds or total < 0 else total, channel))
    if len(bought) > 1:
        bought.sort()  # by time first (ties: by amount, channel; only for a stable order)
    return bought


def figures_of(
    bought: list[Purchase], today: int, calendar: BusinessCalendar, window_days: int
) -> Figures | None:
    """Figures as of business day ``today``; None for a customer who never bought.
    An order is in the trailing window while fewer than ``window_days`` days old."""
    if not bought:
        return None
    day = calendar.day
    first, last = bought[0].at, bought[-1].at
    last_day = day(last)
    window_f = window_m = online = lifetime = 0
    for at, net, channel in bought:
        lifetime += net
        online += channel == "online"
        if today - day(at) < window_days:
            window_f += 1
            window_m += net
    return Figures(
        first_at=first,
        last_at=last,
        recency_days=max(0, today - last_day),
        tenure_days=last_day - day(first),
        lifetime_orders=len(bought),
        lifetime_amount=lifetime,
        window_frequency=window_f,
        window_monetary=window_m,
        online_orders=online,
        store_orders=len(bought) - online,
    )
