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

Every commit moves the graph version, and every read returns it. So a worker keeps what
it read and wrote (:class:`Remembered`, all of it from one version) and, while the graph
is still at that version, nobody else has written: its batches read from Redis only what
it never saw, and commit without checking anything (the commit script compares the
version instead). Another writer moves the version: then everything is read and checked
as before, and what was kept is forgotten.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from services.identity import metrics
from services.identity.adapters.docs import dump_entry, dump_record, load_entry, load_record
from services.identity.domain.diff import Known, Resolution
from services.identity.domain.graph import (
    NeedMore,
    attach,
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
REMEMBERED_LIMIT = 200_000  # index entries a worker keeps (~230-290 bytes each)


class GraphContentionError(RuntimeError):
    """What a batch read changed before it could commit; the batch is resolved again."""


class Keys:
    def __init__(self, namespace: str, buckets: int = 4096) -> None:
        self.buckets = buckets
        self.prefix = f"{namespace}:id"
        self.version = f"{self.prefix}:version"
        self.stats = f"{self.prefix}:stats"
        self.revoked = f"{self.prefix}:revoked"
        self._nodes: dict[int, str] = {}

    def node(self, key: str) -> str:
        """The index bucket (a hash) that holds identifier ``key`` (up to 65,536 buckets
        one string each: a worker keeps many identifiers' buckets, :class:`Remembered`)."""
        bucket = zlib.crc32(key.encode()) % self.buckets
        name = self._nodes.get(bucket)
        if name is None:
            name = f"{self.prefix}:n:{bucket:x}"
            if bucket < 65_536:
                self._nodes[bucket] = name
        return name

    def customer(self, customer_id: str) -> str:
        """The bucket (a hash) that holds customer ``customer_id``."""
        return f"{self.prefix}:c:{zlib.crc32(customer_id.encode()) % self.buckets:x}"

    def outbox(self, event_id: str) -> str:
        return f"{self.prefix}:ob:{event_id}"


class Remembered:
    """What one worker read or wrote of the graph, all of it as Redis held it at graph
    ``version``: while the graph is still at that version (it moves with every commit:
    only this worker's own have been made since), none of it needs reading or checking."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.version: int | None = None
        self.entries: dict[str, bytes] = {}  # identifier -> index entry
        self.buckets: dict[str, str] = {}  # identifier -> its index bucket
        self.customers: set[str] = set()  # whose parsed copy (RedisGraph._parsed) is current

    def at(self, version: int) -> None:
        """What is remembered from now on is from ``version``: what was, if from another,
        is forgotten."""
        if version != self.version:
            if self.version is not None:
                metrics.GRAPH_WRITTEN_ELSEWHERE.inc()
            self.forget()
            self.version = version

    def forget(self) -> None:
        self.version = None
        self.entries.clear()
        self.buckets.clear()
        self.customers.clear()

    def keep(self, key: str, entry: bytes | None, bucket: str) -> None:
        if not entry:  # (an unknown identifier: read again until it is written)
            self.entries.pop(key, None)
            return
        if len(self.entries) >= self.limit:
            if not self.limit:
                return
            self.entries.clear()
            self.buckets.clear()
        self.entries[key] = entry
        self.buckets[key] = bucket


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
    read_version: int | None = None  # the graph version its reads are from
    check: bool = False  # reads from two versions, or another writer about: check them all

    @property
    def quiet(self) -> bool:
        """All its reads from one version, with nobody else writing: a commit need only
        check that version (and will move it by one)."""
        return self.read_version is not None and not self.check

    def saw(self, version: int, quiet: bool) -> None:
        """A read from graph ``version``; ``quiet``: what the worker remembered was still
        current (nobody else had written since)."""
        if self.read_version is None:
            self.read_version = version
        elif version != self.read_version:
            self.check = True
        if not quiet:
            self.check = True

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
        remember: int = REMEMBERED_LIMIT,
    ) -> None:
        self.client = client
        self.keys = Keys(namespace, buckets)
        self.rules = rules
        self._parsed: dict[str, tuple[bytes, Customer]] = {}  # the same bytes parse once
        self._kept = Remembered(remember)
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
        entries, kept, node = view.entries, self._kept, self.keys.node
        remembered = kept.entries
        fresh: list[str] = []
        held: list[str] = []
        for key in {k for k in node_keys if k not in entries}:
            (held if key in remembered else fresh).append(key)
        fresh_buckets, held_buckets = [node(k) for k in fresh], [kept.buckets[k] for k in held]
        values: list[bytes | None] = [remembered[k] for k in held]  # current at kept.version
        found: list[bytes | None] = []
        if fresh or outboxes or (held and not self._validated(view)):
            read, again, found = await self._read_current(
                view,
                list(zip(fresh_buckets, fresh, strict=True)),
                list(zip(held_buckets, held, strict=True)),
                outboxes,
            )
            if again is not None:  # all of it read again: kept from this version on
                fresh, fresh_buckets, read = (
                    fresh + held,
                    fresh_buckets + held_buckets,
                    read + again,
                )
                held, held_buckets, values = [], [], []
            for key, bucket, value in zip(fresh, fresh_buckets, read, strict=True):
                kept.keep(key, value, bucket)
            values = read + values
        for key, bucket, value in zip(
            fresh + held, fresh_buckets + held_buckets, values, strict=True
        ):
            view.read_entries[key] = value
            view.entries[key] = value
            view.buckets[key] = bucket
        return {e: v for e, v in zip(outboxes, found, strict=True) if v is not None}

    async def _read_current(
        self,
        view: View,
        fields: list[tuple[str, str]],
        held: list[tuple[str, str]],
        outboxes: Sequence[str] = (),
    ) -> tuple[list[bytes | None], list[bytes | None] | None, list[bytes | None]]:
        """:meth:`_read_many` for ``view``: the ``fields``' values; the ``held`` ones',
        or None when what the worker kept of them is still current; the outboxes'. The
        view notes the version read, and what is kept from now on is from it."""
        kept = self._kept
        seen = kept.version
        version, read, again, found = await self._read_many(fields, held, seen, outboxes)
        view.saw(version, version == seen)
        kept.at(version)
        return read, (None if version == seen else again), found

    def _validated(self, view: View) -> bool:
        """Whether what the worker remembers is from the version ``view`` read from
        Redis (so it needs no read to be current as of the view's other reads)."""
        return view.read_version is not None and view.read_version == self._kept.version

    async def _read_many(
        self,
        fields: list[tuple[str, str]],
        held: list[tuple[str, str]],
        seen: int | None,
        outboxes: Sequence[str] = (),
    ) -> tuple[int, list[bytes | None], list[bytes | None], list[bytes | None]]:
        """The graph version; hash fields (``(bucket, field)`` pairs); the ``held`` ones
        only if the graph is no longer at version ``seen`` (else none); outboxes by event
        id."""
        args: list[bytes | str] = [
            "" if seen is None else str(seen),
            orjson.dumps(fields),
            orjson.dumps(held),
        ]
        if outboxes:  # their keys put together by the script: none to encode here
            args += [self.keys.outbox(""), orjson.dumps(list(outboxes))]
        version, *rest = await self._read(keys=[self.keys.version], args=args)
        values = [v if v else None for v in rest]
        again = len(held) if version != seen else 0
        n = len(fields)
        return version, values[:n], values[n : n + again], values[n + again :]

    def plan_fast(self, obs: Observation, view: View) -> Resolution | None:
        """``obs`` resolved from what the view holds already (after :meth:`prefetch`:
        most events, without a coroutine), else None: :meth:`plan` it. That is an event
        that tells the graph nothing new, a lone identifier read and found unknown (a
        new cookie: a new customer), or one new identifier of a known customer
        (``graph.attach``), the last two applied to the view as :meth:`plan` would."""
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
        if customer_id is not None:
            return Known(customer_id)
        attached = attach(obs, owners, view.customers, self.rules)
        if attached is not None:
            view.apply(attached)
        return attached

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

    @staticmethod
    def expected_version(view: View) -> int:
        """The graph version :meth:`commit` will give ``view`` unless another writer
        came between (-1 when it can't be told)."""
        if not view.quiet:
            return -1
        assert view.read_version is not None  # (quiet)
        return view.read_version + (1 if view.changed or view.outboxes else 0)

    async def commit(self, view: View) -> None:
        """Write the batch's changes and outboxes atomically, or raise GraphContentionError."""
        quiet = view.quiet
        if not view.changed and not view.outboxes:
            view.version = view.read_version if quiet else await self.version()  # type: ignore[assignment]
            return
        customer = self.keys.customer

        def node(key: str) -> str:  # most were read by this batch: their bucket is known
            return view.buckets.get(key) or self.keys.node(key)

        blobs: list[bytes] = []  # sent as they are, after the batch's JSON: see commit.lua
        written = {c: dump_record(view.customers[c]) for c in view.dirty_customers}

        def blob(value: bytes) -> int:
            blobs.append(value)
            return len(blobs) + 1  # its ARGV index

        batch: dict[str, object] = {
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
        status = -2
        if quiet:  # nobody else wrote: checked by the version alone
            expect = {**batch, "expect": str(view.read_version)}
            status, detail = await self._commit(keys=keys, args=[orjson.dumps(expect), *blobs])
            if int(status) == -2:  # someone else wrote: what this worker remembers is not
                self._kept.forget()  # current, and what the batch read is checked
        if int(status) == -2:
            batch["check_index"] = [
                [node(k), k, (v or b"").decode()] for k, v in sorted(view.read_entries.items())
            ]
            batch["check_customers"] = [
                [customer(c), c, str(v)] for c, v in sorted(view.read_versions.items())
            ]
            status, detail = await self._commit(keys=keys, args=[orjson.dumps(batch), *blobs])
        if int(status) < 0:
            self._kept.forget()
            raise GraphContentionError(f"changed while resolving: {detail!r}")
        view.version = int(status)
        for cid, raw in written.items():  # this worker reads them next (its partitions')
            self._remember(cid, raw, view.customers[cid])
        self._kept_after(view, written)

    def _kept_after(self, view: View, written: dict[str, bytes]) -> None:
        """What the worker remembers, after its commit of ``view``: still current, with
        what it wrote, if nobody else wrote since (the commit moved the version by one)."""
        kept = self._kept
        if kept.version != view.version - 1:
            kept.forget()
            return
        kept.version = view.version
        for key in view.dirty_entries:
            kept.keep(key, view.entries[key], view.buckets.get(key) or self.keys.node(key))
        kept.customers.update(c for c in written if c in self._parsed)
        kept.customers.difference_update(view.removed)

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
                self._kept.forget()  # (read again, from Redis)
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
            self._kept.customers.clear()  # (a subset of it)
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
        kept, parsed = self._kept, self._parsed
        held = [c for c in wanted if c in kept.customers]
        fresh = [c for c in wanted if c not in kept.customers] if held else wanted
        found = [parsed[c][1] for c in held]  # current at kept.version, if it still is
        if fresh or not self._validated(view):
            bucket = self.keys.customer
            rows, again, _ = await self._read_current(
                view, [(bucket(c), c) for c in fresh], [(bucket(c), c) for c in held]
            )
            if again is not None:
                rows += again
                fresh, held, found = fresh + held, [], []  # all as Redis holds them now
            parsed_now = []
            for cid, raw in zip(fresh, rows, strict=True):
                if raw is None:
                    kept.forget()
                    raise GraphContentionError(f"customer {cid} vanished while reading")
                parsed_now.append(self._parse(cid, raw))
                kept.customers.add(cid)
            found = parsed_now + found
            wanted = fresh + held
        for cid, customer in zip(wanted, found, strict=True):
            view.customers[cid] = customer
            view.read_versions[cid] = customer.version
