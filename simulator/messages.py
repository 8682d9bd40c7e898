"""What the simulated shop emits: Segment calls, LINE webhook events, raw events.

Segment calls go to the gateway like an SDK sends them; LINE events go to the gateway's
webhook, signed like LINE signs them; raw events (POS receipts, mall orders, locations,
consents, card registrations) go straight to Kafka like an upstream integration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from schemas.events import RawEvent
from simulator.catalog import Item

JsonObject = dict[str, Any]
WEB_CONTEXT: JsonObject = {
    "library": {"name": "analytics.js", "version": "4.1.0"},
    "locale": "ja-JP",
    "timezone": "Asia/Tokyo",
    "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1",
}
_OS_NAMES = {"ios": "iOS", "android": "Android"}


@dataclass(frozen=True)
class SegmentCall:
    """One Segment call for ``/v1/batch``, sent with the write key of ``source``."""

    source: Literal["web", "app"]
    message: JsonObject


@dataclass(frozen=True)
class LineEvent:
    """One LINE webhook event; for an accountLink, the member the site issued a nonce for."""

    event: JsonObject
    link_member: str | None = None


@dataclass(frozen=True)
class DirectEvent:
    """A raw event an upstream system produces straight to its raw topic."""

    event: RawEvent


Emission = SegmentCall | LineEvent | DirectEvent


def segment(
    kind: str,
    message_id: str,
    at: datetime,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    context: JsonObject | None = None,
    **fields: Any,
) -> JsonObject:
    message: JsonObject = {"type": kind, "messageId": message_id, "timestamp": at.isoformat()}
    if user_id is not None:
        message["userId"] = user_id
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    message["context"] = context if context is not None else {}
    message.update(fields)
    return message


def web_context(url: str) -> JsonObject:
    return {**WEB_CONTEXT, "page": {"url": url}}


def app_context(device_id: str, platform: str, push_token: str) -> JsonObject:
    return {
        "device": {"id": device_id, "token": push_token, "type": platform},
        "os": {"name": _OS_NAMES[platform]},
        "app": {"name": "kizuna-shop", "version": "3.2.1", "build": "321"},
        "locale": "ja-JP",
        "timezone": "Asia/Tokyo",
    }


def product_properties(item: Item, **extra: Any) -> JsonObject:
    return {
        "product_id": item.product_id,
        "sku": f"{item.product_id}-01",
        "name": item.name,
        "category": item.category,
        "price": item.price,
        "currency": "JPY",
        "url": f"https://shop.example.jp/products/{item.product_id}",
        **extra,
    }


def line_items(cart: list[tuple[Item, int]]) -> list[JsonObject]:
    return [
        {"product": _product(item), "quantity": qty, "unit_price": item.price}
        | {"amount": item.price * qty}
        for item, qty in cart
    ]


def _product(item: Item) -> JsonObject:
    return {
        "product_id": item.product_id,
        "name": item.name,
        "category": item.category,
        "price": item.price,
    }


def shipping_for(subtotal: int) -> int:
    """Free shipping from 5,000 yen, else 550 yen."""
    return 0 if subtotal >= 5_000 else 550


def order_properties(order_id: str, cart_id: str, cart: list[tuple[Item, int]]) -> JsonObject:
    subtotal = sum(item.price * qty for item, qty in cart)
    shipping = shipping_for(subtotal)
    return {
        "order_id": order_id,
        "cart_id": cart_id,
        "subtotal": subtotal,
        "shipping": shipping,
        "tax": subtotal * 10 // 110,
        "total": subtotal + shipping,
        "currency": "JPY",
        "products": [product_properties(item, quantity=qty) for item, qty in cart],
    }


def money(cart: list[tuple[Item, int]], shipping: int = 0) -> JsonObject:
    subtotal = sum(item.price * qty for item, qty in cart)
    return {
        "subtotal": subtotal,
        "shipping": shipping,
        "tax": subtotal * 10 // 110,
        "total": subtotal + shipping,
        "currency": "JPY",
    }


def line_webhook_event(
    kind: str, event_id: str, at: datetime, line_user_id: str, **fields: Any
) -> JsonObject:
    event: JsonObject = {
        "type": kind,
        "mode": "active",
        "timestamp": int(at.timestamp() * 1000),
        "source": {"type": "user", "userId": line_user_id},
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": False},
    }
    event.update(fields)
    return event
