"""The identity graph view in Redis, changed only by one atomic compare-and-set Lua script.

Keys (``<ns>`` is the namespace):
    <ns>:id:n:<bucket>         -> hash {<kind>:<value>: "<customer id>|<first seen ms>"}
                                  (identifier index, bucketed: small hashes are stored as
                                  compact listpacks, ~60 bytes an identifier instead of ~110)
    <ns>:id:c:<bucket>         -> hash {<customer id>: "<version>|<document>"}  (customers)
Both are spread over hash buckets so Redis keeps them as compact listpacks; the server
needs hash-max-listpack-value 1024 (deploy/local/stack.sh and docker-compose set it).
    <ns>:id:ob:<event id>      -> outputs not yet acknowledged by Kafka (outbox, TTL)
    <ns>:id:version            -> graph version (INCR per commit)
    <ns>:id:stats              -> hash {identifiers, customers}

A batch is a unit of work: everything it reads is remembered, every resolution is
applied to the batch's own view, and one script commits the result only if nothing it
read has changed meanwhile (otherwise the batch is resolved again from fresh reads).
So several workers may share customers, and a crash leaves either all or nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from services.identity.adapters.docs import dump_entry, dump_record, load_entry, load_record
from services.identity.domain.diff import Known, Resolution
from services.identity.domain.graph import (
    NeedMore,
    first_sighting,
    resolve,
    revoke,
    unchanged,
)
from services.identity.domain.model import Customer
from services.identity.domain.rules import Observation, Rules

COMMIT_LUA = (Path(__file__).parent / "commit.lua").read_text()
READ_LUA = (Path(__file__).parent / "read.lua").read_text()
CLEAR_LUA = (Path(__file__).parent / "clear.lua").read_text()
PARSED_CACHE_LIMIT = 100_000


class GraphContentionError(RuntimeError):
    """What a batch read changed before it could commit; the batch is resolved again."""


class Keys:
    def __init__(self, namespace: str, buckets: int = 4096) -> None:
        self.buckets = buckets
        self.prefix = f"{namespace}:id"
        self.version = f"{self.prefix}:version"
        self.stats = f"{self.prefix}:stats"
        self.revoked = f"{self.prefix}:revoked"

    def node(self, key: str) -> str:
        """The index bucket (a hash) that holds identifier ``key``."""
        return f"{self.prefix}:n:{zlib.crc32(key.encode()) % self.buckets:x}"

    def customer(self, customer_id: str) -> str:
        """The bucket (a hash) that holds customer ``customer_id``."""
        return f"{self.prefix}:c:{zlib.crc32(customer_id.encode()) % self.buckets:x}"

    def outbox(self, event_id: str) -> str:
        return f"{self.prefix}:ob:{event_id}"


@dataclass
class View:
    """One batch's picture of the graph: what was read, and what it has changed since."""

    read_entries: dict[str, bytes | None] = field(default_factory=dict)
    buckets: dict[str, str] = field(default_factory=dict)  # identifier -> its index bucket
    read_versions: dict[str, int] = field(default_factory=dict)
    entries: dict[str, bytes | None] = field(default_factory=dict)
    owners: dict[str, tuple[str, int]] = field(default_factory=dict)  # entries read, parsed
    customers: dict[str, Customer] = field(default_factory=dict)
    dirty_entries: set[str] = field(default_factory=set)
    dirty_customers: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    outboxes: dict[str, bytes] = field(default_factory=dict)
    new_identifiers: int = 0
    new_customers: int = 0
    version: int = 0

    def owner(self, key: str) -> tuple[str, int] | None:
        """(customer id, first seen) of identifier ``key``, None when it is unknown (an
        entry is parsed once: an event's identifiers are looked up several times)."""
        found = self.owners.get(key)
        if found is None:
            raw = self.entries.get(key)
            if not raw:
                return None
            found = self.owners[key] = load_entry(raw)
        return found

    def fast(self, obs: Observation) -> str | None:
        """The customer id when the event tells the graph nothing new (no load needed)."""
        if len(obs.idents) != 1:
            return None
        entry = self.owner(obs.primary.key)
        if entry is None or entry[1] > obs.at_ms:
            return None
        return entry[0]

    def apply(self, result: Resolution) -> None:
        for key, (cid, seen) in result.index.items():
            if self.entries.get(key) is None:
                self.new_identifiers += 1
            self.entries[key] = dump_entry(cid, seen)
            self.owners[key] = (cid, seen)
            self.dirty_entries.add(key)
        for cid in result.removed:
            self.customers.pop(cid, None)
            self.dirty_customers.discard(cid)
            self.removed.add(cid)
            self.new_customers -= 1
        for customer in result.upserts:
            cid = customer.customer_id
            if cid not in self.customers:
                self.new_customers += 1
            self.customers[cid] = customer
            self.dirty_customers.add(cid)
            self.removed.discard(cid)

    @property
    def changed(self) -> bool:
        return bool(self.dirty_entries or self.dirty_customers or self.removed)


