"""Whole-graph reads and writes: rebuilds from identity.links, and comparisons."""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from services.identity.adapters.docs import dump_customer, dump_entry, load_customer
from services.identity.adapters.redis_graph import Keys
from services.identity.domain.model import Customer


async def load_all(client: aioredis.Redis, namespace: str) -> dict[str, Customer]:
    keys = Keys(namespace, 1)
    prefix = keys.customer("")
    found: dict[str, Customer] = {}
    async for raw_key in client.scan_iter(match=f"{prefix}*", count=1000):
        key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
        version, doc = cast(list[bytes | None], await client.hmget(key, ["v", "d"]))
        if doc is not None:
            cid = key.removeprefix(prefix)
            found[cid] = load_customer(cid, int(version or 0), doc)
    return found


async def write_all(
    client: aioredis.Redis, namespace: str, customers: list[Customer], buckets: int
) -> None:
    """Write a rebuilt graph (version 1 everywhere) under ``namespace``; pipelined."""
    keys = Keys(namespace, buckets)
    identifiers = sum(len(c.nodes) for c in customers)
    for start in range(0, len(customers), 500):
        async with client.pipeline(transaction=False) as pipe:
            for customer in customers[start : start + 500]:
                pipe.hset(
                    keys.customer(customer.customer_id),
                    mapping={"v": "1", "d": dump_customer(customer)},
                )
                for key, node in customer.nodes.items():
                    pipe.hset(
                        keys.node(key), key, dump_entry(customer.customer_id, node.first_seen)
                    )
            await pipe.execute()
    await client.hset(keys.stats, mapping={"identifiers": identifiers, "customers": len(customers)})
