"""Customer facts: what happened to one customer, folded from events.

Facts are order-independent and idempotent: orders are keyed by order id (a POS receipt
by ``pos:<store>:<receipt>``), refunds by the refund's event id, a cancel is a flag, and
profile fields are last-writer-wins on ``(occurred_at, event_id)``. Applying an event
twice, applying events in any order, or folding two customers' facts therefore gives the
same facts — which is what makes replays, out-of-order refunds and merges safe.

The segmenter's value types (here, in ``standing``, ``scoring``, ``figures`` and
``handlers``) are named tuples, immutable like frozen dataclasses: a worker builds
several per event, and a frozen dataclass costs ~4× as much to build (one
``object.__setattr__`` per field).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

from schemas.base import new_tuple
from schemas.events import (
    Identified,
    OrderCancelled,
    OrderCompleted,
    OrderRefunded,
    PosPurchased,
    ProfileUpdated,
    RawEvent,
)

OrderChannel = Literal["online", "store", ""]
Stamp = tuple[int, str]  # (occurred_at epoch seconds, event_id): total order for LWW


class Order(NamedTuple):
    """One order or receipt. ``placed_at`` is None while only a cancel/refund is known.
    (A named tuple: a row decodes into one per order, and a sweep decodes millions.)"""

    placed_at: int | None = None
    total: int = 0
    channel: OrderChannel = ""
    event_id: str = ""
    cancelled: bool = False
    refunds: tuple[tuple[str, int], ...] = ()  # (refund event_id, amount), sorted

    @property
    def counts(self) -> bool:
        """A placed, not cancelled order counts for F, first/last purchase and amounts."""
        return self.placed_at is not None and not self.cancelled

    @property
    def net(self) -> int:
        if self.placed_at is None or self.cancelled:  # not self.counts, inlined
            return 0
        return net_of(self.total, self.refunds)


def net_of(total: int, refunds: tuple[tuple[str, int], ...]) -> int:
    """What a counted order is worth once its refunds are taken off (never below 0)."""
    if refunds:
        total -= sum(amount for _, amount in refunds)
    return total if total > 0 else 0


class Trait(NamedTuple):
    value: str
    stamp: Stamp


class Facts(NamedTuple):
    orders: Mapping[str, Order]
    last_seen: int | None = None
    birthday: Trait | None = None
    preferred_channel: Trait | None = None


EMPTY = Facts(orders={})

FACT_TYPES = frozenset(
    {
        "order_completed",
        "pos_purchased",
        "order_cancelled",
        "order_refunded",
        "profile_updated",
        "identified",
    }
)
"""The event types whose content changes facts; every other type only moves last_seen."""


class Seen(NamedTuple):
    """An event of a type outside :data:`FACT_TYPES`, read for its time alone (a page
    view, a cart change, an app open): the intake skips decoding the rest of it."""

    event_id: str
    at: int


def pos_order_key(store_id: str, receipt_id: str) -> str:
    return f"pos:{store_id}:{receipt_id}"


def apply_event(facts: Facts, event: RawEvent | Seen) -> Facts:
    """The facts after ``event``; the very same object when the event changes nothing."""
    if isinstance(event, Seen):
        return _seen(facts, event.at)
    at = int(event.occurred_at.timestamp())
    seen = _seen(facts, at)
    if isinstance(event, OrderCompleted | PosPurchased):
        return _placed(seen, event, at)
    if isinstance(event, OrderCancelled):
        return _adjusted(seen, event.payload.order_id, cancelled=True)
    if isinstance(event, OrderRefunded):
        refund = (event.event_id, event.payload.amount)
        return _adjusted(seen, event.payload.order_id, refund=refund)
    if isinstance(event, ProfileUpdated):
        stamp = (at, event.event_id)
        seen = _trait(seen, "birthday", event.payload.birthday, stamp)
        return _trait(seen, "preferred_channel", event.payload.preferred_channel, stamp)
    if isinstance(event, Identified):
        return _trait(seen, "birthday", event.payload.traits.birthday, (at, event.event_id))
    return seen


def _seen(facts: Facts, at: int) -> Facts:
    if facts.last_seen is not None and facts.last_seen >= at:
        return facts
    return new_tuple(Facts, (facts.orders, at, facts.birthday, facts.preferred_channel))


def _placed(facts: Facts, event: OrderCompleted | PosPurchased, at: int) -> Facts:
    if isinstance(event, PosPurchased):
        key = pos_order_key(event.payload.store_id, event.payload.receipt_id)
        channel: OrderChannel = "store"
    else:
        key, channel = event.payload.order_id, "online"
    placed = Order(at, event.payload.money.total, channel, event.event_id)
    return _with_order(facts, key, placed)


def _adjusted(
    facts: Facts, key: str, *, cancelled: bool = False, refund: tuple[str, int] | None = None
) -> Facts:
    adjustment = Order(cancelled=cancelled, refunds=(refund,) if refund else ())
    return _with_order(facts, key, adjustment)


def _with_order(facts: Facts, key: str, order: Order) -> Facts:
    current = facts.orders.get(key)
    merged = order if current is None else merge_orders(current, order)
    if merged == current:
        return facts
    return facts._replace(orders={**facts.orders, key: merged})


def merge_orders(a: Order, b: Order) -> Order:
    """Commutative, associative, idempotent union of two views of one order."""
    placing = _placing(a, b)
    refunds = tuple(sorted(set(a.refunds) | set(b.refunds)))
    return Order(
        placing.placed_at,
        placing.total,
        placing.channel,
        placing.event_id,
        a.cancelled or b.cancelled,
        refunds,
    )


def _placing(a: Order, b: Order) -> Order:
    """The placement both sides agree on: the earliest (time, event id) one that exists."""
    if a.placed_at is None:
        return b
    if b.placed_at is None:
        return a
    return a if (a.placed_at, a.event_id) <= (b.placed_at, b.event_id) else b


def _trait(facts: Facts, name: str, value: object, stamp: Stamp) -> Facts:
    if value is None:
        return facts
    current: Trait | None = getattr(facts, name)
    if current is not None and current.stamp >= stamp:
        return facts
    trait = Trait(str(value), stamp)
    if name == "birthday":
        return facts._replace(birthday=trait)
    return facts._replace(preferred_channel=trait)


def fold(a: Facts, b: Facts) -> Facts:
    """Facts of one customer who had both histories (union by order id)."""
    orders = dict(a.orders)
    for key, order in b.orders.items():
        orders[key] = merge_orders(orders[key], order) if key in orders else order
    return Facts(
        orders=orders,
        last_seen=_max_optional(a.last_seen, b.last_seen),
        birthday=_latest(a.birthday, b.birthday),
        preferred_channel=_latest(a.preferred_channel, b.preferred_channel),
    )


def _max_optional(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _latest(a: Trait | None, b: Trait | None) -> Trait | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.stamp >= b.stamp else b