class RedisGraph:
    def __init__(
        self,
        client: aioredis.Redis,
        namespace: str,
        rules: Rules,
        outbox_ttl: int = 86_400,
        buckets: int = 4096,
    ) -> None:
        self.client = client
        self.keys = Keys(namespace, buckets)
        self.rules = rules
        self._parsed: dict[str, tuple[bytes, Customer]] = {}  # the same bytes parse once
        self.outbox_ttl = outbox_ttl
        self._commit = client.register_script(COMMIT_LUA)
        self._read = client.register_script(READ_LUA)
        self._clear = client.register_script(CLEAR_LUA)

    async def prefetch(
        self, view: View, observations: list[Observation], outboxes: Sequence[str] = ()
    ) -> dict[str, bytes]:
        """Read what a batch will need in two round trips: index entries, with the
        outboxes still pending of the event ids ``outboxes`` (returned by event id),
        then customers."""
        keys = (i.key for obs in observations for i in obs.idents)
        pending = await self.read(view, keys, outboxes)
        owners = {
            entry[0]
            for obs in observations
            if view.fast(obs) is None
            for i in obs.idents
            if (entry := view.owner(i.key)) is not None
        }
        await self._load_customers(view, owners)
        return pending

    async def read(
        self, view: View, node_keys: Iterable[str], outboxes: Sequence[str] = ()
    ) -> dict[str, bytes]:
        """Index entries of ``node_keys`` not in the view yet, with their buckets, and
        the pending outboxes of the event ids ``outboxes`` (one script call)."""
        wanted = sorted({k for k in node_keys if k not in view.entries})
        node = self.keys.node
        buckets = [node(k) for k in wanted]
        values, found = await self._read_many(buckets, wanted, outboxes)
        for key, bucket, value in zip(wanted, buckets, values, strict=True):
            view.read_entries[key] = value
            view.entries[key] = value
            view.buckets[key] = bucket
        return {e: v for e, v in zip(outboxes, found, strict=True) if v is not None}

    async def _read_many(
        self, buckets: list[str], fields: list[str], outboxes: Sequence[str] = ()
    ) -> tuple[list[bytes | None], list[bytes | None]]:
        """Hash fields (``fields[i]`` of ``buckets[i]``), and outboxes by event id."""
        if not fields and not outboxes:
            return [], []
        args: list[bytes | str] = [orjson.dumps(list(zip(buckets, fields, strict=True)))]
        if outboxes:  # their keys put together by the script: none to encode here
            args += [self.keys.outbox(""), orjson.dumps(list(outboxes))]
        values = [v if v else None for v in await self._read(keys=[], args=args)]
        return values[: len(fields)], values[len(fields) :]

    def plan_fast(self, obs: Observation, view: View) -> Resolution | None:
        """``obs`` resolved from what the view holds already (after :meth:`prefetch`:
        most events, without a coroutine), else None: :meth:`plan` it. That is an event
        that tells the graph nothing new, or a lone identifier read and found unknown (a
        new cookie: a new customer, applied to the view as :meth:`plan` would)."""
        customer_id = view.fast(obs)
        if customer_id is not None:
            return Known(customer_id)
        if len(obs.idents) == 1:
            key = obs.primary.key
            if key not in view.entries or view.entries[key] is not None:
                return None
            result = first_sighting(obs)
            view.apply(result)
            return result
        owners = {i.key: e[0] for i in obs.idents if (e := view.owner(i.key)) is not None}
        customer_id = unchanged(obs, owners, view.customers)
        return None if customer_id is None else Known(customer_id)

    async def plan(self, obs: Observation, view: View) -> Resolution:
        """Resolve ``obs`` against the batch's view and apply it there (no Redis write);
        for one :meth:`plan_fast` did not resolve (any other gets the same result, only
        after loading its customer)."""
        await self.read(view, (i.key for i in obs.idents))
        owners = {i.key: e[0] for i in obs.idents if (e := view.owner(i.key)) is not None}
        await self._load_customers(view, set(owners.values()))
        self._own(owners, view, set(owners.values()))
        while True:
            result = resolve(obs, owners, view.customers, self.rules)
            if not isinstance(result, NeedMore):
                view.apply(result)
                return result
            await self._load_owners(view, owners, result.node_keys)

    async def plan_revoke(
        self, link_id: str, at_ms: int, view: View, holders: list[str]
    ) -> Resolution:
        await self._load_customers(view, holders)
        owners = {k: cid for cid in holders for k in view.customers[cid].nodes}
        while True:
            result = revoke(link_id, at_ms, owners, view.customers, self.rules)
            if not isinstance(result, NeedMore):
                view.apply(result)
                return result
            await self._load_owners(view, owners, result.node_keys)

    async def commit(self, view: View) -> None:
        """Write the batch's changes and outboxes atomically, or raise GraphContentionError."""
        if not view.changed and not view.outboxes:
            view.version = await self.version()
            return
        customer = self.keys.customer

        def node(key: str) -> str:  # most were read by this batch: their bucket is known
            return view.buckets.get(key) or self.keys.node(key)

        blobs: list[bytes] = []  # sent as they are, after the batch's JSON: see commit.lua
        written = {c: dump_record(view.customers[c]) for c in view.dirty_customers}

        def blob(value: bytes) -> int:
            blobs.append(value)
            return len(blobs) + 1  # its ARGV index

        batch = {
            "check_index": [
                [node(k), k, (v or b"").decode()] for k, v in sorted(view.read_entries.items())
            ],
            "check_customers": [
                [customer(c), c, str(v)] for c, v in sorted(view.read_versions.items())
            ],
            "index": [
                [node(k), k, (view.entries[k] or b"").decode()] for k in sorted(view.dirty_entries)
            ],
            "customers": [[customer(c), c, blob(written[c])] for c in sorted(view.dirty_customers)],
            "removed": [[customer(c), c] for c in sorted(view.removed)],
            "outboxes": [[self.keys.outbox(e), blob(p)] for e, p in sorted(view.outboxes.items())],
            "ttl": self.outbox_ttl,
            "identifiers": view.new_identifiers,
            "new_customers": view.new_customers,
        }
        keys = [self.keys.version, self.keys.stats]
        args = [orjson.dumps(batch), *blobs]
        status, detail = await self._commit(keys=keys, args=args)
        if int(status) < 0:
            raise GraphContentionError(f"changed while resolving: {detail!r}")
        view.version = int(status)
        for cid, raw in written.items():  # this worker reads them next (its partitions')
            self._remember(cid, raw, view.customers[cid])

    async def customer(self, customer_id: str) -> Customer | None:
        view = View()
        try:
            await self._load_customers(view, [customer_id])
        except GraphContentionError:
            return None
        return view.customers[customer_id]

    async def customer_of(self, node_key: str) -> Customer | None:
        view = View()
        await self.read(view, [node_key])
        raw = view.entries[node_key]
        return await self.customer(load_entry(raw)[0]) if raw else None

    async def version(self) -> int:
        return int(await self.client.get(self.keys.version) or 0)

    async def clear_outboxes(self, event_ids: list[str]) -> None:
        if event_ids:
            await self._clear(keys=[], args=[self.keys.outbox(""), orjson.dumps(event_ids)])

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

    def _parse(self, customer_id: str, raw: bytes) -> Customer:
        cached = self._parsed.get(customer_id)
        if cached is not None and cached[0] == raw:
            return cached[1]
        customer = load_record(customer_id, raw)
        self._remember(customer_id, raw, customer)
        return customer

    def _remember(self, customer_id: str, raw: bytes, customer: Customer) -> None:
        if len(self._parsed) >= PARSED_CACHE_LIMIT:
            self._parsed.clear()
        self._parsed[customer_id] = (raw, customer)

    @staticmethod
    def _own(owners: dict[str, str], view: View, customer_ids: Iterable[str]) -> None:
        for cid in customer_ids:
            for key in view.customers[cid].nodes:
                owners.setdefault(key, cid)

    async def _load_customers(self, view: View, customer_ids: Iterable[str]) -> None:
        wanted = sorted(c for c in set(customer_ids) if c not in view.customers)
        if not wanted:
            return
        rows, _ = await self._read_many([self.keys.customer(c) for c in wanted], wanted)
        for cid, raw in zip(wanted, rows, strict=True):
            if raw is None:
                raise GraphContentionError(f"customer {cid} vanished while reading")
            customer = self._parse(cid, raw)
            view.customers[cid] = customer
            view.read_versions[cid] = customer.version
