"""Resolve one observation against the customers it touches: ``(state, event) -> (state, outputs)``.

In-order observations extend the forest incrementally. One that arrives late (it would
sort before links the customers already hold, or it moves an identifier's first-seen
time earlier) recomputes the whole cluster from its links, so the final graph is the
same whatever the arrival order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import cached_property

from schemas.identity import IdentityChange, IdentityLinked
from services.identity.domain.diff import (
    Cause,
    Known,
    Resolution,
    diff,
    identifier_added,
    linked,
)
from services.identity.domain.forest import Forest, Group
from services.identity.domain.model import (
    Customer,
    Edge,
    Node,
    anchor_of,
    customer_id_for,
    link_id_for,
    ref_of,
)
from services.identity.domain.rules import Observation, Rules


@dataclass(frozen=True)
class NeedMore:
    """The cluster reaches customers that were not loaded: load these node owners first."""

    node_keys: frozenset[str]


def resolve(
    obs: Observation, owners: dict[str, str], customers: dict[str, Customer], rules: Rules
) -> Resolution | NeedMore:
    """``owners`` maps node keys to customer ids for (at least) the observation's
    identifiers; ``customers`` holds every customer named there."""
    if len(obs.idents) == 1 and obs.primary.key not in owners:
        return first_sighting(obs)
    return attach(obs, owners, customers, rules) or _resolve(obs, owners, customers, rules)


def unchanged(
    obs: Observation, owners: Mapping[str, str], customers: Mapping[str, Customer]
) -> str | None:
    """The customer ``obs`` belongs to when it tells the graph nothing new (every
    identifier already hers, none seen earlier than she has it, every link between them
    known from no later, or revoked), else None. What :func:`resolve` concludes for such
    an observation, without building its nodes and links (a returning member: the
    commonest event with more than one identifier)."""
    primary = obs.primary.key
    customer_id = owners.get(primary)
    customer = customers.get(customer_id) if customer_id is not None else None
    if customer is None:
        return None
    nodes, at, event_id = customer.nodes, obs.at_ms, obs.event_id
    for ident in obs.idents:
        known = nodes.get(ident.key)
        if known is None or owners.get(ident.key) != customer_id:
            return None
        if (at, event_id) < (known.first_seen, known.event_id):
            return None
    edges, revoked = customer.edges, customer.revoked
    for ident in obs.idents[1:]:
        lid = link_id_for(primary, ident.key)
        if lid in revoked:
            continue
        edge = edges.get(lid)
        # (at, event_id, lid) < edge.order, whose link id is lid: no third field to build
        if edge is None or (at, event_id) < (edge.at, edge.event_id):
            return None
    return customer_id


class FirstSighting(Resolution):
    """A lone identifier never seen before: a new customer of one (the common case of a
    new cookie). Its link and its change are made only when read (the in-memory graph,
    tests): the resolver writes their JSON from :attr:`node` directly
    (``resolver.first_sighting_outputs``, the bytes ``encode`` gives these models). The
    two models and their encoding were ~10 µs of a new cookie's event."""

    def __init__(self, node: Node) -> None:
        customer = Customer(customer_id_for(node.key), 1, {node.key: node}, {})
        self.customer_id, self.upserts, self.removed = customer.customer_id, [customer], []
        self.index = {node.key: (customer.customer_id, node.first_seen)}
        self.node = node

    @cached_property
    def links(self) -> list[IdentityLinked]:  # type: ignore[override]
        return [_node_link(self.node)]

    @cached_property
    def changes(self) -> list[IdentityChange]:  # type: ignore[override]
        node = self.node
        at, ref = _at(node.first_seen), ref_of(node.key)
        return [identifier_added(self.customer_id, 1, at, ref, node.event_id)]

    def __eq__(self, other: object) -> bool:
        """Equal to the :class:`Resolution` the general path gives (same fields)."""
        if not isinstance(other, Resolution):
            return NotImplemented
        return _fields(self) == _fields(other)


def _fields(result: Resolution) -> tuple[object, ...]:
    return tuple(getattr(result, f.name) for f in fields(Resolution))


def first_sighting(obs: Observation) -> FirstSighting:
    """What :func:`resolve` gives for a lone identifier no customer owns."""
    return FirstSighting(Node(obs.primary.key, obs.at_ms, obs.event_id, obs.source))


