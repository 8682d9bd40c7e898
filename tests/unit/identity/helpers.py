"""Builders for identity unit tests: observations from plain identifier dicts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from schemas.identifiers import Identifiers
from schemas.identity import CustomersMerged, CustomerSplit, IdentityChange
from services.identity.domain.rules import Observation, Rules, observe

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def obs(
    event_id: str, minute: int, rules: Rules | None = None, source: str = "web", **ids: str
) -> Observation:
    return observe(
        event_id,
        T0 + timedelta(minutes=minute),
        source,
        Identifiers(**ids).present(),
        rules or Rules(),
    )


def successors(changes: Iterable[IdentityChange]) -> dict[str, set[str]]:
    """Where each customer's history went, as a downstream consumer of identity.changes
    learns it: an absorbed customer into its survivor, a split customer into its parts."""
    out: dict[str, set[str]] = {}
    for change in changes:
        if isinstance(change, CustomersMerged):
            for absorbed in change.absorbed:
                out.setdefault(absorbed, set()).add(change.customer_id)
        elif isinstance(change, CustomerSplit):
            out.setdefault(change.customer_id, set()).update(change.into)
    return out


def reachable(customer_id: str, successors: dict[str, set[str]]) -> set[str]:
    """Every customer ``customer_id``'s history may have moved to (itself included).
    Order-free on purpose: changes of different customers travel on different partitions."""
    seen, frontier = {customer_id}, [customer_id]
    while frontier:
        for nxt in successors.get(frontier.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return seen
