"""Merge rules: trust order, blocklist, shared devices, unique kinds, caps, survivor."""

from __future__ import annotations

import orjson

from schemas.identifiers import IdentifierKind as K
from schemas.identity import CustomersMerged, IdentityConflictRecorded
from services.identity.domain.memory import InMemoryGraph
from services.identity.domain.model import customer_id_for
from services.identity.domain.rules import Cap, Rules
from tests.unit.identity.helpers import obs


def test_when_identifiers_are_observed_then_they_are_normalised_and_most_trusted_first() -> None:
    o = obs(
        "e1",
        0,
        anonymous_id="a1",
        email=" Hanako@Example.JP",
        member_id="M1",
        phone="090-1234-5678",
    )

    assert [i.key for i in o.idents] == [
        "member_id:M1",
        "email:hanako@example.jp",
        "phone:+819012345678",
        "anonymous_id:a1",
    ]


def test_when_values_are_junk_then_they_are_blocked_and_reported() -> None:
    o = obs(
        "e1",
        0,
        anonymous_id="undefined",
        member_id="0000",
        email="null@example.jp",
        device_id="d-7",
    )

    assert [i.key for i in o.idents] == ["device_id:d-7"]
    assert {(kind, why) for kind, _, why in o.rejected} == {
        ("anonymous_id", "blocked"),
        ("member_id", "blocked"),
        ("email", "blocked"),
    }


def test_when_an_identifier_is_malformed_then_it_is_dropped_with_the_reason() -> None:
    o = obs("e1", 0, phone="12345", member_id="M1")

    assert [i.key for i in o.idents] == ["member_id:M1"]
    assert o.rejected[0][2].startswith("invalid:")


def test_when_a_shared_store_tablet_is_used_by_two_members_then_they_stay_apart() -> None:
    graph = InMemoryGraph(Rules())

    a = graph.apply(obs("e1", 0, member_id="M1", device_id="store-tablet-shibuya-3"))
    b = graph.apply(obs("e2", 5, member_id="M2", device_id="store-tablet-shibuya-3"))

    assert a.customer_id != b.customer_id
    assert all("device_id:store-tablet-shibuya-3" not in c.nodes for c in graph.customers.values())


def test_when_a_shared_device_is_the_only_identifier_then_it_still_names_a_profile() -> None:
    graph = InMemoryGraph(Rules())

    result = graph.apply(obs("e1", 0, device_id="store-tablet-shibuya-3"))

    assert result.customer_id == customer_id_for("device_id:store-tablet-shibuya-3")


def test_when_anonymous_browsing_is_followed_by_login_then_history_joins_the_member() -> None:
    graph = InMemoryGraph(Rules())
    first = graph.apply(obs("e1", 0, anonymous_id="a1"))
    graph.apply(obs("e2", 1, member_id="M1"))

    login = graph.apply(obs("e3", 2, member_id="M1", anonymous_id="a1"))

    assert login.customer_id == first.customer_id  # the anonymous profile is older: it survives
    merged = [c for c in login.changes if isinstance(c, CustomersMerged)]
    assert merged[0].absorbed == (customer_id_for("member_id:M1"),)
    assert graph.partition() == {first.customer_id: frozenset({"anonymous_id:a1", "member_id:M1"})}


def test_when_two_members_share_a_family_line_account_then_they_are_not_merged() -> None:
    graph = InMemoryGraph(Rules())
    graph.apply(obs("e1", 0, member_id="M1", line_user_id="shop:U" + "a" * 32))

    second = graph.apply(obs("e2", 5, member_id="M2", line_user_id="shop:U" + "a" * 32))

    conflict = [c for c in second.changes if isinstance(c, IdentityConflictRecorded)]
    assert len(conflict) == 1
    assert conflict[0].customer_id == customer_id_for("member_id:M2")
    assert conflict[0].other_customer_id == customer_id_for("member_id:M1")
    assert conflict[0].identifier.kind is K.LINE_USER_ID
    assert "unique member_id" in conflict[0].reason
    assert len(graph.customers) == 2


def test_when_pos_cards_are_configured_unique_then_two_cards_never_merge() -> None:
    rules = Rules(unique_kinds=frozenset({K.MEMBER_ID, K.POS_CARD}))
    graph = InMemoryGraph(rules)
    graph.apply(obs("e1", 0, rules, pos_card="1111", email="a@example.jp"))

    graph.apply(obs("e2", 1, rules, pos_card="2222", email="a@example.jp"))

    assert sorted(map(sorted, graph.partition().values())) == [
        ["email:a@example.jp", "pos_card:1111"],
        ["pos_card:2222"],
    ]