def attach(
    obs: Observation, owners: Mapping[str, str], customers: Mapping[str, Customer], rules: Rules
) -> Resolution | None:
    """What :func:`_resolve` gives when ``obs`` brings one identifier never seen before to
    the one customer all its others belong to, and the rules let it join (a new POS card
    or app device of a known member, a login from a new cookie); else None. Without the
    forest, the before-and-after comparison and a new customer id: a customer's in-order
    extension by one node and its links is known in advance.

    Narrowed to where that is exactly :func:`_resolve`'s result (property-tested): she
    has two identifiers or more (the new one joins as the smaller side), the event is
    later than her first identifier (her anchor, so her id, stays), none of her
    identifiers is seen earlier than she has it, and every new link sorts after hers."""
    if len(obs.idents) < 2:
        return None
    customer_id, new = None, None
    at, event_id = obs.at_ms, obs.event_id
    for ident in obs.idents:
        owner = owners.get(ident.key)
        if owner is None:
            if new is not None:
                return None
            new = Node(ident.key, at, event_id, obs.source)
            continue
        if customer_id is None:
            customer_id = owner
        elif owner != customer_id:
            return None
    customer = customers.get(customer_id) if customer_id is not None else None
    if new is None or customer is None:
        return None
    customer_id, nodes = customer.customer_id, customer.nodes
    if len(nodes) < 2 or at <= customer.first_seen:
        return None
    for ident in obs.idents:
        known = nodes.get(ident.key)
        if known is None and ident.key != new.key:
            return None
        if known is not None and (at, event_id) < (known.first_seen, known.event_id):
            return None
    primary, source, last = obs.primary.key, obs.source, customer.last_link
    edges, revoked = [], customer.revoked
    for ident in obs.idents[1:]:
        lid = link_id_for(primary, ident.key)
        if lid in revoked:
            continue
        held = customer.edges.get(lid)
        if held is not None:
            if (at, event_id) < (held.at, held.event_id):
                return None  # an earlier sighting of a link she has: recomputed
            continue
        edge = Edge(primary, ident.key, at, event_id, source)
        if not edge.order > last:
            return None
        edges.append(edge)
    edges.sort(key=lambda e: e.order)
    joining = next(e for e in edges if new.key in (e.a, e.b))
    ga, gb = Group({new.key: new}), Group(nodes)  # (read only)
    if joining.a != new.key:
        ga, gb = gb, ga
    if Forest(rules).refusal(ga, gb, joining) is not None:
        return None
    version = customer.version + 1
    grown = Customer(
        customer_id,
        version,
        {**nodes, new.key: new},
        {**customer.edges, **{e.link_id: e for e in edges}},
        dict(customer.refused),
        customer.revoked,
        customer.merges,
    )
    added = identifier_added(customer_id, version, _at(at), ref_of(new.key), event_id)
    return Resolution(
        customer_id=customer_id,
        upserts=[grown],
        index={new.key: (customer_id, at)},
        links=[_node_link(new), *(_edge_link(e) for e in edges)],
        changes=[added],
    )


def _resolve(
    obs: Observation, owners: dict[str, str], customers: dict[str, Customer], rules: Rules
) -> Resolution | NeedMore:
    involved = {owners[i.key] for i in obs.idents if i.key in owners}
    touched = {cid: customers[cid] for cid in sorted(involved)}
    new_nodes, earlier_nodes = _nodes(obs, touched, owners)
    new_edges, earlier_edges = _edges(obs, touched, owners)
    if not (new_nodes or earlier_nodes or new_edges or earlier_edges):
        return Known(owners[obs.primary.key])
    last = max((c.last_link for c in touched.values()), default=(0, "", ""))
    in_order = not earlier_nodes and not earlier_edges and all(e.order > last for e in new_edges)
    if in_order:
        groups = _extend(touched, new_nodes, new_edges, rules)
        before = touched
    else:
        cluster = _cluster(touched, owners, customers)
        if isinstance(cluster, NeedMore):
            return cluster
        before = cluster
        groups = _recompute(cluster, new_nodes + earlier_nodes, new_edges + earlier_edges, rules)
    after = [_customer(g) for g in groups]
    links = [_node_link(n) for n in new_nodes + earlier_nodes]
    links += [_edge_link(e) for e in new_edges + earlier_edges]
    return diff(before, after, Cause.of(obs), links)


def revoke(
    link_id: str, at_ms: int, owners: dict[str, str], customers: dict[str, Customer], rules: Rules
) -> Resolution | NeedMore:
    """Recompute the cluster holding ``link_id`` without it; the link stays refused."""
    holders = {cid: c for cid, c in customers.items() if link_id in c.edges}
    if not holders:
        raise KeyError(f"no customer holds link {link_id}")
    cluster = _cluster(holders, owners, customers)
    if isinstance(cluster, NeedMore):
        return cluster
    marked = {
        cid: replace(c, revoked=c.revoked | {link_id}) if cid in holders else c
        for cid, c in cluster.items()
    }
    after = [_customer(g) for g in _recompute(marked, [], [], rules)]
    return diff(cluster, after, Cause(f"revoke:{link_id}", at_ms, None, link_id), [])


def rebuild(
    nodes: dict[str, Node], edges: dict[str, Edge], revoked: set[str], rules: Rules
) -> list[Customer]:
    """Every customer from links alone (replay of ``identity.links`` into an empty view)."""
    forest = Forest(rules)
    for node in nodes.values():
        forest.add_node(node)
    _apply_sorted(forest, edges.values(), revoked)
    return [_customer(g) for g in forest.groups()]


