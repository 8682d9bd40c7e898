"""Sessions outside the website and app: store visits, mall orders, LINE, preferences."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from schemas.events import Source
from simulator.catalog import MALLS, PRODUCTS
from simulator.messages import Emission, LineEvent, line_items, line_webhook_event, money
from simulator.population import Person, token
from simulator.sessions import Cart, World, consent


def store_visit(w: World, p: Person, at: datetime) -> Iterator[Emission]:
    """A purchase at a register with the point card (members without one get one now)."""
    rng = w.rng
    if p.pos_card is None:
        p.pos_card = f"2{rng.randrange(10**11, 10**12)}"
    if p.member_id is not None and rng.random() < 0.5:  # the card registered to the membership
        ids = {"member_id": p.member_id, "pos_card": p.pos_card}
        yield w.direct("identified", at, Source.CRM, ids, payload={})
    cart: Cart = [(item, rng.choice((1, 1, 2))) for item in rng.sample(PRODUCTS, rng.randint(1, 4))]
    payload = {
        "store_id": p.home_store,
        "receipt_id": w.next_id("R"),
        "register_id": f"REG-{rng.randint(1, 4)}",
        "member_card": p.pos_card,
        "items": line_items(cart),
        "money": money(cart),
    }
    at = w.think(at, 300, 1800)
    event_id = f"pos:{p.home_store}:{payload['receipt_id']}"  # as the POS importer names it
    ids = {"pos_card": p.pos_card}
    context = {"store_id": p.home_store}
    yield w.direct("pos_purchased", at, Source.POS, ids, event_id, payload=payload, context=context)


def mall_order(w: World, p: Person, at: datetime) -> Iterator[Emission]:
    """An order on a shopping mall: the mall's customer id, the email when the mall shares it."""
    rng = w.rng
    if not p.mall_ids:
        mall = rng.choice(MALLS)
        p.mall_ids[mall] = f"{mall}:{token(rng, 10)}"
    mall, mall_id = rng.choice(sorted(p.mall_ids.items()))
    ids = {"mall_customer_id": mall_id} | ({"email": p.email} if rng.random() < 0.5 else {})
    cart: Cart = [(item, 1) for item in rng.sample(PRODUCTS, rng.randint(1, 3))]
    total = money(cart, shipping=0)
    payload = {"order_id": w.next_id(mall), "mall": mall, "items": line_items(cart), "money": total}
    yield w.direct("order_completed", at, Source.MALL, ids, payload=payload)


def line_session(w: World, p: Person, at: datetime) -> Iterator[Emission]:
    """Follow the official account, link it to the membership, sometimes block it."""
    rng = w.rng
    if p.line_user_id is None:
        p.line_user_id = f"U{token(rng, 32)}"
    uid = p.line_user_id
    if not p.line_following:
        p.line_following = True
        yield LineEvent(
            line_webhook_event(
                "follow",
                w.next_id("line"),
                at,
                uid,
                replyToken=token(rng, 32),
                follow={"isUnblocked": False},
            )
        )
        if rng.random() < 0.5:
            ids = {"line_user_id": f"{w.line_provider}:{uid}"}
            yield consent(w, w.think(at, 1, 10), Source.LINE, ids, "line", True, "line")
    elif p.member_id is not None and not p.line_linked and rng.random() < 0.7:
        p.line_linked = True
        link = {"result": "ok", "nonce": None}
        yield LineEvent(
            line_webhook_event(
                "accountLink", w.next_id("line"), at, uid, replyToken=token(rng, 32), link=link
            ),
            p.member_id,
        )
    elif rng.random() < 0.3:
        p.line_following = False
        yield LineEvent(line_webhook_event("unfollow", w.next_id("line"), at, uid))


def preferences(w: World, p: Person, at: datetime) -> Iterator[Emission]:
    """A member changes an email or push marketing opt-in on the My Page screen."""
    channel = w.rng.choice(("email", "email", "push"))
    granted = not p.consents.get(channel, False)
    p.consents[channel] = granted
    ids = {"member_id": p.member_id} if p.member_id else {"email": p.email}
    yield consent(w, at, Source.WEB, ids, channel, granted, "web_form")
