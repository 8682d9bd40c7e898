"""Constrained union of identifiers into customers (Kruskal's algorithm with merge rules).

Links are applied in canonical order (event time, event id, link id). A link joins two
customers unless a rule refuses it; a refused link is kept on both sides with its
reason. Because the order is canonical and the rules only look at the two customers a
link would join, the result depends on the *set* of links, never on arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.identity.domain.model import Edge, Node
from services.identity.domain.rules import DAY_MS, Rules


@dataclass(slots=True)
class Group:
    nodes: dict[str, Node]
    edges: dict[str, Edge] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    merges: int = 0


class Forest:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.group_of: dict[str, Group] = {}
        # node keys are "<kind>:<value>": a kind's keys are those with its prefix
        self._unique_prefixes = [f"{kind.value}:" for kind in sorted(rules.unique_kinds)]

    def seed(self, group: Group) -> None:
        for key in group.nodes:
            self.group_of[key] = group

    def add_node(self, node: Node) -> None:
        if node.key not in self.group_of:
            self.seed(Group({node.key: node}, {}, {}, set(), 0))  # (no default factories: hot)

    def groups(self) -> list[Group]:
        unique = {id(g): g for g in self.group_of.values()}
        return list(unique.values())

    def add_edge(self, edge: Edge) -> None:
        ga, gb = self.group_of[edge.a], self.group_of[edge.b]
        lid = edge.link_id
        if lid in ga.revoked or lid in gb.revoked:
            return
        if ga is gb:
            ga.edges[lid] = edge.earlier(ga.edges[lid]) if lid in ga.edges else edge
            return
        reason = self.refusal(ga, gb, edge)
        if reason is not None:
            for group in (ga, gb):
                group.edges[lid] = edge
                group.refused[lid] = reason
            return
        self._union(ga, gb, edge)

    def refusal(self, ga: Group, gb: Group, edge: Edge) -> str | None:
        """Why ``edge`` may not join its two customers, or None if it may."""
        rules = self.rules
        for prefix in self._unique_prefixes:
            in_a = _values(ga, prefix)
            if not in_a:
                continue
            in_b = _values(gb, prefix)
            if in_b and in_a != in_b:
                return f"unique {prefix[:-1]}: both customers have one"
        if len(ga.nodes) + len(gb.nodes) > rules.max_identifiers:
            return f"max_identifiers {rules.max_identifiers}"
        small, large = sorted((ga, gb), key=lambda g: len(g.nodes))
        if len(small.nodes) == 1:
            return self._cap_refusal(large, next(iter(small.nodes.values())), edge.at)
        if ga.merges + gb.merges + 1 > rules.max_merges:
            return f"max_merges {rules.max_merges}"
        return None

    def _cap_refusal(self, group: Group, joining: Node, at: int) -> str | None:
        cap = self.rules.caps.get(joining.kind)
        if cap is None:
            return None
        since = at - cap.window_days * DAY_MS if cap.window_days else None
        prefix = f"{joining.kind.value}:"
        same_kind = [
            n
            for n in group.nodes.values()
            if n.key.startswith(prefix) and (since is None or n.first_seen > since)
        ]
        if len(same_kind) >= cap.limit:
            window = f" per {cap.window_days} days" if cap.window_days else ""
            return f"cap {joining.kind.value}: {cap.limit}{window}"
        return None

    def _union(self, ga: Group, gb: Group, edge: Edge) -> None:
        keep, gone = (ga, gb) if len(ga.nodes) >= len(gb.nodes) else (gb, ga)
        both_established = len(ga.nodes) > 1 and len(gb.nodes) > 1
        keep.nodes.update(gone.nodes)
        for lid, other in gone.edges.items():
            keep.edges[lid] = other.earlier(keep.edges[lid]) if lid in keep.edges else other
        keep.refused.update(gone.refused)
        keep.revoked |= gone.revoked
        keep.merges += gone.merges + (1 if both_established else 0)
        keep.edges[edge.link_id] = edge
        for key in gone.nodes:
            self.group_of[key] = keep


def _values(group: Group, prefix: str) -> set[str]:
    """The group's identifiers of one kind (``prefix``: "<kind>:")."""
    return {key for key in group.nodes if key.startswith(prefix)}
