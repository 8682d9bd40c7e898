"""What the journey engine remembers about a customer from their events: purchases
(for exits, F2 and new-vs-existing), consents, birthday and time zone, the last time of
the event types conditions ask about. Also reading values out of event payloads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from schemas.channels import Purpose
from services.journey.domain.catalogue import PURCHASES, Context
from services.journey.domain.entry import Trigger
from services.journey.domain.scenario import Scenario
from services.journey.domain.state import CustomerState, Purchase, Visit

KEEP_PURCHASES = 10
MAX_CART_PRODUCTS = 5


class Event(Protocol):
    """What the engine reads of an event: a ``schemas.events.RawEvent``, or the fields
    of it the journey decodes (``services.journey.messages.UsedEvent``)."""

    @property
    def type(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def payload(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class PurchaseFact:
    order_id: str | None
    amount: int


def learn(state: CustomerState, event: Event, at: float, ctx: Context) -> PurchaseFact | None:
    p: Any = event.payload
    kind = event.type
    if kind in ctx.tracked:
        state.recent_events[kind] = max(at, state.recent_events.get(kind, at))
    if kind in PURCHASES:
        order_id = order_id_of(event)
        cart_id = p.cart_id if kind == "order_completed" else None
        fact = PurchaseFact(order_id, p.money.total)
        if not any(x.order_id == order_id for x in state.purchases):
            state.orders += 1
            state.purchases.append(Purchase(at, kind, order_id, cart_id, p.money.total))
        return fact
    if kind in ("consent_granted", "consent_revoked") and p.purpose is Purpose.MARKETING:
        state.consents[p.channel.value] = kind == "consent_granted"
    elif kind in ("line_followed", "line_unfollowed"):
        state.consents["line"] = kind == "line_followed"  # a follow is the LINE opt-in
    elif kind == "profile_updated":
        _profile(state, p.birthday, p.timezone)
    elif kind == "identified":
        _profile(state, p.traits.birthday, None)
    return None


def order_id_of(event: Event) -> str | None:
    """Orders and store receipts share one id space: ``store:receipt`` for the POS."""
    p: Any = event.payload
    if event.type == "pos_purchased":
        return f"{p.store_id}:{p.receipt_id}"
    found = value_at(p, "order_id")
    return None if found is None else str(found)


def _profile(state: CustomerState, birthday: Any, timezone: str | None) -> None:
    if birthday is not None:
        changed = birthday.strftime("%m-%d")
        if changed != state.birthday:
            state.birthday = changed
            state.scheduled.clear()  # recomputed for the new date by schedule_dates
    if timezone:
        state.timezone = timezone


def value_at(payload: Any, path: str | None) -> Any:
    """``payload.a.b`` for the dotted ``path`` ("cart_id", "product.category"): keys of dicts,
    fields (and extra keys) of models, never their methods; None if absent."""
    if path is None:
        return None
    if "|" in path:  # alternatives: the first one present
        for alternative in path.split("|"):
            if (found := value_at(payload, alternative)) is not None:
                return found
        return None
    current = payload
    for part in path.split("."):
        if isinstance(current, dict):
            current = current.get(part)
        else:
            # A model keeps its fields in __dict__ and extra keys apart; a missing name
            # read with getattr would cost pydantic ~2 µs and could find a method.
            fields = getattr(current, "__dict__", None) or {}
            extra = getattr(current, "__pydantic_extra__", None) or {}
            current = fields[part] if part in fields else extra.get(part)
        if current is None:
            return None
    return current


def where_matches(where: dict[str, Any], event: Event) -> bool:
    return all(value_at(event.payload, path) == wanted for path, wanted in where.items())


def trigger_of(scenario: Scenario, event: Event, at: float) -> Trigger:
    key = value_at(event.payload, scenario.entry.key) if scenario.entry.key else None
    return Trigger(
        event_id=event.event_id,
        at=at,
        key=None if key is None else str(key),
        value=value_of(event),
        data=data_of(event),
    )


def value_of(event: Event) -> int:
    p: Any = event.payload
    if event.type in ("product_added",):
        return int((p.product.price or 0) * p.quantity)
    if event.type in ("cart_viewed", "checkout_started"):
        return int(p.total)
    if event.type in PURCHASES:
        return int(p.money.total)
    return 0


def data_of(event: Event) -> dict[str, Any]:
    """Template data from the triggering event: the items, their total, the order."""
    p: Any = event.payload
    if event.type in ("product_added", "product_viewed"):
        quantity = p.quantity if event.type == "product_added" else 1
        data: dict[str, Any] = {"items": [_item(p.product, quantity)], "total": value_of(event)}
        if event.type == "product_added":
            data["cart_id"] = p.cart_id
        return data
    if event.type in PURCHASES:
        items = [_item(line.product, line.quantity, line.unit_price) for line in p.items]
        return {
            "order_id": order_id_of(event),
            "items": items[:MAX_CART_PRODUCTS],
            "total": p.money.total,
        }
    return {}


def _item(product: Any, quantity: int, price: int | None = None) -> dict[str, Any]:
    item = {"name": product.name or product.product_id, "quantity": quantity}
    item["price"] = price if price is not None else (product.price or 0)
    if product.url:
        item["url"] = product.url
    return item


def fold(state: CustomerState, absorbed: CustomerState) -> None:
    """Facts of an absorbed customer join the survivor's (instances are merged apart)."""
    seen = {p.order_id for p in state.purchases}
    extra = [p for p in absorbed.purchases if p.order_id not in seen]
    state.purchases.extend(extra)
    state.orders += absorbed.orders - (len(absorbed.purchases) - len(extra))
    state.sends.extend(
        s
        for s in absorbed.sends
        if s.notification_id not in {x.notification_id for x in state.sends}
    )
    for channel, granted in absorbed.consents.items():
        # an opt-out on either profile stands: consent is never widened by a merge
        state.consents[channel] = granted and state.consents.get(channel, True)
    state.rfm = state.rfm or absorbed.rfm
    state.cpm = state.cpm or absorbed.cpm
    state.birthday = state.birthday or absorbed.birthday
    state.timezone = state.timezone or absorbed.timezone
    for journey, due in absorbed.scheduled.items():
        state.scheduled.setdefault(journey, due)
    for store, visit in absorbed.visits.items():
        mine = state.visits.get(store)
        state.visits[store] = visit if mine is None else _later_visit(mine, visit)
    for kind, at in absorbed.recent_events.items():
        state.recent_events[kind] = max(at, state.recent_events.get(kind, at))


def _later_visit(a: Visit, b: Visit) -> Visit:
    triggered = [t for t in (a.last_triggered, b.last_triggered) if t is not None]
    newer = a if a.last_inside >= b.last_inside else b
    return Visit(newer.first_inside, newer.last_inside, max(triggered) if triggered else None)
