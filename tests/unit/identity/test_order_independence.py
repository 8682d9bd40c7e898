"""Deterministic under replay and reordering: any arrival order, the same customers and ids;
and the links alone rebuild the same graph."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.identifiers import IdentifierKind as K
from schemas.identity import CustomerSplit
from services.identity.domain.diff import Resolution
from services.identity.domain.graph import (
    NeedMore,
    _resolve,
    attach,
    rebuild,
    resolve,
    revoke,
    unchanged,
)
from services.identity.domain.memory import InMemoryGraph
from services.identity.domain.model import Edge, Node, link_id_for
from services.identity.domain.rules import Cap, Observation, Rules
from tests.unit.identity.helpers import obs, reachable, successors

RULES = Rules(caps={K.ANONYMOUS_ID: Cap(2, window_days=7)}, max_merges=3)

identifier_sets = st.fixed_dictionaries(
    {},
    optional={
        "member_id": st.sampled_from(["M1", "M2", "M3"]),
        "email": st.sampled_from(["a@example.jp", "b@example.jp", "c@example.jp"]),
        "phone": st.sampled_from(["090-0000-0001", "090-0000-0002"]),
        "anonymous_id": st.sampled_from(["a1", "a2", "a3", "a4", "a5"]),
        "line_user_id": st.sampled_from(["shop:U" + "1" * 32, "shop:U" + "2" * 32]),
    },
).filter(bool)

events = st.lists(
    st.tuples(st.integers(min_value=0, max_value=20_000), identifier_sets), min_size=1, max_size=14
)


def observations(raw: list[tuple[int, dict[str, str]]]) -> list[Observation]:
    return [obs(f"e{n:03d}", minute, RULES, **ids) for n, (minute, ids) in enumerate(raw)]


def replay(items: list[Observation]) -> InMemoryGraph:
    graph = InMemoryGraph(RULES)
    for item in items:
        graph.apply(item)
    return graph


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.randoms(use_true_random=False))
def test_when_events_arrive_in_any_order_then_customers_and_ids_are_the_same(raw, rnd) -> None:
    items = observations(raw)
    shuffled = list(items)
    rnd.shuffle(shuffled)

    canonical = replay(sorted(items, key=lambda o: (o.at_ms, o.event_id)))
    arrived = replay(shuffled)

    assert arrived.partition() == canonical.partition()
    assert {cid: c.refused for cid, c in arrived.customers.items()} == {
        cid: c.refused for cid, c in canonical.customers.items()
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.randoms(use_true_random=False))
def test_when_late_events_revise_a_merge_then_the_published_changes_say_where_history_went(
    raw, rnd
) -> None:
    """An event is attributed to the customer its identifiers made on arrival; a late event
    may later merge that customer away or split it again. Followed through the published
    merges and splits, every event's customer reaches the customer that finally holds the
    event's identifier: nothing is revised silently."""
    items = observations(raw)
    rnd.shuffle(items)
    graph = InMemoryGraph(RULES)
    attributed, changes = {}, []
    for item in items:
        result = graph.apply(item)
        attributed[item.event_id] = (result.customer_id, item.primary.key)
        changes += result.changes
    owner = {key: cid for cid, keys in graph.partition().items() for key in keys}
    moved = successors(changes)

    for event_id, (customer_id, primary) in attributed.items():
        assert owner[primary] in reachable(customer_id, moved), event_id


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, events)
def test_when_an_event_tells_the_graph_nothing_new_then_the_shortcut_agrees_with_resolve(
    history, probes
) -> None:
    """``unchanged`` (the resolver's shortcut for a returning customer, no nodes or links
    built) names a customer only where ``resolve`` changes nothing and says the same
    customer; and it misses none of those whose identifiers all belong to one customer."""
    graph = replay(observations(history))
    owners = {key: owner for key, (owner, _) in graph.index.items()}
    probed = [obs(f"p{n:03d}", minute, RULES, **ids) for n, (minute, ids) in enumerate(probes)]
    probed += [
        obs(f"p{n:03d}", minute + 1, RULES, **ids) for n, (minute, ids) in enumerate(history)
    ]
    for item in probed:
        result = resolve(item, owners, graph.customers, RULES)
        assert not isinstance(result, NeedMore)
        shortcut = unchanged(item, owners, graph.customers)
        nothing_new = result == Resolution(customer_id=result.customer_id)
        if shortcut is not None:
            assert nothing_new
            assert result.customer_id == shortcut
        elif nothing_new:
            assert len({owners.get(i.key) for i in item.idents}) > 1


