"""Realistic example events of every kind: documentation for upstream producers, test
data for the round-trip tests and the input of ``bench/codec.py``.

``example_stream`` produces a mixed stream with the proportions a real shop sees (mostly
page and product views, some cart events, few orders and store receipts).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta

from schemas.commerce import LineItem, Money, Product
from schemas.events import (
    AppOpened,
    CartViewed,
    CheckoutStarted,
    ConsentGranted,
    ConsentRevoked,
    CustomTracked,
    EventContext,
    EventEnvelope,
    Identified,
    LineAccountLinked,
    LineFollowed,
    LineUnfollowed,
    LocationReported,
    OrderCancelled,
    OrderCompleted,
    OrderRefunded,
    PageViewed,
    PosPurchased,
    ProductAdded,
    ProductRemoved,
    ProductViewed,
    ProfileUpdated,
    Source,
)
from schemas.identifiers import Identifiers
from schemas.payloads import (
    AppOpenedPayload,
    CartChangedPayload,
    CartPayload,
    ConsentPayload,
    CustomTrackedPayload,
    IdentifiedPayload,
    LineAccountLinkedPayload,
    LinePayload,
    LocationReportedPayload,
    OrderCancelledPayload,
    OrderCompletedPayload,
    OrderRefundedPayload,
    PageViewedPayload,
    PosPurchasedPayload,
    ProductViewedPayload,
    ProfileUpdatedPayload,
    Traits,
)

T0 = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)

_CATALOGUE = (
    Product(
        product_id="tea-001",
        sku="TEA-SENCHA-100",
        name="静岡煎茶 100g",
        category="お茶",
        price=1080,
    ),
    Product(
        product_id="tea-014", sku="TEA-MATCHA-30", name="宇治抹茶 30g", category="お茶", price=2160
    ),
    Product(
        product_id="cup-203",
        sku="CUP-ARITA-WHT",
        name="有田焼 湯呑み 白",
        category="器",
        price=3300,
    ),
    Product(
        product_id="set-900", sku="GIFT-SET-A", name="贈答セット 松", category="ギフト", price=5400
    ),
)


class _Maker:
    def __init__(self, rng: random.Random, at: datetime) -> None:
        self.rng = rng
        self.at = at
        self.n = 0

    def envelope(self, source: Source, **identifiers: str) -> dict[str, object]:
        self.n += 1
        occurred = self.at + timedelta(seconds=self.n)
        return {
            "event_id": f"evt-{self.rng.getrandbits(64):016x}",
            "occurred_at": occurred,
            "received_at": occurred + timedelta(milliseconds=self.rng.randint(5, 900)),
            "source": source,
            "identifiers": Identifiers(**identifiers),
            "context": EventContext(user_agent="Mozilla/5.0 (iPhone)", locale="ja-JP"),
        }

    def web(self) -> dict[str, object]:
        who = self.rng.randint(1, 50_000)
        if self.rng.random() < 0.3:
            return self.envelope(Source.WEB, anonymous_id=f"anon-{who}", member_id=f"M{who:07d}")
        return self.envelope(Source.WEB, anonymous_id=f"anon-{who}")

    def product(self) -> Product:
        return self.rng.choice(_CATALOGUE)

    def items(self) -> tuple[LineItem, ...]:
        chosen = self.rng.sample(_CATALOGUE, self.rng.randint(1, 3))
        lines = []
        for product in chosen:
            quantity = self.rng.randint(1, 3)
            price = product.price or 1000
            lines.append(
                LineItem(
                    product=product, quantity=quantity, unit_price=price, amount=quantity * price
                )
            )
        return tuple(lines)

    def money(self, items: tuple[LineItem, ...]) -> Money:
        subtotal = sum(item.amount for item in items)
        shipping = 0 if subtotal >= 5000 else 550
        return Money(
            subtotal=subtotal, shipping=shipping, tax=subtotal // 11, total=subtotal + shipping
        )


def _page(m: _Maker) -> EventEnvelope:
    return PageViewed(
        **m.web(),
        payload=PageViewedPayload(url="https://shop.example.jp/", path="/", title="トップ"),
    )


def _product_viewed(m: _Maker) -> EventEnvelope:
    return ProductViewed(**m.web(), payload=ProductViewedPayload(product=m.product()))


def _product_added(m: _Maker) -> EventEnvelope:
    return ProductAdded(
        **m.web(),
        payload=CartChangedPayload(cart_id=f"cart-{m.n}", product=m.product(), quantity=2),
    )


def _product_removed(m: _Maker) -> EventEnvelope:
    return ProductRemoved(
        **m.web(), payload=CartChangedPayload(cart_id=f"cart-{m.n}", product=m.product())
    )


def _cart_viewed(m: _Maker) -> EventEnvelope:
    items = m.items()
    return CartViewed(
        **m.web(),
        payload=CartPayload(cart_id=f"cart-{m.n}", items=items, total=sum(i.amount for i in items)),
    )


def _checkout(m: _Maker) -> EventEnvelope:
    items = m.items()
    return CheckoutStarted(
        **m.web(),
        payload=CartPayload(cart_id=f"cart-{m.n}", items=items, total=sum(i.amount for i in items)),
    )


def _order(m: _Maker) -> EventEnvelope:
    items = m.items()
    mall = m.rng.choice([None, None, "rakuten"])
    ids = {"mall_customer_id": f"rakuten:rk{m.n}"} if mall else {"member_id": f"M{m.n:07d}"}
    return OrderCompleted(
        **m.envelope(Source.MALL if mall else Source.WEB, email=f"hanako{m.n}@example.jp", **ids),
        payload=OrderCompletedPayload(
            order_id=f"ord-{m.n}", mall=mall, items=items, money=m.money(items)
        ),
    )


def _cancel(m: _Maker) -> EventEnvelope:
    return OrderCancelled(
        **m.envelope(Source.WEB, member_id=f"M{m.n:07d}"),
        payload=OrderCancelledPayload(order_id=f"ord-{m.n - 1}", reason="お客様都合"),
    )


def _refund(m: _Maker) -> EventEnvelope:
    return OrderRefunded(
        **m.envelope(Source.WEB, member_id=f"M{m.n:07d}"),
        payload=OrderRefundedPayload(order_id=f"ord-{m.n - 1}", amount=1080),
    )


def _pos(m: _Maker) -> EventEnvelope:
    items = m.items()
    card = f"2900{m.rng.randint(0, 10**9):09d}"
    return PosPurchased(
        **m.envelope(Source.POS, pos_card=card),
        payload=PosPurchasedPayload(
            store_id="shibuya-01",
            receipt_id=f"R{m.n:08d}",
            register_id="03",
            member_card=card,
            items=items,
            money=m.money(items),
        ),
    )


def _app_opened(m: _Maker) -> EventEnvelope:
    return AppOpened(
        **m.envelope(Source.APP, device_id=f"dev-{m.n}", member_id=f"M{m.n:07d}"),
        payload=AppOpenedPayload(platform="ios", push_token=f"tok-{m.n}", push_enabled=True),
    )


def _location(m: _Maker) -> EventEnvelope:
    return LocationReported(
        **m.envelope(Source.APP, device_id=f"dev-{m.n}"),
        payload=LocationReportedPayload(latitude=35.6595, longitude=139.7005, accuracy_m=25.0),
    )


_LINE_USER = "U4af4980629a0c3c5d3c2ea8d5f1a6b7c"


def _line_followed(m: _Maker) -> EventEnvelope:
    return LineFollowed(
        **m.envelope(Source.LINE, line_user_id=f"shop:{_LINE_USER}"),
        payload=LinePayload(channel_id="1650000000"),
    )


def _line_unfollowed(m: _Maker) -> EventEnvelope:
    return LineUnfollowed(
        **m.envelope(Source.LINE, line_user_id=f"shop:{_LINE_USER}"),
        payload=LinePayload(channel_id="1650000000"),
    )


def _line_linked(m: _Maker) -> EventEnvelope:
    return LineAccountLinked(
        **m.envelope(Source.LINE, line_user_id=f"shop:{_LINE_USER}", member_id=f"M{m.n:07d}"),
        payload=LineAccountLinkedPayload(channel_id="1650000000", result="ok", nonce="n-1"),
    )


def _identified(m: _Maker) -> EventEnvelope:
    traits = Traits(
        name="山田 花子",
        name_kana="ヤマダ ハナコ",
        birthday=date(1990, 4, 1),
        prefecture="東京都",
        custom={"rank": "gold"},
    )
    return Identified(
        **m.envelope(
            Source.WEB, member_id=f"M{m.n:07d}", email="Hanako@Example.jp", phone="090-1234-5678"
        ),
        payload=IdentifiedPayload(traits=traits),
    )


def _consent(m: _Maker, granted: bool) -> EventEnvelope:
    payload = ConsentPayload(
        channel="email",
        purpose="marketing",
        method="web_form",
        shown_text="お得な情報をメールで受け取る",
        wording_version="2026-04",
    )
    cls = ConsentGranted if granted else ConsentRevoked
    return cls(**m.envelope(Source.WEB, member_id=f"M{m.n:07d}"), payload=payload)


def _profile(m: _Maker) -> EventEnvelope:
    return ProfileUpdated(
        **m.envelope(Source.CRM, member_id=f"M{m.n:07d}"),
        payload=ProfileUpdatedPayload(birthday=date(1988, 12, 24), preferred_channel="line"),
    )


def _custom(m: _Maker) -> EventEnvelope:
    return CustomTracked(
        **m.web(),
        payload=CustomTrackedPayload(
            name="Wishlist Product Added", properties={"product_id": "tea-001"}
        ),
    )


Maker = Callable[[_Maker], EventEnvelope]

EXAMPLES: dict[str, Maker] = {
    "page_viewed": _page,
    "product_viewed": _product_viewed,
    "product_added": _product_added,
    "product_removed": _product_removed,
    "cart_viewed": _cart_viewed,
    "checkout_started": _checkout,
    "order_completed": _order,
    "order_cancelled": _cancel,
    "order_refunded": _refund,
    "pos_purchased": _pos,
    "app_opened": _app_opened,
    "location_reported": _location,
    "line_followed": _line_followed,
    "line_unfollowed": _line_unfollowed,
    "line_account_linked": _line_linked,
    "identified": _identified,
    "consent_granted": lambda m: _consent(m, granted=True),
    "consent_revoked": lambda m: _consent(m, granted=False),
    "profile_updated": _profile,
    "custom_tracked": _custom,
}

# Rough shares of a shop's traffic: browsing dominates, purchases are rare.
_WEIGHTS = {
    "page_viewed": 40,
    "product_viewed": 25,
    "product_added": 6,
    "product_removed": 1,
    "cart_viewed": 4,
    "checkout_started": 2,
    "order_completed": 2,
    "order_cancelled": 0.2,
    "order_refunded": 0.1,
    "pos_purchased": 2,
    "app_opened": 5,
    "location_reported": 6,
    "line_followed": 0.5,
    "line_unfollowed": 0.1,
    "line_account_linked": 0.3,
    "identified": 2,
    "consent_granted": 0.5,
    "consent_revoked": 0.1,
    "profile_updated": 0.2,
    "custom_tracked": 3,
}


def example(event_type: str, seed: int = 0) -> EventEnvelope:
    """One realistic event of ``event_type``."""
    return EXAMPLES[event_type](_Maker(random.Random(seed), T0))


def example_stream(n: int, seed: int = 42) -> Iterator[EventEnvelope]:
    """``n`` events of mixed kinds in realistic proportions, deterministic for a seed."""
    maker = _Maker(random.Random(seed), T0)
    kinds = list(_WEIGHTS)
    weights = list(_WEIGHTS.values())
    for kind in maker.rng.choices(kinds, weights, k=n):
        yield EXAMPLES[kind](maker)
