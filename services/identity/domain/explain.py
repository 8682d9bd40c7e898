"""Explain a customer to a person: identifiers with provenance, and why two ids are one."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any

from services.identity.domain.model import Customer, Edge


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def describe(customer: Customer) -> dict[str, Any]:
    accepted = [e for lid, e in customer.edges.items() if lid not in customer.refused]
    return {
        "customer_id": customer.customer_id,
        "version": customer.version,
        "identifiers": [
            {
                "identifier": n.key,
                "first_seen": _iso(n.first_seen),
                "event_id": n.event_id,
                "source": n.source,
            }
            for n in sorted(customer.nodes.values(), key=lambda n: (n.first_seen, n.key))
        ],
        "links": [_edge(e) for e in sorted(accepted, key=lambda e: e.order)],
        "refused_links": [
            {**_edge(customer.edges[lid]), "reason": reason}
            for lid, reason in sorted(customer.refused.items())
        ],
        "merges": customer.merges,
    }


def chain(customer: Customer, start: str, goal: str) -> list[dict[str, Any]]:
    """The accepted links that join ``start`` to ``goal`` (shortest chain), oldest first."""
    neighbours: dict[str, list[Edge]] = {}
    for lid, edge in customer.edges.items():
        if lid in customer.refused:
            continue
        neighbours.setdefault(edge.a, []).append(edge)
        neighbours.setdefault(edge.b, []).append(edge)
    came_from: dict[str, Edge | None] = {start: None}
    queue = deque([start])
    while queue:
        key = queue.popleft()
        if key == goal:
            break
        for edge in neighbours.get(key, []):
            other = edge.b if edge.a == key else edge.a
            if other not in came_from:
                came_from[other] = edge
                queue.append(other)
    if goal not in came_from:
        return []
    path, key = [], goal
    while (step := came_from[key]) is not None:
        path.append(_edge(step))
        key = step.b if step.a == key else step.a
    return list(reversed(path))


def _edge(edge: Edge) -> dict[str, Any]:
    return {
        "link_id": edge.link_id,
        "from": edge.a,
        "to": edge.b,
        "at": _iso(edge.at),
        "event_id": edge.event_id,
        "source": edge.source,
    }
