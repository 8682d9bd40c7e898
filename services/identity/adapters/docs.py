"""Compact document form of a customer in Redis (orjson), and of an index entry."""

from __future__ import annotations

import orjson

from services.identity.domain.model import Customer, Edge, Node


def dump_record(customer: Customer) -> bytes:
    """What Redis stores for a customer: "<version>|<document>"."""
    return str(customer.version).encode() + b"|" + dump_customer(customer)


def load_record(customer_id: str, raw: bytes) -> Customer:
    version, _, doc = raw.partition(b"|")
    return load_customer(customer_id, int(version), doc)


def record_version(raw: bytes | None) -> int:
    return int(raw.partition(b"|")[0]) if raw else 0


def dump_customer(customer: Customer) -> bytes:
    """Edge ends that are this customer's own identifiers are written as their position in
    the identifier list (refused links may end at another customer's identifier)."""
    position = {key: i for i, key in enumerate(customer.nodes)}
    doc: dict[str, object] = {
        "n": [[n.key, n.first_seen, n.event_id, n.source] for n in customer.nodes.values()]
    }
    if customer.edges:
        doc["e"] = [
            [position.get(e.a, e.a), position.get(e.b, e.b), e.at, e.event_id, e.source]
            for e in customer.edges.values()
        ]
    if customer.refused:
        doc["r"] = customer.refused
    if customer.revoked:
        doc["x"] = sorted(customer.revoked)
    if customer.merges:
        doc["m"] = customer.merges
    return orjson.dumps(doc)


def load_customer(customer_id: str, version: int, raw: bytes) -> Customer:
    doc = orjson.loads(raw)
    nodes = {key: Node(key, seen, event, source) for key, seen, event, source in doc["n"]}
    keys = list(nodes)
    edges = [
        Edge(
            keys[a] if isinstance(a, int) else a,
            keys[b] if isinstance(b, int) else b,
            at,
            event,
            src,
        )
        for a, b, at, event, src in doc.get("e", ())
    ]
    return Customer(
        customer_id=customer_id,
        version=version,
        nodes=nodes,
        edges={e.link_id: e for e in edges},
        refused=doc.get("r", {}),
        revoked=frozenset(doc.get("x", ())),
        merges=doc.get("m", 0),
    )


def dump_entry(customer_id: str, first_seen: int) -> bytes:
    return f"{customer_id}|{first_seen}".encode()


def load_entry(raw: bytes) -> tuple[str, int]:
    customer_id, _, first_seen = raw.decode().partition("|")
    return customer_id, int(first_seen)
