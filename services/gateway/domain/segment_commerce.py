"""The Segment e-commerce spec (``Product Viewed`` … ``Order Refunded``) as kizuna payloads.

Each mapper takes a track call's ``properties`` and returns the kizuna event class and
its payload as plain data; the envelope and the final validation are done by
:mod:`services.gateway.domain.segment_mapping`. Amounts become integer yen
(see :func:`~services.gateway.domain.segment_values.yen`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from schemas.events import (
    CartViewed,
    CheckoutStarted,
    EventEnvelope,
    OrderCancelled,
    OrderCompleted,
    OrderRefunded,
    ProductAdded,
    ProductRemoved,
    ProductViewed,
)
from services.gateway.domain.segment_values import (
    MappingError,
    count,
    currency_of,
    first_present,
    object_at,
    optional_id,
    optional_text,
    optional_yen,
    required_id,
    yen,
)

Mapped = tuple[type[EventEnvelope], dict[str, Any]]
TrackMapper = Callable[[dict[str, Any]], Mapped]

_PRODUCT_TEXT = ("name", "category", "brand", "url", "image_url")


def product(raw: dict[str, Any], where: str, currency: str) -> dict[str, Any]:
    """A Segment product object (``product_id`` or ``id`` or ``sku``) as a kizuna Product."""
    found = first_present(raw, "product_id", "id", "sku")
    if found is None:
        raise MappingError(f"{where}.product_id", "is required (or id, or sku)")
    out: dict[str, Any] = {"product_id": required_id(found[1], f"{where}.{found[0]}")}
    sku = optional_id(raw.get("sku"), f"{where}.sku")
    if sku is not None:
        out["sku"] = sku
    for key in _PRODUCT_TEXT:
        text = optional_text(raw.get(key), f"{where}.{key}")
        if text is not None:
            out[key] = text
    price = optional_yen(raw.get("price"), f"{where}.price", currency)
    if price is not None:
        out["price"] = price
    return out


def line_items(properties: dict[str, Any], currency: str) -> list[dict[str, Any]]:
    raw = properties.get("products")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MappingError("properties.products", "must be a list of products")
    return [_line_item(entry, f"properties.products[{i}]", currency) for i, entry in enumerate(raw)]


def _line_item(entry: Any, where: str, currency: str) -> dict[str, Any]:
    item = product(object_at(entry, where), where, currency)
    if "price" not in item:
        raise MappingError(f"{where}.price", "is required for a line item")
    quantity = count(entry.get("quantity", 1), f"{where}.quantity")
    price = item["price"]
    return {"product": item, "quantity": quantity, "unit_price": price, "amount": price * quantity}


def _amount(properties: dict[str, Any], currency: str, *keys: str) -> int | None:
    found = first_present(properties, *keys)
    return None if found is None else yen(found[1], f"properties.{found[0]}", currency)


def _cart_id(properties: dict[str, Any]) -> str:
    found = first_present(properties, "cart_id", "checkout_id", "order_id")
    if found is None:
        raise MappingError("properties.cart_id", "is required (or checkout_id, or order_id)")
    return required_id(found[1], f"properties.{found[0]}")


def product_viewed(properties: dict[str, Any]) -> Mapped:
    return ProductViewed, {"product": product(properties, "properties", currency_of(properties))}


def _cart_changed(cls: type[EventEnvelope]) -> TrackMapper:
    def mapper(properties: dict[str, Any]) -> Mapped:
        currency = currency_of(properties)
        payload = {
            "cart_id": required_id(properties.get("cart_id"), "properties.cart_id"),
            "product": product(properties, "properties", currency),
            "quantity": count(properties.get("quantity", 1), "properties.quantity"),
        }
        return cls, payload

    return mapper


def _cart(cls: type[EventEnvelope]) -> TrackMapper:
    def mapper(properties: dict[str, Any]) -> Mapped:
        currency = currency_of(properties)
        items = line_items(properties, currency)
        total = _amount(properties, currency, "total", "value", "revenue")
        if total is None:
            total = sum(item["amount"] for item in items)
        return cls, {"cart_id": _cart_id(properties), "items": items, "total": total}

    return mapper


def order_completed(properties: dict[str, Any]) -> Mapped:
    """total = properties.total, else revenue, else subtotal − discount + shipping."""
    currency = currency_of(properties)
    items = line_items(properties, currency)
    subtotal = _amount(properties, currency, "subtotal")
    if subtotal is None:
        subtotal = sum(item["amount"] for item in items)
    discount = _amount(properties, currency, "discount") or 0
    shipping = _amount(properties, currency, "shipping") or 0
    total = _amount(properties, currency, "total", "revenue")
    money = {
        "subtotal": subtotal,
        "discount": discount,
        "shipping": shipping,
        "tax": _amount(properties, currency, "tax") or 0,
        "total": subtotal - discount + shipping if total is None else total,
        "currency": currency,
    }
    payload: dict[str, Any] = {
        "order_id": required_id(properties.get("order_id"), "properties.order_id"),
        "items": items,
        "money": money,
    }
    for key in ("cart_id", "mall", "coupon"):
        value = optional_id(properties.get(key), f"properties.{key}")
        if value is not None:
            payload[key] = value
    return OrderCompleted, payload


def order_refunded(properties: dict[str, Any]) -> Mapped:
    """amount = properties.total (or value, amount, revenue), else the refunded products."""
    currency = currency_of(properties)
    items = line_items(properties, currency)
    amount = _amount(properties, currency, "total", "value", "amount", "revenue")
    if amount is None:
        if not items:
            raise MappingError("properties.total", "is required (or products to refund)")
        amount = sum(item["amount"] for item in items)
    payload = {
        "order_id": required_id(properties.get("order_id"), "properties.order_id"),
        "amount": amount,
        "items": items,
    }
    return OrderRefunded, payload


def order_cancelled(properties: dict[str, Any]) -> Mapped:
    payload: dict[str, Any] = {
        "order_id": required_id(properties.get("order_id"), "properties.order_id")
    }
    reason = optional_text(properties.get("reason"), "properties.reason")
    if reason is not None:
        payload["reason"] = reason
    return OrderCancelled, payload


COMMERCE_EVENTS: dict[str, TrackMapper] = {
    "product viewed": product_viewed,
    "product added": _cart_changed(ProductAdded),
    "product removed": _cart_changed(ProductRemoved),
    "cart viewed": _cart(CartViewed),
    "checkout started": _cart(CheckoutStarted),
    "order completed": order_completed,
    "order refunded": order_refunded,
    "order cancelled": order_cancelled,
    "order canceled": order_cancelled,
}
"""Normalised Segment event name (lower case, '_' as ' ') -> mapper."""