def _apply_sorted(forest: Forest, edges: Iterable[Edge], revoked: set[str]) -> None:
    for edge in sorted(edges, key=lambda e: e.order):
        if edge.link_id in revoked:
            for key in (edge.a, edge.b):
                group = forest.group_of[key]
                group.edges[edge.link_id] = edge
                group.refused[edge.link_id] = "revoked"
                group.revoked.add(edge.link_id)
            continue
        forest.add_edge(edge)


def _nodes(
    obs: Observation, touched: dict[str, Customer], owners: dict[str, str]
) -> tuple[list[Node], list[Node]]:
    new, earlier = [], []
    for ident in obs.idents:
        seen = Node(ident.key, obs.at_ms, obs.event_id, obs.source)
        owner = owners.get(ident.key)
        if owner is None:
            new.append(seen)
            continue
        known = touched[owner].nodes[ident.key]
        if (seen.first_seen, seen.event_id) < (known.first_seen, known.event_id):
            earlier.append(seen)
    return new, earlier


def _edges(
    obs: Observation, touched: dict[str, Customer], owners: dict[str, str]
) -> tuple[list[Edge], list[Edge]]:
    new, earlier = [], []
    primary = obs.primary.key
    for ident in obs.idents[1:]:
        edge = Edge(primary, ident.key, obs.at_ms, obs.event_id, obs.source)
        lid = edge.link_id
        known = [
            touched[o].edges[lid]
            for o in {owners.get(primary), owners.get(ident.key)}
            if o is not None and lid in touched[o].edges
        ]
        revoked = any(
            lid in touched[o].revoked
            for o in {owners.get(primary), owners.get(ident.key)}
            if o is not None
        )
        if revoked:
            continue
        if not known:
            new.append(edge)
        elif edge.order < min(k.order for k in known):
            earlier.append(edge)
    return sorted(new, key=lambda e: e.order), earlier


def _group(customer: Customer) -> Group:
    return Group(
        dict(customer.nodes),
        dict(customer.edges),
        dict(customer.refused),
        set(customer.revoked),
        customer.merges,
    )


def _extend(
    touched: dict[str, Customer], nodes: list[Node], edges: list[Edge], rules: Rules
) -> list[Group]:
    forest = Forest(rules)
    for customer in touched.values():
        forest.seed(_group(customer))
    for node in nodes:
        forest.add_node(node)
    for edge in edges:
        forest.add_edge(edge)
    return forest.groups()


def _cluster(
    touched: dict[str, Customer], owners: dict[str, str], customers: dict[str, Customer]
) -> dict[str, Customer] | NeedMore:
    """Customers connected to ``touched`` through links, accepted or refused."""
    cluster = dict(touched)
    frontier = list(touched.values())
    missing: set[str] = set()
    while frontier:
        customer = frontier.pop()
        for edge in customer.edges.values():
            for key in (edge.a, edge.b):
                owner = owners.get(key)
                if owner is None:
                    missing.add(key)
                elif owner not in cluster:
                    if owner not in customers:
                        missing.add(key)
                        continue
                    cluster[owner] = customers[owner]
                    frontier.append(customers[owner])
    return NeedMore(frozenset(missing)) if missing else cluster


def _recompute(
    cluster: dict[str, Customer], nodes: list[Node], edges: list[Edge], rules: Rules
) -> list[Group]:
    all_nodes: dict[str, Node] = {}
    all_edges: dict[str, Edge] = {}
    revoked: set[str] = set()
    for customer in cluster.values():
        all_nodes.update(customer.nodes)
        revoked |= customer.revoked
        for lid, edge in customer.edges.items():
            all_edges[lid] = edge.earlier(all_edges[lid]) if lid in all_edges else edge
    for node in nodes:
        all_nodes[node.key] = node.earlier(all_nodes[node.key]) if node.key in all_nodes else node
    for edge in edges:
        lid = edge.link_id
        all_edges[lid] = edge.earlier(all_edges[lid]) if lid in all_edges else edge
    forest = Forest(rules)
    for node in all_nodes.values():
        forest.add_node(node)
    _apply_sorted(forest, all_edges.values(), revoked)
    return forest.groups()


def _customer(group: Group) -> Customer:
    return Customer(
        customer_id=customer_id_for(anchor_of(group.nodes)),
        version=0,
        nodes=group.nodes,
        edges=group.edges,
        refused=group.refused,
        revoked=frozenset(group.revoked),
        merges=group.merges,
    )


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _node_link(node: Node) -> IdentityLinked:
    key = node.key
    return linked(
        link_id_for(key), ref_of(key), None, node.event_id, node.source, _at(node.first_seen)
    )


def _edge_link(edge: Edge) -> IdentityLinked:
    return linked(
        edge.link_id,
        ref_of(edge.b),
        ref_of(edge.a),
        edge.event_id,
        edge.source,
        _at(edge.at),
    )
