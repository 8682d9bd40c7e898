"""The profile view in Redis: hash ``<namespace>:profile:<customer_id>``.

Writes are staged per customer (the latest view wins) and flushed in one pipeline, so a
burst of events for one customer costs one HSET. The view is rebuilt from the table
after every recovery, so a view lost between a flush and a crash comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from itertools import chain
from pathlib import Path
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

from services.segmenter.domain.figures import Purchase
from services.segmenter.domain.reports import History


class ProfileView(Protocol):
    def stage(self, customer_id: str, view: dict[str, Any]) -> None: ...
    def stage_fields(self, customer_id: str, fields: dict[str, Any]) -> None: ...
    def stage_absorbed(self, customer_id: str, survivor: str) -> None: ...
    async def flush(self) -> int: ...


WRITE_LUA = (Path(__file__).parent / "profiles_write.lua").read_text()
CUSTOMERS_PER_CALL = 1_000  # bounds how long one call holds Redis


def profile_key(namespace: str, customer_id: str) -> str:
    return f"{namespace}:profile:{customer_id}"


def _field(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)


class RedisProfileView:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._redis = redis
        self._namespace = namespace
        self._write_script = redis.register_script(WRITE_LUA)
        self._staged: dict[str, dict[str, str] | None] = {}
        self._absorbed: dict[str, str] = {}
        self._partial: dict[str, dict[str, str]] = {}
        self._serial = asyncio.Lock()
        self._writing: asyncio.Future[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._staged)

    def stage(self, customer_id: str, view: dict[str, Any]) -> None:
        """Every field is written each time (unknown ones as ""), so no stale field stays."""
        self._staged[customer_id] = {name: _field(value) for name, value in view.items()}

    def stage_fields(self, customer_id: str, fields: dict[str, Any]) -> None:
        """Update only these fields (last_seen_at; what a tick changed), leaving the rest
        of the view; fields staged earlier for the customer stay staged."""
        rendered = {name: _field(value) for name, value in fields.items()}
        whole = self._staged.get(customer_id)
        if whole is not None:  # a whole view waits (written after the fields): update it
            whole.update(rendered)
            return
        staged = self._partial.get(customer_id)
        if staged is None:
            self._partial[customer_id] = rendered
        else:
            staged.update(rendered)

    def stage_absorbed(self, customer_id: str, survivor: str) -> None:
        self._staged[customer_id] = None
        self._absorbed[customer_id] = survivor

    async def flush(self) -> int:
        """Start writing what was staged, and return without waiting for Redis: the
        worker goes on with its next batch meanwhile (waiting for each write cost it
        ~10 % of its time). One write is in flight at a time and they land in the order
        they were started: a flush first waits for the previous write. A write that
        failed puts its views back in the stage (newer stagings win) and its error is
        raised by the next flush or :meth:`settle`. Returns how many views it started."""
        async with self._serial:
            await self._settle()
            if not self._staged and not self._partial:
                return 0
            staged, self._staged = self._staged, {}
            absorbed, self._absorbed = self._absorbed, {}
            partial, self._partial = self._partial, {}
            self._writing = asyncio.ensure_future(self._write(staged, absorbed, partial))
            return len(staged) + len(partial)

    async def settle(self) -> None:
        """Wait until the views flushed so far are in Redis (raises a failed write's
        error, its views staged again)."""
        async with self._serial:
            await self._settle()

    async def _settle(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing

    async def _write(
        self,
        staged: dict[str, dict[str, str] | None],
        absorbed: dict[str, str],
        partial: dict[str, dict[str, str]],
    ) -> None:
        """One script call per ``CUSTOMERS_PER_CALL`` customers (a pipeline of one
        HSET each cost the worker ~10 µs a customer, the script ~1); if one fails, the
        views go back to the stage."""
        writes = list(_writes(staged, absorbed, partial))
        prefix = profile_key(self._namespace, "")
        try:
            for start in range(0, len(writes), CUSTOMERS_PER_CALL):
                args: list[str | bytes] = [prefix]
                for chunk in writes[start : start + CUSTOMERS_PER_CALL]:
                    args += chunk
                await self._write_script(keys=[], args=args)
        except Exception:
            self._restage(staged, absorbed, partial)  # Redis is down: for the next flush
            raise

    def _restage(
        self,
        staged: dict[str, dict[str, str] | None],
        absorbed: dict[str, str],
        partial: dict[str, dict[str, str]],
    ) -> None:
        """Put a failed write back under what was staged since, in the order it happened:
        its fields, then its whole views, then anything newer (a newer whole view wins;
        newer fields update the view put back, or the fields put back)."""
        for customer_id, view in staged.items():
            if customer_id in self._staged:
                continue
            if view is None:
                self._staged[customer_id] = None
                self._absorbed.setdefault(customer_id, absorbed[customer_id])
                continue
            self._staged[customer_id] = view | self._partial.pop(customer_id, {})
        for customer_id, fields in partial.items():
            if customer_id not in self._staged:  # else a whole view, written after, wins
                self._partial[customer_id] = fields | self._partial.get(customer_id, {})


def _writes(
    staged: dict[str, dict[str, str] | None],
    absorbed: dict[str, str],
    partial: dict[str, dict[str, str]],
) -> Iterator[tuple[str, str, bytes]]:
    """Each customer's part of the script's arguments: id, op, then the fields as one
    JSON array of name, value, name, value, ..."""
    for customer_id, changed in partial.items():
        yield customer_id, "f", _flat(changed)
    for customer_id, view in staged.items():
        if view is None:  # absorbed: only the pointer to the survivor remains
            pointer = {"customer_id": customer_id, "absorbed_into": absorbed[customer_id]}
            yield customer_id, "a", _flat(pointer)
        else:
            yield customer_id, "v", _flat(view)


def _flat(fields: dict[str, str]) -> bytes:
    return orjson.dumps(list(chain.from_iterable(fields.items())))


def decode_profile(raw: dict[Any, Any]) -> dict[str, Any]:
    """A profile hash as JSON-friendly values (numbers as numbers, empty as None)."""
    profile: dict[str, Any] = {}
    for name, value in raw.items():
        text = value.decode()
        key = name.decode()
        if text == "":
            profile[key] = None
        elif key == "purchases":
            profile[key] = orjson.loads(text)
        elif text.lstrip("-").isdigit() and key != "customer_id":
            profile[key] = int(text)
        else:
            profile[key] = text
    return profile


async def read_profile(
    redis: aioredis.Redis, namespace: str, customer_id: str
) -> dict[str, Any] | None:
    raw = await redis.hgetall(profile_key(namespace, customer_id))
    return decode_profile(raw) if raw else None


async def read_histories(redis: aioredis.Redis, namespace: str) -> AsyncIterator[History]:
    """Every customer's purchases from the profile view (absorbed customers skipped): a
    SCAN page at a time, its purchases read in one pipelined round trip (a round trip
    per profile was ~10M of them for a 10M-customer shop)."""
    pattern = profile_key(namespace, "*")
    cursor = 0
    while True:
        cursor, keys = await redis.scan(cursor, match=pattern, count=1000)
        if keys:
            async with redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hget(key, "purchases")
                found = await pipe.execute()
            for key, raw in zip(keys, found, strict=True):
                if not raw:
                    continue
                name = key.decode() if isinstance(key, bytes) else key
                customer_id = name.split(":profile:", 1)[1]
                bought = tuple(Purchase(at, n, channel) for at, n, channel in orjson.loads(raw))
                yield History(customer_id, bought)
        if cursor == 0:
            return
