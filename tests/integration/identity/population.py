"""A small, messy shop population for identity tests: people with several devices,
logins, member cards, mall ids, shared LINE accounts, junk ids; events sent shuffled."""

from __future__ import annotations

import random

from schemas.events import EventEnvelope
from tests.integration.identity.conftest import raw

KINDS_ANON = ("page_viewed", "product_viewed", "product_added", "cart_viewed")


def population(people: int, events: int, seed: int = 11) -> list[EventEnvelope]:
    rnd = random.Random(seed)
    out: list[EventEnvelope] = []
    for n in range(events):
        p = rnd.randrange(people)
        cookie = f"ck-{p}-{rnd.randrange(3)}"
        minute = rnd.uniform(0, 60 * 24 * 10)
        roll = rnd.random()
        if roll < 0.55:
            out.append(raw(rnd.choice(KINDS_ANON), f"e{n}", minute, anonymous_id=cookie))
        elif roll < 0.7:
            out.append(
                raw(
                    "identified",
                    f"e{n}",
                    minute,
                    anonymous_id=cookie,
                    member_id=f"M{p}",
                    email=f"user{p}@example.jp",
                )
            )
        elif roll < 0.8:
            out.append(raw("pos_purchased", f"e{n}", minute, pos_card=f"2900{p:06d}"))
        elif roll < 0.87:
            out.append(
                raw(
                    "identified",
                    f"e{n}",
                    minute,
                    member_id=f"M{p}",
                    pos_card=f"2900{p:06d}",
                    device_id=f"dev-{p}",
                )
            )
        elif roll < 0.92:
            family = p // 2  # two members per household share one LINE account
            out.append(
                raw(
                    "line_account_linked",
                    f"e{n}",
                    minute,
                    member_id=f"M{p}",
                    line_user_id=f"shop:U{family:032x}",
                )
            )
        elif roll < 0.96:
            out.append(
                raw(
                    "order_completed",
                    f"e{n}",
                    minute,
                    mall_customer_id=f"rakuten:r{p}",
                    email=f"USER{p}@example.jp",
                )
            )
        else:
            out.append(
                raw(
                    "app_opened",
                    f"e{n}",
                    minute,
                    device_id="store-tablet-01",
                    anonymous_id="undefined",
                    member_id=f"M{p}",
                )
            )
    rnd.shuffle(out)
    return out
