"""Given the identity worker on real Kafka + Redis: one person is one customer across
web, app, stores and LINE; two members sharing a LINE account are not."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable

from schemas.identity import CustomersMerged, IdentifierAdded, IdentityConflictRecorded
from services.identity.domain.model import customer_id_for
from tests.integration.conftest import Worker
from tests.integration.identity.conftest import raw

IDENTITY = "services.identity"
LINE_USER = "shop:U" + "4af4980629a0c3c5d3c2ea8d5f1a6b7c"


def lookup(worker: Worker, path: str, **query: str) -> dict:
    url = f"http://127.0.0.1:{worker.port}{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_when_a_member_browses_anonymously_then_logs_in_the_anonymous_history_joins_them(
    topics, send, customer_events, identity_changes, worker_factory: Callable[[str], Worker]
) -> None:
    worker = worker_factory(IDENTITY)
    send(raw("identified", "pc-login", 0, member_id="M1", anonymous_id="pc-cookie"))
    send(
        raw("page_viewed", "phone-1", 60, anonymous_id="phone-cookie"),
        raw("product_viewed", "phone-2", 61, anonymous_id="phone-cookie"),
    )
    before = customer_events(3)

    send(
        raw("identified", "phone-login", 62, member_id="M1", anonymous_id="phone-cookie"),
        raw("product_added", "phone-3", 63, anonymous_id="phone-cookie"),
    )
    after = customer_events(2)

    # first seen together: the smaller derived id names the customer (the survivor rule)
    member = min(customer_id_for("member_id:M1"), customer_id_for("anonymous_id:pc-cookie"))
    assert before["pc-login"] == member
    assert before["phone-1"] == before["phone-2"] == customer_id_for("anonymous_id:phone-cookie")
    assert after == {"phone-login": member, "phone-3": member}  # re-keyed to the survivor
    merged = [c for c in identity_changes(4) if isinstance(c, CustomersMerged)]
    assert [(m.customer_id, m.absorbed) for m in merged] == [(member, (before["phone-1"],))]
    profile = lookup(worker, "/customers/lookup", identifier="anonymous_id:phone-cookie")
    assert profile["customer_id"] == member
    why = lookup(
        worker, "/customers/why", a="anonymous_id:pc-cookie", b="anonymous_id:phone-cookie"
    )
    assert [link["event_id"] for link in why["chain"]] == ["pc-login", "phone-login"]


def test_when_a_store_customer_shows_a_card_linked_in_the_app_then_it_is_the_web_customer(
    topics, send, customer_events, worker_factory: Callable[[str], Worker]
) -> None:
    worker_factory(IDENTITY)
    send(raw("order_completed", "web-order", 0, member_id="M7", email="hanako@example.jp"))
    online = customer_events(1)
    send(
        raw(
            "identified",
            "app-card",
            30,
            member_id="M7",
            pos_card="2900-1111-2222",
            device_id="dev-9",
        )
    )
    online |= customer_events(1)

    send(raw("pos_purchased", "store-receipt", 90, pos_card="2900 1111 2222"))
    store = customer_events(1)

    assert store["store-receipt"] == online["web-order"] == online["app-card"]


def test_when_the_receipt_arrives_before_the_card_link_then_its_customer_is_merged_into_the_member(
    topics, send, customer_events, identity_changes, worker_factory: Callable[[str], Worker]
) -> None:
    worker_factory(IDENTITY)
    send(raw("order_completed", "web-order", 0, member_id="M7", email="hanako@example.jp"))
    send(raw("pos_purchased", "store-receipt", 90, pos_card="2900 1111 2222"))
    first = customer_events(2)

    send(raw("identified", "app-card", 30, member_id="M7", pos_card="2900-1111-2222"))
    linked = customer_events(1)

    assert linked["app-card"] == first["web-order"]
    merged = [c for c in identity_changes(4) if isinstance(c, CustomersMerged)]
    assert [(m.customer_id, m.absorbed) for m in merged] == [
        (first["web-order"], (first["store-receipt"],))
    ]


def test_when_two_members_share_a_family_line_account_then_they_stay_apart_with_a_conflict(
    topics, send, customer_events, identity_changes, worker_factory: Callable[[str], Worker]
) -> None:
    worker_factory(IDENTITY)
    send(raw("line_account_linked", "mother", 0, member_id="M-mother", line_user_id=LINE_USER))
    resolved = customer_events(1)
    send(raw("line_account_linked", "son", 5, member_id="M-son", line_user_id=LINE_USER))

    resolved |= customer_events(1)
    changes = identity_changes(4)

    assert resolved["mother"] != resolved["son"]
    (conflict,) = [c for c in changes if isinstance(c, IdentityConflictRecorded)]
    assert conflict.customer_id == resolved["son"]
    assert conflict.other_customer_id == resolved["mother"]
    assert conflict.identifier.value == LINE_USER
    added = {c.identifier.value for c in changes if isinstance(c, IdentifierAdded)}
    assert added == {"M-mother", "M-son", LINE_USER}
