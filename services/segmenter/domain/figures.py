"""Figures of one customer as of a business day: RFM inputs, CPM inputs, lifetime sums."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from schemas.base import new_tuple
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
    return purchases_of(facts.orders.values(), until)


def purchases_of(orders: Iterable[Sequence[Any]], until: int | None = None) -> list[Purchase]:
    """:func:`purchases` of orders given by position (an :class:`Order`, or the list a
    stored row keeps for one: the same fields in the same order)."""
    bought: list[Purchase] = []
    add = bought.append
    # unpacked by position, with the net inlined: ~40 % cheaper than reading the fields
    # (a sweep asks this of every due customer, a view flush of every changed one)
    for at, total, channel, _, cancelled, refunds in orders:
        if at is None or cancelled or (until is not None and at > until):
            continue
        net = net_of(total, refunds) if refunds or total < 0 else total
        add(new_tuple(Purchase, (at, net, channel)))
    if len(bought) > 1:
        bought.sort()  # by time first (ties: by amount, channel; only for a stable order)
    return bought


def figures_of(
    bought: list[Purchase], today: int, calendar: BusinessCalendar, window_days: int
) -> Figures | None:
    """Figures as of business day ``today``; None for a customer who never bought.
    An order is in the trailing window while fewer than ``window_days`` days old: from
    the first second of day ``today - window_days + 1`` on (compared as epoch seconds,
    not day by day: a sweep asks this of every due customer)."""
    if not bought:
        return None
    first, last = bought[0][0], bought[-1][0]
    first_day, last_day = calendar.day(first), calendar.day(last)
    since = calendar.start(today - window_days + 1)
    window_f = window_m = online = lifetime = 0
    for at, net, channel in bought:
        lifetime += net
        if channel == "online":
            online += 1
        if at >= since:
            window_f += 1
            window_m += net
    count = len(bought)
    return new_tuple(
        Figures,
        (
            first,
            last,
            max(0, today - last_day),  # recency_days
            last_day - first_day,  # tenure_days
            count,
            lifetime,
            window_f,
            window_m,
            online,
            count - online,
        ),
    )
