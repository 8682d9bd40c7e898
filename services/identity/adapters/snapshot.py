"""Whole-graph reads and writes: rebuilds from identity.links, and comparisons."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import redis.asyncio as aioredis

from services.identity.adapters.docs import dump_entry, dump_record, load_record
from services.identity.adapters.redis_graph import Keys
from services.identity.domain.model import Customer


async def load_all(client: aioredis.Redis, namespace: str) -> dict[str, Customer]:
    prefix = Keys(namespace, 1).customer("").rsplit(":", 1)[0] + ":"
    found: dict[str, Customer] = {}
    async for bucket in client.scan_iter(match=f"{prefix}*", count=1000):
        records = cast(dict[bytes, bytes], await client.hgetall(bucket))
        for cid, raw in records.items():
            found[cid.decode()] = load_record(cid.decode(), raw)
    return found


async def write_all(
    client: aioredis.Redis, namespace: str, customers: list[Customer], buckets: int
) -> None:
    """Write a rebuilt graph (customer version 1 everywhere) under ``namespace``;
    pipelined, each part moving the graph version as a commit does."""
    keys = Keys(namespace, buckets)
    identifiers = sum(len(c.nodes) for c in customers)
    for start in range(0, len(customers), 500):
        async with client.pipeline(transaction=False) as pipe:
            for customer in customers[start : start + 500]:
                cid = customer.customer_id
                pipe.hset(keys.customer(cid), cid, dump_record(replace(customer, version=1)))
                for key, node in customer.nodes.items():
                    pipe.hset(keys.node(key), key, dump_entry(cid, node.first_seen))
            pipe.incr(keys.version)  # a worker on this graph reads again what it kept
            await pipe.execute()
    await client.hset(keys.stats, mapping={"identifiers": identifiers, "customers": len(customers)})
