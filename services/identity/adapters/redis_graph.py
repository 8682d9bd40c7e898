"""The identity graph view in Redis, changed only by one atomic compare-and-set Lua script.

Keys (``<ns>`` is the namespace):
    <ns>:id:n:<kind>:<value>   -> "<customer id>|<first seen ms>"   (identifier index)
    <ns>:id:c:<customer id>    -> hash {v: version, d: document}      (customer)
    <ns>:id:ob:<event id>      -> outputs not yet acknowledged by Kafka (outbox, TTL)
    <ns>:id:version            -> graph version (INCR per change)
    <ns>:id:stats              -> hash {identifiers, customers}
A resolution is computed from what was read and committed only if none of it changed
meanwhile; otherwise it is recomputed. Several workers may therefore share customers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis

from services.identity.adapters.docs import dump_customer, dump_entry, load_customer, load_entry
from services.identity.domain.diff import Resolution
from services.identity.domain.graph import NeedMore, resolve, revoke
from services.identity.domain.model import Customer
from services.identity.domain.rules import Observation, Rules

COMMIT_LUA = (Path(__file__).parent / "commit.lua").read_text()
MAX_ATTEMPTS = 20


class GraphContentionError(RuntimeError):
    """Other writers kept changing the same customers; the event will be retried."""


class Keys:
    def __init__(self, namespace: str) -> None:
        self.prefix = f"{namespace}:id"
        self.version = f"{self.prefix}:version"
        self.stats = f"{self.prefix}:stats"
        self.revoked = f"{self.prefix}:revoked"

    def node(self, key: str) -> str:
        return f"{self.prefix}:n:{key}"

    def customer(self, customer_id: str) -> str:
        return f"{self.prefix}:c:{customer_id}"

    def outbox(self, event_id: str) -> str:
        return f"{self.prefix}:ob:{event_id}"


@dataclass
class View:
    """What one batch has read (and written) so far: index entries and customers."""

    entries: dict[str, bytes | None] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    version: int = 0

    def owner(self, key: str) -> tuple[str, int] | None:
        raw = self.entries.get(key)
        return load_entry(raw) if raw else None

    def fast(self, obs: Observation) -> str | None:
        """The customer id when the event can tell the graph nothing new without loading."""
        if len(obs.idents) != 1:
            return None
        entry = self.owner(obs.primary.key)
        if entry is None or entry[1] > obs.at_ms:
            return None
        return entry[0]

    def forget(self, node_keys: Iterable[str], customer_ids: Iterable[str]) -> None:
        for key in node_keys:
            self.entries.pop(key, None)
        for cid in customer_ids:
            self.customers.pop(cid, None)


class RedisGraph:
    def __init__(
        self, client: aioredis.Redis, namespace: str, rules: Rules, outbox_ttl: int = 86_400
    ) -> None:
        self.client = client
        self.keys = Keys(namespace)
        self.rules = rules
        self.outbox_ttl = outbox_ttl
        self._commit = client.register_script(COMMIT_LUA)

    async def read(self, view: View, node_keys: Iterable[str]) -> None:
        """Fill ``view`` with the index entries of ``node_keys`` it does not hold yet."""
        wanted = sorted({k for k in node_keys if k not in view.entries})
        if wanted:
            values = cast(
                list[bytes | None], await self.client.mget([self.keys.node(k) for k in wanted])
            )
            view.entries.update(zip(wanted, values, strict=True))

    async def customer(self, customer_id: str) -> Customer | None:
        view = View()
        try:
            await self._load_customers(view, [customer_id])
        except GraphContentionError:
            return None
        return view.customers[customer_id]

    async def customer_of(self, node_key: str) -> Customer | None:
        raw = cast(bytes | None, await self.client.get(self.keys.node(node_key)))
        return await self.customer(load_entry(raw)[0]) if raw else None

    async def version(self) -> int:
        return int(await self.client.get(self.keys.version) or 0)

    async def pending_outboxes(self, event_ids: list[str]) -> dict[str, bytes]:
        if not event_ids:
            return {}
        keys = [self.keys.outbox(e) for e in event_ids]
        values = cast(list[bytes | None], await self.client.mget(keys))
        return {e: v for e, v in zip(event_ids, values, strict=True) if v is not None}

    async def clear_outboxes(self, event_ids: list[str]) -> None:
        if event_ids:
            await self.client.delete(*[self.keys.outbox(e) for e in event_ids])

    async def resolve(
        self, obs: Observation, view: View, outbox: Callable[[Resolution], bytes]
    ) -> Resolution:
        """Resolve ``obs`` and commit the outcome (with its outbox) atomically."""
        for _ in range(MAX_ATTEMPTS):
            customer_id = view.fast(obs)
            if customer_id is not None:
                return Resolution(customer_id=customer_id)
            result, owners, loaded = await self._plan(obs, view)
            if not result.changed:
                return result
            if await self._write(obs, result, view, loaded, outbox(result)):
                return result
            view.forget([i.key for i in obs.idents] + list(owners), loaded)
        raise GraphContentionError(f"event {obs.event_id}: {MAX_ATTEMPTS} conflicting attempts")

    async def revoke(self, link_id: str, at_ms: int, view: View, holders: list[str]) -> Resolution:
        """Split along a revoked link; ``holders`` are the customers that hold it."""
        for _ in range(MAX_ATTEMPTS):
            await self._load_customers(view, holders)
            owners = {k: cid for cid in holders for k in view.customers[cid].nodes}
            while True:
                result = revoke(link_id, at_ms, owners, view.customers, self.rules)
                if not isinstance(result, NeedMore):
                    break
                await self._load_owners(view, owners, result.node_keys)
            loaded = [cid for cid in view.customers if cid in set(owners.values())]
            if await self._write(None, result, view, loaded, b""):
                await self.client.sadd(self.keys.revoked, link_id)
                return result
            view.forget(owners, loaded)
        raise GraphContentionError(f"revoke {link_id}: {MAX_ATTEMPTS} conflicting attempts")

    async def _plan(
        self, obs: Observation, view: View
    ) -> tuple[Resolution, dict[str, str], list[str]]:
        await self.read(view, (i.key for i in obs.idents))
        owners: dict[str, str] = {}
        for ident in obs.idents:
            entry = view.owner(ident.key)
            if entry is not None:
                owners[ident.key] = entry[0]
        await self._load_customers(view, set(owners.values()))
        self._own(owners, view, set(owners.values()))
        while True:
            result = resolve(obs, owners, view.customers, self.rules)
            if not isinstance(result, NeedMore):
                return result, owners, sorted(set(owners.values()))
            await self._load_owners(view, owners, result.node_keys)

    async def _load_owners(
        self, view: View, owners: dict[str, str], node_keys: Iterable[str]
    ) -> None:
        await self.read(view, node_keys)
        found = set()
        for key in node_keys:
            entry = view.owner(key)
            if entry is None:
                raise GraphContentionError(f"identifier {key} vanished while reading its cluster")
            owners[key] = entry[0]
            found.add(entry[0])
        await self._load_customers(view, found)
        self._own(owners, view, found)

    @staticmethod
    def _own(owners: dict[str, str], view: View, customer_ids: Iterable[str]) -> None:
        for cid in customer_ids:
            for key in view.customers[cid].nodes:
                owners.setdefault(key, cid)

    async def _load_customers(self, view: View, customer_ids: Iterable[str]) -> None:
        wanted = sorted(c for c in set(customer_ids) if c not in view.customers)
        if not wanted:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for cid in wanted:
                pipe.hmget(self.keys.customer(cid), ["v", "d"])
            rows = await pipe.execute()
        for cid, (version, doc) in zip(wanted, rows, strict=True):
            if doc is None:
                raise GraphContentionError(f"customer {cid} vanished while reading")
            view.customers[cid] = load_customer(cid, int(version), doc)

    async def _write(
        self,
        obs: Observation | None,
        result: Resolution,
        view: View,
        loaded: list[str],
        outbox: bytes,
    ) -> bool:
        checked_nodes = sorted({i.key for i in obs.idents}) if obs else []
        new_ids = [k for k in result.index if view.entries.get(k) is None and k in checked_nodes]
        created = [c for c in result.upserts if c.customer_id not in loaded]
        keys = [self.keys.version, self.keys.stats, self.keys.outbox(obs.event_id if obs else "-")]
        args: list[bytes | str | int] = [
            len(checked_nodes),
            len(loaded),
            len(result.index),
            len(result.upserts),
            len(result.removed),
            self.outbox_ttl if outbox else 0,
            outbox,
            len(new_ids),
            len(created) - len(result.removed),
        ]
        keys += [self.keys.node(k) for k in checked_nodes]
        args += [view.entries.get(k) or b"" for k in checked_nodes]
        keys += [self.keys.customer(c) for c in loaded]
        args += [str(view.customers[c].version) for c in loaded]
        entries = {k: dump_entry(cid, seen) for k, (cid, seen) in result.index.items()}
        keys += [self.keys.node(k) for k in entries]
        args += list(entries.values())
        keys += [self.keys.customer(c.customer_id) for c in result.upserts]
        for customer in result.upserts:
            args += [str(customer.version), dump_customer(customer)]
        keys += [self.keys.customer(c) for c in result.removed]
        status, _ = await self._commit(keys=keys, args=args)
        if int(status) < 0:
            return False
        view.version = int(status)
        view.entries.update(entries)
        for cid in result.removed:
            view.customers.pop(cid, None)
        view.customers.update({c.customer_id: c for c in result.upserts})
        return True
