"""Operator commands for the identity graph.

    python -m services.identity.cli lookup email:hanako@example.jp
    python -m services.identity.cli why member_id:M1 anonymous_id:a1
    python -m services.identity.cli revoke email:family@example.jp phone:09011112222 \\
        --operator ops@shop --reason "a family's shared email"
    python -m services.identity.cli rebuild [--graph-prefix NS]   # Redis view from identity.links
    python -m services.identity.cli compare NS_A NS_B             # are two graph views equal?
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from runtime.kafka import create_consumer, create_producer
from runtime.redis import create_redis
from runtime.settings import Settings, load_settings
from schemas.codec import decode, encode
from schemas.identity import IdentityLinkRevoked
from schemas.topics import IDENTITY_CHANGES, IDENTITY_LINKS
from services.identity.adapters.redis_graph import RedisGraph, View
from services.identity.adapters.snapshot import load_all, write_all
from services.identity.domain.explain import chain, describe
from services.identity.domain.graph import rebuild
from services.identity.domain.model import Edge, Node, link_id_for
from services.identity.domain.rules import parse_identifier, to_ms
from services.identity.settings import IdentitySettings

console = Console()


def read_links(
    settings: Settings, timeout: float = 10.0
) -> tuple[dict[str, Node], dict[str, Edge], set[str]]:
    """Fold the whole ``identity.links`` topic: earliest node and edge per id, revocations."""
    from confluent_kafka import TopicPartition

    topic = IDENTITY_LINKS.name(settings.namespace)
    consumer = create_consumer(
        settings.kafka, f"{settings.namespace}-identity-rebuild-{datetime.now(UTC):%s%f}"
    )
    nodes: dict[str, Node] = {}
    edges: dict[str, Edge] = {}
    revoked: set[str] = set()
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions if ends[p] > 0])
        remaining = {p for p, end in ends.items() if end > 0}
        while remaining:
            message = consumer.poll(timeout)
            if message is None:
                raise TimeoutError(
                    f"{topic}: no message within {timeout}s, {len(remaining)} partitions left"
                )
            if message.error():
                raise RuntimeError(str(message.error()))
            _fold(decode(IDENTITY_LINKS.adapter, message.value() or b""), nodes, edges, revoked)
            if (message.offset() or 0) + 1 >= ends[message.partition() or 0]:
                remaining.discard(message.partition())
    finally:
        consumer.close()
    return nodes, edges, revoked


def _fold(record: Any, nodes: dict[str, Node], edges: dict[str, Edge], revoked: set[str]) -> None:
    if isinstance(record, IdentityLinkRevoked):
        revoked.add(record.link_id)
        return
    at = to_ms(record.occurred_at)
    key = f"{record.identifier.kind.value}:{record.identifier.value}"
    if record.linked_to is None:
        node = Node(key, at, record.event_id, record.source)
        nodes[key] = node.earlier(nodes[key]) if key in nodes else node
        return
    other = f"{record.linked_to.kind.value}:{record.linked_to.value}"
    edge = Edge(other, key, at, record.event_id, record.source)
    edges[edge.link_id] = edge.earlier(edges[edge.link_id]) if edge.link_id in edges else edge


async def cmd_rebuild(settings: Settings, identity: IdentitySettings, prefix: str) -> None:
    nodes, edges, revoked = read_links(settings)
    customers = rebuild(nodes, edges, revoked, identity.rules())
    client = create_redis(settings)
    try:
        await write_all(client, prefix, customers, identity.index_buckets)
    finally:
        await client.aclose()
    console.print(f"rebuilt {len(customers)} customers, {len(nodes)} identifiers into '{prefix}'")


async def cmd_compare(settings: Settings, a: str, b: str) -> bool:
    client = create_redis(settings)
    try:
        left, right = await load_all(client, a), await load_all(client, b)
    finally:
        await client.aclose()
    differing = sorted(set(left) ^ set(right))
    differing += [cid for cid in set(left) & set(right) if not left[cid].same_graph(right[cid])]
    console.print(
        f"{a}: {len(left)} customers, {b}: {len(right)} customers, differing: {len(differing)}"
    )
    for cid in differing[:20]:
        console.print(f"  {cid}")
    return not differing


async def cmd_lookup(
    settings: Settings, identity: IdentitySettings, text: str, other: str | None
) -> int:
    rules = identity.rules()
    client = create_redis(settings)
    try:
        graph = RedisGraph(client, settings.namespace, rules, buckets=identity.index_buckets)
        key = parse_identifier(text, rules)
        customer = await graph.customer_of(key)
    finally:
        await client.aclose()
    if customer is None:
        console.print(f"[red]no customer has {key}[/red]")
        return 1
    if other is not None:
        links = chain(customer, key, parse_identifier(other, rules))
        console.print_json(
            orjson.dumps({"customer_id": customer.customer_id, "chain": links}).decode()
        )
        return 0 if links else 1
    _print_customer(describe(customer))
    return 0


def _print_customer(info: dict[str, Any]) -> None:
    console.print(
        f"[bold]{info['customer_id']}[/bold] version {info['version']}, merges {info['merges']}"
    )
    table = Table("identifier", "first seen", "event", "source")
    for row in info["identifiers"]:
        table.add_row(row["identifier"], row["first_seen"], row["event_id"], row["source"])
    console.print(table)
    links = Table("link", "from", "to", "at", "event", "refused because")
    for row in info["links"] + info["refused_links"]:
        links.add_row(
            row["link_id"],
            row["from"],
            row["to"],
            row["at"],
            row["event_id"],
            row.get("reason", ""),
        )
    console.print(links)


async def cmd_revoke(
    settings: Settings, identity: IdentitySettings, a: str, b: str, operator: str, reason: str
) -> int:
    """Revoke the link between two identifiers: the record first, then the view, then the news."""
    rules = identity.rules()
    key_a, key_b = parse_identifier(a, rules), parse_identifier(b, rules)
    link_id = link_id_for(key_a, key_b)
    client = create_redis(settings)
    graph = RedisGraph(client, settings.namespace, rules, buckets=identity.index_buckets)
    try:
        holders = await _holders(graph, link_id, key_a, key_b)
        if not holders:
            console.print(f"[red]no customer holds a link between {key_a} and {key_b}[/red]")
            return 1
        now = datetime.now(UTC)
        record = IdentityLinkRevoked(
            link_id=link_id, operator=operator, reason=reason, occurred_at=now
        )
        producer = create_producer(settings.kafka)
        producer.produce(
            IDENTITY_LINKS.name(settings.namespace), key=link_id.encode(), value=encode(record)
        )
        if producer.flush(30) > 0:
            console.print(
                "[red]the revocation was not acknowledged by Kafka; nothing changed[/red]"
            )
            return 2
        view = View()
        result = await graph.plan_revoke(link_id, to_ms(now), view, holders)
        await graph.commit(view)
        await client.sadd(graph.keys.revoked, link_id)
    finally:
        await client.aclose()
    topic = IDENTITY_CHANGES.name(settings.namespace)
    for change in result.changes:
        producer.produce(topic, key=change.customer_id.encode(), value=encode(change))
    producer.flush(30)
    console.print(
        f"revoked {link_id} ({key_a} - {key_b}): {len(result.changes)} change(s) published"
    )
    return 0


async def _holders(graph: RedisGraph, link_id: str, *node_keys: str) -> list[str]:
    holders = set()
    for key in node_keys:
        customer = await graph.customer_of(key)
        if customer is not None and link_id in customer.edges:
            holders.add(customer.customer_id)
    return sorted(holders)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.identity.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lookup").add_argument("identifier")
    why = sub.add_parser("why")
    why.add_argument("a")
    why.add_argument("b")
    revoke = sub.add_parser("revoke", help="revoke the link between two identifiers")
    revoke.add_argument("a")
    revoke.add_argument("b")
    revoke.add_argument("--operator", required=True)
    revoke.add_argument("--reason", required=True)
    rebuild_cmd = sub.add_parser("rebuild")
    rebuild_cmd.add_argument("--graph-prefix", default=None)
    compare = sub.add_parser("compare")
    compare.add_argument("a")
    compare.add_argument("b")
    args = parser.parse_args(argv)
    settings, identity = load_settings(), IdentitySettings()
    if args.command == "lookup":
        return asyncio.run(cmd_lookup(settings, identity, args.identifier, None))
    if args.command == "why":
        return asyncio.run(cmd_lookup(settings, identity, args.a, args.b))
    if args.command == "revoke":
        return asyncio.run(
            cmd_revoke(settings, identity, args.a, args.b, args.operator, args.reason)
        )
    if args.command == "rebuild":
        asyncio.run(cmd_rebuild(settings, identity, args.graph_prefix or settings.namespace))
        return 0
    return 0 if asyncio.run(cmd_compare(settings, args.a, args.b)) else 1


if __name__ == "__main__":
    sys.exit(main())
