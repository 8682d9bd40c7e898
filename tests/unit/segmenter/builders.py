"""Events for segmenter stories: orders, receipts, refunds, cancels, profile updates."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.commerce import LineItem, Money, Product
from schemas.customer import CustomerEvent
from schemas.events import (
    OrderCancelled,
    OrderCompleted,
    OrderRefunded,
    PageViewed,
    PosPurchased,
    ProfileUpdated,
    RawEvent,
    Source,
)
from schemas.identifiers import Identifiers
from schemas.payloads import (
    OrderCancelledPayload,
    OrderCompletedPayload,
    OrderRefundedPayload,
    PageViewedPayload,
    PosPurchasedPayload,
    ProfileUpdatedPayload,
)

JST = ZoneInfo("Asia/Tokyo")
DAY0 = datetime(2026, 1, 5, 12, 0, tzinfo=JST)
_ids = itertools.count(1)


def on_day(day: int, hour: int = 12) -> datetime:
    """``day`` days after DAY0 (a Monday), at ``hour`` o'clock Tokyo time."""
    return (DAY0 + timedelta(days=day)).replace(hour=hour)


def _envelope(at: datetime, event_id: str | None, source: Source) -> dict[str, object]:
    return {
        "event_id": event_id or f"e{next(_ids)}",
        "occurred_at": at,
        "received_at": at,
        "source": source,
        "identifiers": Identifiers(member_id="m-1"),
    }


def _items(total: int) -> tuple[LineItem, ...]:
    product = Product(product_id="tea-001", price=max(total, 1))
    return (LineItem(product=product, quantity=1, unit_price=max(total, 1), amount=total),)


def order(
    order_id: str, total: int, at: datetime, *, mall: str | None = None, event_id: str | None = None
) -> OrderCompleted:
    payload = OrderCompletedPayload(
        order_id=order_id,
        mall=mall,
        items=_items(total),
        money=Money(subtotal=total, total=total),
    )
    return OrderCompleted(**_envelope(at, event_id, Source.WEB), payload=payload)


def receipt(
    store_id: str, receipt_id: str, total: int, at: datetime, *, event_id: str | None = None
) -> PosPurchased:
    payload = PosPurchasedPayload(
        store_id=store_id,
        receipt_id=receipt_id,
        items=_items(total),
        money=Money(subtotal=total, total=total),
    )
    return PosPurchased(**_envelope(at, event_id, Source.POS), payload=payload)


def cancel(order_id: str, at: datetime) -> OrderCancelled:
    payload = OrderCancelledPayload(order_id=order_id)
    return OrderCancelled(**_envelope(at, None, Source.WEB), payload=payload)


def refund(
    order_id: str, amount: int, at: datetime, *, event_id: str | None = None
) -> OrderRefunded:
    payload = OrderRefundedPayload(order_id=order_id, amount=amount)
    return OrderRefunded(**_envelope(at, event_id, Source.WEB), payload=payload)


def profile(
    at: datetime, *, birthday: date | None = None, channel: str | None = None
) -> ProfileUpdated:
    fields: dict[str, object] = {}
    if birthday is not None:
        fields["birthday"] = birthday
    if channel is not None:
        fields["preferred_channel"] = channel
    payload = ProfileUpdatedPayload(**fields)  # type: ignore[arg-type]
    return ProfileUpdated(**_envelope(at, None, Source.CRM), payload=payload)


def page(at: datetime) -> PageViewed:
    payload = PageViewedPayload(url="https://shop.example/")
    return PageViewed(**_envelope(at, None, Source.WEB), payload=payload)


def for_customer(customer_id: str, event: RawEvent) -> CustomerEvent:
    return CustomerEvent(
        customer_id=customer_id, identity_version=1, resolved_at=event.received_at, event=event
    )


def ts(at: datetime) -> int:
    return int(at.timestamp())
