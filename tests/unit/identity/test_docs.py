"""The Redis document form of a customer keeps everything, foreign link ends included."""

from __future__ import annotations

from services.identity.adapters.docs import dump_customer, dump_entry, load_customer, load_entry
from services.identity.adapters.redis_graph import Keys
from services.identity.domain.memory import InMemoryGraph
from services.identity.domain.rules import Rules
from tests.unit.identity.helpers import obs


def test_when_a_customer_with_a_refused_link_round_trips_then_it_is_unchanged() -> None:
    graph = InMemoryGraph(Rules())
    graph.apply(obs("e1", 0, member_id="M1", email="a@example.jp", anonymous_id="a1"))
    graph.apply(obs("e2", 1, member_id="M2", email="a@example.jp"))

    for customer in graph.customers.values():
        again = load_customer(customer.customer_id, customer.version, dump_customer(customer))
        assert again == customer
    assert any(c.refused for c in graph.customers.values())


def test_when_an_index_entry_round_trips_then_owner_and_first_seen_survive() -> None:
    assert load_entry(dump_entry("c0123", 1767225600000)) == ("c0123", 1767225600000)


def test_when_identifiers_are_bucketed_then_the_same_key_always_lands_in_one_bucket() -> None:
    keys = Keys("kizuna", buckets=16)

    buckets = {keys.node(f"anonymous_id:a{n}") for n in range(1000)}

    assert keys.node("email:a@example.jp") == Keys("kizuna", buckets=16).node("email:a@example.jp")
    assert len(buckets) == 16