@settings(max_examples=200, deadline=None)
@given(events, st.randoms(use_true_random=False))
def test_when_the_links_are_replayed_then_the_rebuilt_graph_equals_the_live_one(raw, rnd) -> None:
    items = observations(raw)
    rnd.shuffle(items)
    live = InMemoryGraph(RULES)
    nodes: dict[str, Node] = {}
    edges: dict[str, Edge] = {}
    for item in items:
        for link in live.apply(item).links:
            at = int(link.occurred_at.timestamp() * 1000)
            key = f"{link.identifier.kind.value}:{link.identifier.value}"
            if link.linked_to is None:
                node = Node(key, at, link.event_id, link.source)
                nodes[key] = node.earlier(nodes[key]) if key in nodes else node
            else:
                edge = Edge(
                    f"{link.linked_to.kind.value}:{link.linked_to.value}",
                    key,
                    at,
                    link.event_id,
                    link.source,
                )
                edges[link.link_id] = (
                    edge.earlier(edges[link.link_id]) if link.link_id in edges else edge
                )

    rebuilt = {c.customer_id: c for c in rebuild(nodes, edges, set(), RULES)}

    assert set(rebuilt) == set(live.customers)
    assert all(rebuilt[cid].same_graph(live.customers[cid]) for cid in live.customers)


def test_when_a_wrong_link_is_revoked_then_the_customer_splits_along_it() -> None:
    graph = InMemoryGraph(Rules())
    graph.apply(obs("e1", 0, member_id="M1", email="family@example.jp"))
    graph.apply(obs("e2", 1, phone="090-1111-2222", email="family@example.jp"))
    graph.apply(obs("e3", 2, member_id="M1", anonymous_id="a1"))
    (before,) = graph.customers.values()
    wrong = link_id_for(
        "email:family@example.jp", "phone:+819012345678".replace("9012345678", "9011112222")
    )
    owners = {k: cid for k, (cid, _) in graph.index.items()}

    result = revoke(wrong, 10_000, owners, graph.customers, Rules())
    graph.commit(result)  # type: ignore[arg-type]

    assert sorted(map(sorted, graph.partition().values())) == [
        ["anonymous_id:a1", "email:family@example.jp", "member_id:M1"],
        ["phone:+819011112222"],
    ]
    (split,) = [c for c in result.changes if isinstance(c, CustomerSplit)]  # type: ignore[union-attr]
    assert split.customer_id == before.customer_id
    assert split.revoked_link_id == wrong
    again = graph.apply(obs("e4", 3, phone="090-1111-2222", email="family@example.jp"))
    assert not again.changed, "a revoked pair never links again"


def test_when_shuffles_are_many_then_a_realistic_day_is_stable() -> None:
    rnd = random.Random(5)
    raw = [
        (
            rnd.randint(0, 1440),
            {
                "anonymous_id": f"a{rnd.randint(1, 30)}",
                **({"member_id": f"M{rnd.randint(1, 8)}"} if rnd.random() < 0.4 else {}),
            },
        )
        for _ in range(300)
    ]
    items = observations(raw)
    canonical = replay(sorted(items, key=lambda o: (o.at_ms, o.event_id))).partition()
    for _ in range(5):
        rnd.shuffle(items)
        assert replay(items).partition() == canonical


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, events)
def test_when_an_event_brings_one_new_identifier_then_the_shortcut_equals_the_general_path(
    history, probes
) -> None:
    """``attach`` (one identifier never seen joining the customer all the others belong
    to, without the forest) gives exactly what ``_resolve`` gives, wherever it answers."""
    graph = replay(observations(history))
    owners = {key: owner for key, (owner, _) in graph.index.items()}
    probed = [obs(f"p{n:03d}", minute, RULES, **ids) for n, (minute, ids) in enumerate(probes)]
    for n, (minute, ids) in enumerate(history):  # her identifiers, and one new of each kind
        for kind, value in (("device_id", "d"), ("anonymous_id", "a"), ("member_id", "M")):
            grown = {**ids, kind: f"{value}-new-{n}"}
            probed += [obs(f"q{n:03d}{kind}", minute + later, RULES, **grown) for later in (0, 9)]
    for item in probed:
        shortcut = attach(item, owners, graph.customers, RULES)
        if shortcut is not None:
            assert shortcut == _resolve(item, owners, graph.customers, RULES)


def test_when_a_known_member_shows_a_new_pos_card_then_the_shortcut_answers_as_resolve() -> None:
    graph = replay(
        [
            obs("e1", 0, RULES, member_id="M1", email="a@example.jp"),
            obs("e2", 5, RULES, member_id="M1", anonymous_id="a1"),
        ]
    )
    owners = {key: owner for key, (owner, _) in graph.index.items()}
    for item in (
        obs("p1", 60, RULES, pos_card="2900000001", email="a@example.jp"),  # new is primary
        obs("p2", 60, RULES, member_id="M1", anonymous_id="a2"),  # new is not
        obs("p3", 60, RULES, email="a@example.jp", anonymous_id="a9", member_id="M1"),
    ):
        shortcut = attach(item, owners, graph.customers, RULES)

        assert shortcut is not None, item.event_id
        assert shortcut == _resolve(item, owners, graph.customers, RULES)
        new = [i.value for i in item.idents if i.key not in owners]
        assert [c.identifier.value for c in shortcut.changes] == new  # type: ignore[union-attr]

    capped = obs("p4", 60, RULES, member_id="M1", anonymous_id="a3")  # a1, a3: cap is 2
    graph.apply(obs("p5", 30, RULES, member_id="M1", anonymous_id="a2"))
    owners = {key: owner for key, (owner, _) in graph.index.items()}
    assert attach(capped, owners, graph.customers, RULES) is None, "refused: the forest says how"
