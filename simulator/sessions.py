"""What one person does in one visit: a generator of emissions with their own clock.

Each session advances its own time by a human think time between actions; the shop
interleaves many sessions. Proportions are rough but plausible for a Japanese shop: most
web visits are anonymous and never buy, about a third of carts are abandoned, members
log in at checkout (stitching their cookie to their member id), guests leave an email.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import RAW_EVENT_ADAPTER, Source
from simulator.catalog import PAGES, PRODUCTS, STORES, Item
from simulator.messages import (
    DirectEvent,
    Emission,
    SegmentCall,
    app_context,
    order_properties,
    product_properties,
    segment,
    web_context,
)
from simulator.population import Device, Person, token

SITE = "https://shop.example.jp"
Cart = list[tuple[Item, int]]


@dataclass
class World:
    """The shop-wide state sessions share: the random source and id counters."""

    rng: random.Random
    run_id: str
    line_provider: str = "line"
    counter: int = 0

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.run_id}-{self.counter}"

    def think(self, at: datetime, low: float = 4.0, high: float = 90.0) -> datetime:
        return at + timedelta(seconds=self.rng.uniform(low, high))

    def direct(
        self,
        kind: str,
        at: datetime,
        source: Source,
        ids: dict[str, str],
        event_id: str | None = None,
        **extra: Any,
    ) -> DirectEvent:
        document = {
            "type": kind,
            "event_id": event_id or self.next_id(kind),
            "occurred_at": at,
            "received_at": at,
            "source": source,
            "identifiers": ids,
            **extra,
        }
        return DirectEvent(RAW_EVENT_ADAPTER.validate_python(document))


def traits(p: Person, *, full: bool) -> dict[str, Any]:
    if not full:
        return {"email": p.email, "name": p.name}
    return {
        "email": p.email,
        "phone": p.phone,
        "name": p.name,
        "gender": p.gender,
        "birthday": p.birthday,
        "address": {"state": p.prefecture, "country": "JP"},
    }


def web_session(w: World, p: Person, at: datetime) -> Iterator[Emission]:
    rng = w.rng
    if rng.random() < 0.08:  # a new browser, or cookies cleared
        p.cookies.append(f"anon-{token(rng, 16)}")
    cookie = rng.choice(p.cookies)
    member = p.member_id
    user: str | None = None
    path, title = rng.choice(PAGES)
    ctx = web_context(f"{SITE}{path}")
    yield _web(
        segment(
            "page",
            w.next_id("web"),
            at,
            anonymous_id=cookie,
            context=ctx,
            name=title,
            properties={"url": f"{SITE}{path}", "path": path, "title": title},
        )
    )
    if member is not None and rng.random() < 0.25:
        at = w.think(at)
        user = member
        yield _web(_identify(w, p, at, cookie, user, full=True))
    cart: Cart = []
    cart_id = w.next_id("cart")
    for item in rng.sample(PRODUCTS, rng.randint(1, 5)):
        at = w.think(at)
        yield _web(_track(w, "Product Viewed", at, user, cookie, product_properties(item)))
        if rng.random() < 0.3:
            at = w.think(at, 2, 20)
            qty = rng.choice((1, 1, 1, 2, 3))
            cart.append((item, qty))
            props = product_properties(item, cart_id=cart_id, quantity=qty)
            yield _web(_track(w, "Product Added", at, user, cookie, props))
    if len(cart) > 1 and rng.random() < 0.2:
        item, qty = cart.pop(rng.randrange(len(cart)))
        props = product_properties(item, cart_id=cart_id, quantity=qty)
        yield _web(_track(w, "Product Removed", w.think(at, 2, 20), user, cookie, props))
    if cart and rng.random() < 0.6:
        yield from _checkout(w, p, w.think(at), cookie, user, cart, cart_id)


def _checkout(
    w: World, p: Person, at: datetime, cookie: str, user: str | None, cart: Cart, cart_id: str
) -> Iterator[Emission]:
    rng = w.rng
    if user is None:  # members log in to check out; guests type their email
        user = p.member_id
        yield _web(_identify(w, p, at, cookie, user, full=user is not None))
    props = order_properties(w.next_id("order"), cart_id, cart)
    checkout = {k: props[k] for k in ("cart_id", "products", "currency")} | {
        "total": props["subtotal"]
    }
    at = w.think(at, 10, 60)
    yield _web(_track(w, "Checkout Started", at, user, cookie, checkout))
    if rng.random() < 0.35:  # abandoned at the payment step
        return
    at = w.think(at, 20, 240)
    yield _web(_track(w, "Order Completed", at, user, cookie, props))
    if rng.random() < 0.3 and not p.consents.get("email"):
        p.consents["email"] = True
        ids = {"member_id": user} if user else {"email": p.email}
        yield consent(w, w.think(at, 1, 5), Source.WEB, ids, "email", True, "web_form")


def app_session(w: World, p: Person, at: datetime) -> Iterator[Emission]:
    rng = w.rng
    installed = not p.devices
    if installed:
        platform = rng.choice(("ios", "android"))
        p.devices.append(Device(f"dev-{token(rng, 16)}", platform, f"tok-{token(rng, 32)}"))
    device = rng.choice(p.devices)
    user = p.member_id if p.member_id and rng.random() < 0.7 else None
    anon = f"app-{device.device_id[4:]}"
    ctx = app_context(device.device_id, device.platform, device.push_token)
    opened = {"from_background": not installed, "version": "3.2.1"}
    yield _app(
        segment(
            "track",
            w.next_id("app"),
            at,
            user_id=user,
            anonymous_id=anon,
            context=ctx,
            event="Application Opened",
            properties=opened,
        )
    )
    if installed and rng.random() < 0.6:
        ids = {"device_id": device.device_id} | ({"member_id": user} if user else {})
        p.consents["push"] = True
        yield consent(w, w.think(at, 1, 10), Source.APP, ids, "push", True, "app")
    if rng.random() < 0.3:
        yield location(w, w.think(at, 1, 30), p, device, user)
    for item in rng.sample(PRODUCTS, rng.randint(1, 4)):
        at = w.think(at, 3, 60)
        props = product_properties(item)
        yield _app(
            segment(
                "track",
                w.next_id("app"),
                at,
                user_id=user,
                anonymous_id=anon,
                context=ctx,
                event="Product Viewed",
                properties=props,
            )
        )
    if user is not None and rng.random() < 0.12:
        item = rng.choice(PRODUCTS)
        props = order_properties(w.next_id("order"), w.next_id("cart"), [(item, 1)])
        yield _app(
            segment(
                "track",
                w.next_id("app"),
                w.think(at, 30, 300),
                user_id=user,
                anonymous_id=anon,
                context=ctx,
                event="Order Completed",
                properties=props,
            )
        )


def location(w: World, at: datetime, p: Person, device: Device, user: str | None) -> DirectEvent:
    store = next(s for s in STORES if s.store_id == p.home_store)
    near = {
        "latitude": round(store.latitude + w.rng.uniform(-0.003, 0.003), 6),
        "longitude": round(store.longitude + w.rng.uniform(-0.003, 0.003), 6),
        "accuracy_m": round(w.rng.uniform(5, 80), 1),
    }
    ids = {"device_id": device.device_id} | ({"member_id": user} if user else {})
    return w.direct("location_reported", at, Source.APP, ids, payload=near)


def consent(
    w: World,
    at: datetime,
    source: Source,
    ids: dict[str, str],
    channel: str,
    granted: bool,
    method: str,
) -> DirectEvent:
    kind = "consent_granted" if granted else "consent_revoked"
    payload = {
        "channel": channel,
        "purpose": "marketing",
        "method": method,
        "shown_text": "お得な情報やクーポンをお届けします。",
        "wording_version": "2026-04",
    }
    return w.direct(kind, at, source, ids, payload=payload)


def _identify(
    w: World, p: Person, at: datetime, cookie: str, user: str | None, *, full: bool
) -> dict[str, Any]:
    return segment(
        "identify",
        w.next_id("web"),
        at,
        user_id=user,
        anonymous_id=cookie,
        context=dict(web_context(f"{SITE}/login")),
        traits=traits(p, full=full),
    )


def _track(
    w: World, event: str, at: datetime, user: str | None, cookie: str, props: dict[str, Any]
) -> dict[str, Any]:
    url = str(props.get("url") or f"{SITE}/cart")
    return segment(
        "track",
        w.next_id("web"),
        at,
        user_id=user,
        anonymous_id=cookie,
        context=web_context(url),
        event=event,
        properties=props,
    )


def _web(message: dict[str, Any]) -> SegmentCall:
    return SegmentCall("web", message)


def _app(message: dict[str, Any]) -> SegmentCall:
    return SegmentCall("app", message)


def jst_hour(at: datetime) -> int:
    return (at.astimezone(UTC).hour + 9) % 24