def test_when_a_customer_reaches_the_anonymous_id_cap_then_more_ids_are_refused() -> None:
    rules = Rules(caps={K.ANONYMOUS_ID: Cap(2, window_days=7)})
    graph = InMemoryGraph(rules)
    for n in range(3):
        last = graph.apply(obs(f"e{n}", n, rules, member_id="M1", anonymous_id=f"a{n}"))

    member = graph.customers[last.customer_id]
    assert sorted(k for k in member.nodes if k.startswith("anonymous_id")) == [
        "anonymous_id:a0",
        "anonymous_id:a1",
    ]
    assert "cap anonymous_id: 2 per 7 days" in member.refused.values()


def test_when_the_cap_window_has_passed_then_a_new_anonymous_id_may_join() -> None:
    rules = Rules(caps={K.ANONYMOUS_ID: Cap(1, window_days=7)})
    graph = InMemoryGraph(rules)
    graph.apply(obs("e1", 0, rules, member_id="M1", anonymous_id="a1"))

    later = graph.apply(obs("e2", 8 * 24 * 60, rules, member_id="M1", anonymous_id="a2"))

    assert "anonymous_id:a2" in graph.customers[later.customer_id].nodes


def test_when_the_merge_cap_is_reached_then_further_merges_are_refused() -> None:
    rules = Rules(max_merges=1)
    graph = InMemoryGraph(rules)
    for n in range(3):
        graph.apply(obs(f"p{n}", n, rules, email=f"u{n}@example.jp", anonymous_id=f"a{n}"))
    graph.apply(obs("m1", 10, rules, email="u0@example.jp", phone="090-0000-0001"))

    graph.apply(obs("m2", 11, rules, phone="090-0000-0001", anonymous_id="a1"))
    third = graph.apply(obs("m3", 12, rules, phone="090-0000-0001", anonymous_id="a2"))

    assert any(
        c.reason == "max_merges 1" for c in third.changes if isinstance(c, IdentityConflictRecorded)
    )


def test_when_two_customers_merge_then_the_older_one_survives_whatever_the_arrival_order() -> None:
    older_first, newer_first = InMemoryGraph(Rules()), InMemoryGraph(Rules())
    events = [
        obs("e1", 0, email="a@example.jp"),
        obs("e2", 30, phone="090-1111-2222"),
        obs("e3", 60, email="a@example.jp", phone="090-1111-2222"),
    ]
    for o in events:
        older_first.apply(o)
    for o in reversed(events):
        newer_first.apply(o)

    assert older_first.partition() == newer_first.partition()
    assert set(older_first.customers) == {customer_id_for("email:a@example.jp")}


def test_when_an_event_repeats_then_nothing_changes() -> None:
    graph = InMemoryGraph(Rules())
    graph.apply(obs("e1", 0, member_id="M1", anonymous_id="a1"))

    again = graph.apply(obs("e1", 0, member_id="M1", anonymous_id="a1"))
    later = graph.apply(obs("e9", 50, member_id="M1", anonymous_id="a1"))

    assert not again.changed
    assert not later.changed
    assert not again.links
    assert not later.links


def test_when_a_customer_event_is_spliced_then_it_decodes_to_the_same_event() -> None:
    from datetime import UTC, datetime

    from schemas.codec import decode, encode
    from schemas.examples import example
    from schemas.topics import CUSTOMER_EVENTS
    from services.identity.resolver import customer_event_bytes, customer_event_stamp

    event = example("pos_purchased")
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

    stamp = customer_event_stamp(7, now)
    raw = customer_event_bytes("c1", stamp, encode(event))
    resolved = decode(CUSTOMER_EVENTS.adapter, raw)

    assert (resolved.customer_id, resolved.identity_version, resolved.resolved_at) == ("c1", 7, now)
    assert resolved.event == event
    head = {"customer_id": "c1", "identity_version": 7, "resolved_at": now, "schema_version": 1}
    assert raw == orjson.dumps(head)[:-1] + b',"event":' + encode(event) + b"}"  # as ever


def test_when_an_identifier_is_first_seen_then_the_shortcut_equals_the_general_path() -> None:
    from services.identity.domain.graph import _resolve, resolve

    for o in (obs("e1", 0, anonymous_id="fresh"), obs("e2", 3, email="New@Example.jp")):
        fast, general = resolve(o, {}, {}, Rules()), _resolve(o, {}, {}, Rules())

        assert fast == general
