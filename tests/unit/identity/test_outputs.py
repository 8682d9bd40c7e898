"""The identity graph's outputs built without a second validation equal validated ones,
and a customer compares and re-versions by every field but its version."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import encode
from schemas.identity import (
    IDENTITY_CHANGE_ADAPTER,
    IDENTITY_LINK_ADAPTER,
    IdentifierAdded,
    IdentityLinked,
)
from services.identity.domain.diff import Known, Resolution, identifier_added, linked
from services.identity.domain.model import (
    Customer,
    Edge,
    Node,
    anchor_of,
    customer_id_for,
    ref_of,
)

KEYS = st.sampled_from(
    ["anonymous_id:ck1", "member_id:M1", "email:a@example.jp", "pos_card:2900000001"]
)
IDS = st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True)
TIMES = st.integers(min_value=946_684_800_000, max_value=4_102_444_799_000).map(
    lambda ms: datetime.fromtimestamp(ms / 1000, UTC)
)


def _same(built: Any, validated: Any) -> None:
    assert built == validated
    assert encode(built) == encode(validated)
    assert built.model_fields_set == validated.model_fields_set | {"type", "schema_version"} | (
        {"linked_to"} if isinstance(validated, IdentityLinked) else set()
    )
    is_link = isinstance(built, IdentityLinked)
    adapter = IDENTITY_LINK_ADAPTER if is_link else IDENTITY_CHANGE_ADAPTER
    assert adapter.validate_json(encode(built)) == validated  # what a consumer reads


@given(key=KEYS, customer=IDS, version=st.integers(1, 10**6), at=TIMES, cause=IDS)
def test_when_an_identifier_is_added_then_the_unvalidated_change_equals_the_validated_one(
    key: str, customer: str, version: int, at: datetime, cause: str
) -> None:
    built = identifier_added(customer, version, at, ref_of(key), cause)

    validated = IdentifierAdded(
        customer_id=customer,
        version=version,
        occurred_at=at,
        identifier=ref_of(key),
        cause_event_id=cause,
    )
    _same(built, validated)


@given(
    key=KEYS,
    other=st.none() | KEYS,
    link=IDS,
    event=IDS,
    source=st.sampled_from(["web", "app", "pos", "mall", "line"]),
    at=TIMES,
)
def test_when_a_link_is_made_then_the_unvalidated_link_equals_the_validated_one(
    key: str, other: str | None, link: str, event: str, source: str, at: datetime
) -> None:
    linked_to = None if other is None else ref_of(other)

    built = linked(link, ref_of(key), linked_to, event, source, at)

    fields: dict[str, Any] = {"linked_to": linked_to} if linked_to is not None else {}
    validated = IdentityLinked(
        link_id=link,
        identifier=ref_of(key),
        event_id=event,
        source=source,
        occurred_at=at,
        **fields,
    )
    _same(built, validated)


def _customer() -> Customer:
    node = Node("member_id:M1", 1, "e1", "web")
    edge = Edge("member_id:M1", "email:a@example.jp", 2, "e2", "web")
    return Customer("c1", 3, {node.key: node}, {edge.link_id: edge}, {"l9": "unique"}, frozenset())


CHANGED: dict[str, Any] = {
    "customer_id": "c2",
    "nodes": {},
    "edges": {},
    "refused": {},
    "revoked": frozenset({"l1"}),
    "merges": 4,
}


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Customer)])
def test_when_customers_differ_in_one_field_then_only_a_version_keeps_them_the_same_graph(
    name: str,
) -> None:
    """Every field but the version is compared: a field added to Customer fails here until
    ``same_graph`` compares it too."""
    customer = _customer()
    changed: dict[str, Any] = {name: 7 if name == "version" else CHANGED[name]}
    other = dataclasses.replace(customer, **changed)

    assert customer.same_graph(other) is (name == "version")
    assert customer.with_version(9) == dataclasses.replace(customer, version=9)


VALUES = st.text(min_size=1, max_size=60)  # quotes, control characters, non-ASCII
EVENT_IDS = st.from_regex(r"[^\s\x00-\x1f]{1,60}", fullmatch=True)  # schemas.base.Id


@settings(deadline=None)
@given(
    kind=st.sampled_from(["anonymous_id", "member_id", "email", "device_id"]),
    value=VALUES,
    ms=st.integers(min_value=946_684_800_000, max_value=4_102_444_799_000),
    event_id=EVENT_IDS,
    source=st.sampled_from(["web", "app", "pos", "line"]),
)
def test_when_an_identifier_is_first_seen_then_its_outputs_written_directly_equal_the_models(
    kind: str, value: str, ms: int, event_id: str, source: str
) -> None:
    from schemas.topics import IDENTITY_CHANGES, IDENTITY_LINKS
    from services.identity.domain.graph import FirstSighting
    from services.identity.resolver import Output, first_sighting_outputs

    first = FirstSighting(Node(f"{kind}:{value}", ms, event_id, source))

    direct = first_sighting_outputs(first)

    [link], [added] = first.links, first.changes
    assert direct == [
        Output(IDENTITY_LINKS.suffix, link.link_id.encode(), encode(link)),
        Output(IDENTITY_CHANGES.suffix, first.customer_id.encode(), encode(added)),
    ]
    assert IDENTITY_LINK_ADAPTER.validate_json(direct[0].value) == link  # what a consumer reads
    assert IDENTITY_CHANGE_ADAPTER.validate_json(direct[1].value) == added


@given(
    st.dictionaries(
        st.from_regex(r"(anonymous_id|member_id|email):[a-z0-9]{1,6}", fullmatch=True),
        st.integers(0, 3),  # few distinct times: ties are common
        min_size=1,
        max_size=8,
    )
)
def test_a_customers_anchor_is_its_earliest_identifier_ties_by_the_smaller_id(
    seen: dict[str, int],
) -> None:
    nodes = {key: Node(key, at, "e1", "web") for key, at in seen.items()}

    expected = min(nodes.values(), key=lambda n: (n.first_seen, customer_id_for(n.key))).key
    assert anchor_of(nodes) == expected


def test_a_known_customers_resolution_equals_the_general_one_with_nothing_to_write() -> None:
    customer = Customer("c1", 1, {"member_id:M1": Node("member_id:M1", 0, "e1", "web")}, {})

    assert Known("c1") == Resolution(customer_id="c1")
    assert Resolution(customer_id="c1") == Known("c1")
    assert Known("c1") != Resolution(customer_id="c2")
    assert Known("c1") != Resolution(customer_id="c1", upserts=[customer])
    known = Known("c1")
    assert not known.changed
    assert (known.links, known.changes, dict(known.index)) == ((), (), {})
