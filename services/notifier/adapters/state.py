"""Exactly-once effect: one Redis hash per notification id, and the retry schedule.

``<ns>:notifier:n:<id>`` moves pending -> sent | failed | suppressed | expired, or
pending -> retrying -> pending ..., and sent -> delivered on a delivery receipt. A
redelivered request finds the state and does not send again; a ``pending`` older than
its lease means the worker that claimed it died mid-send, so it is sent again with the
same idempotency key. ``<ns>:notifier:retry`` is
a sorted set of ids by due time, polled by a timer; entries are leased while being
processed so a crash never loses a scheduled retry.

Throughput: claims and finishes from concurrent deliveries are coalesced (see
``coalesce.py``) into one Lua call per batch. A batch script applies its ids one after
another atomically, and each caller waits for the batch to return before acting, so
per id the sequence is unchanged: claimed (and lease taken) before any send, final
state written before its outcome is emitted, ``reported`` set only after the sink
flushed. A crash at any point leaves each id in a state the single-call code could
also have left it in (see ``claims.py`` for ids claimed but not yet sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from redis.typing import EncodableT

from services.notifier.adapters.coalesce import Coalescer
from services.notifier.adapters.scripts import (
    CLAIM_BATCH,
    CONFIRM,
    FINISH_BATCH,
    MARK_REPORTED,
    POP_DUE,
    REFRESH,
    RESCHEDULE,
)

Profile = dict[bytes, bytes]


class Claim(StrEnum):
    CLAIMED = "claimed"  # first time (or a due retry): go ahead
    RECLAIMED = "reclaimed"  # the previous worker died mid-send: resend, same retry key
    IN_FLIGHT = "in_flight"  # someone holds the lease: re-checked when it ends
    SCHEDULED = "scheduled"  # a retry is already scheduled: nothing to do now
    FINAL = "final"  # already decided: never send again


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    attempt: int
    failed: frozenset[str] = frozenset()
    final_state: str = ""
    reported: bool = True
    outcome: bytes = b""


@dataclass(frozen=True)
class Finish:
    notification_id: str
    state: str
    outcome: bytes
    profile_key: str
    marketing: bool  # counted against the customer's marketing cap when sent
    now: float


@dataclass(frozen=True)
class Confirmation:
    verdict: str  # delivered | arrived | early | ignored
    detail: bytes = b""  # delivered: the outcome the send was reported with; arrived: the request
    attempts: int = 0  # arrived: sends made so far


@dataclass(frozen=True)
class ClaimRequest:
    notification_id: str
    request: bytes  # the encoded SendNotification, kept for retries
    now: float
    origin: str
    profile_key: str | None = None  # a hash read in the same round trip (consent/contacts)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_claim(reply: Sequence[Any]) -> ClaimResult:
    claim, attempt = Claim(_text(reply[0])), int(reply[1])
    if claim is Claim.FINAL:
        outcome = reply[4] if isinstance(reply[4], bytes) else reply[4].encode()
        return ClaimResult(claim, attempt, frozenset(), _text(reply[2]), reply[3] == b"1", outcome)
    failed = frozenset(f for f in _text(reply[2]).split(",") if f)
    return ClaimResult(claim, attempt, failed)


class NotificationStore:
    def __init__(
        self,
        redis: aioredis.Redis,
        namespace: str,
        lease_s: float,
        ttl_s: int,
        cap_window_s: float = 86_400.0,
    ) -> None:
        self.cap_window_s = cap_window_s
        self._redis = redis
        self._prefix = f"{namespace}:notifier:n:"
        self.schedule_key = f"{namespace}:notifier:retry"
        self._lease, self._ttl = lease_s, ttl_s
        self.lease_s = lease_s
        self._claim = redis.register_script(CLAIM_BATCH)
        self._finish = redis.register_script(FINISH_BATCH)
        self._reschedule = redis.register_script(RESCHEDULE)
        self._pop = redis.register_script(POP_DUE)
        self._reported = redis.register_script(MARK_REPORTED)
        self._refresh = redis.register_script(REFRESH)
        self._confirm = redis.register_script(CONFIRM)
        self._claims: dict[str, Coalescer[ClaimRequest, tuple[ClaimResult, Profile]]] = {}
        self._finishes: Coalescer[Finish, float | None] = Coalescer(self.finish_batch)

    def key(self, notification_id: str) -> str:
        return self._prefix + notification_id

    async def claim(
        self, notification_id: str, request: bytes, now: float, origin: str
    ) -> ClaimResult:
        item = ClaimRequest(notification_id, request, now, origin)
        return (await self.claim_batch([item]))[0][0]

    async def claim_and_read(
        self, notification_id: str, request: bytes, now: float, origin: str, hash_key: str
    ) -> tuple[ClaimResult, Profile]:
        """Claim and read one more hash (the customer's profile); concurrent callers share
        one round trip (claims of one origin go out together)."""
        if origin not in self._claims:
            self._claims[origin] = Coalescer(self.claim_batch)
        item = ClaimRequest(notification_id, request, now, origin, hash_key)
        return await self._claims[origin].submit(item)

    async def claim_batch(self, items: list[ClaimRequest]) -> list[tuple[ClaimResult, Profile]]:
        """Claim every id in order (one atomic script) and read their profile hashes."""
        profiles = list(dict.fromkeys(i.profile_key for i in items if i.profile_key))
        args: list[EncodableT] = [max(i.now for i in items), self._lease, self._ttl]
        args += [items[0].origin, len(items)]
        for item in items:
            args += [item.notification_id, item.request]
        keys = [self.schedule_key, *(self.key(i.notification_id) for i in items), *profiles]
        reply = await self._claim(keys=keys, args=args)
        read = {
            key: dict(zip(pairs[::2], pairs[1::2], strict=True))
            for key, pairs in zip(profiles, reply[5 * len(items) :], strict=True)
        }
        return [
            (parse_claim(reply[5 * n : 5 * n + 5]), read.get(item.profile_key or "", {}))
            for n, item in enumerate(items)
        ]

    async def refresh(
        self, notification_id: str, attempt: int, now: float, profile_key: str
    ) -> Profile | None:
        """Renew a claim taken earlier if it is still ours, with a fresh profile; None if
        another worker took the id over meanwhile (its lease ran out): do not send."""
        keys = [self.key(notification_id), profile_key]
        reply = await self._refresh(keys=keys, args=[attempt, now + self._lease])
        if int(reply[0]) != 1:
            return None
        pairs = reply[1]
        return dict(zip(pairs[::2], pairs[1::2], strict=True))

    async def finish(
        self,
        notification_id: str,
        state: str,
        outcome: bytes,
        profile_key: str,
        *,
        marketing: bool,
        now: float,
    ) -> float | None:
        """Final state durable in Redis when this returns (shared round trip); a marketing
        send is counted on the customer's profile (the safety cap). Returns the time of a
        delivery receipt that arrived while the send was in flight: a ``sent`` with one is
        ``delivered`` already."""
        item = Finish(notification_id, state, outcome, profile_key, marketing, now)
        return await self._finishes.submit(item)

    async def finish_batch(self, items: list[Finish]) -> list[float | None]:
        keys = [
            self.schedule_key,
            *(self.key(i.notification_id) for i in items),
            *(i.profile_key for i in items),
        ]
        args: list[EncodableT] = [self._ttl, max(i.now for i in items), self.cap_window_s]
        for i in items:
            args += [i.state, i.outcome, i.notification_id, int(i.marketing)]
        receipts = await self._finish(keys=keys, args=args)
        return [float(r) if r else None for r in receipts]

    async def confirm(self, notification_id: str, at: float) -> Confirmation:
        """A delivery receipt: ``sent`` becomes ``delivered`` (once)."""
        keys = [self.key(notification_id), self.schedule_key]
        reply = await self._confirm(keys=keys, args=[at, notification_id])
        detail = reply[1] if isinstance(reply[1], bytes) else b""
        attempts = int(reply[2]) if len(reply) > 2 else 0
        return Confirmation(_text(reply[0]), detail, attempts)

    async def record_outcome(self, notification_id: str, outcome: bytes) -> None:
        """The outcome a redelivered request is answered with (a receipt's delivered)."""
        await self._redis.hset(self.key(notification_id), mapping={"outcome": outcome})

    async def mark_reported(self, notification_ids: list[str]) -> None:
        """After the sink flushed: outcomes need no re-report (one script call)."""
        if notification_ids:
            await self._reported(keys=[self.key(i) for i in notification_ids])

    async def reschedule(
        self, notification_id: str, due: float, failed: frozenset[str], *, refund: bool = False
    ) -> None:
        """Retry at ``due``; ``refund``: the send was not tried (rate limit), so the next
        claim has the same attempt number."""
        keys = [self.key(notification_id), self.schedule_key]
        args: list[EncodableT] = [due, ",".join(sorted(failed)), notification_id, int(refund)]
        await self._reschedule(keys=keys, args=args)

    async def due(self, now: float, limit: int) -> list[str]:
        ids = await self._pop(keys=[self.schedule_key], args=[now, self._lease, limit])
        return [_text(i) for i in ids]

    async def unschedule(self, notification_id: str) -> None:
        await self._redis.zrem(self.schedule_key, notification_id)

    async def requests_of(self, notification_ids: list[str]) -> list[bytes | None]:
        """The stored requests (one pipeline); ids without one leave the schedule."""
        if not notification_ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for notification_id in notification_ids:
                pipe.hget(self.key(notification_id), "req")
            raw: list[Any] = await pipe.execute()
        gone = [i for i, r in zip(notification_ids, raw, strict=True) if r is None]
        if gone:
            await self._redis.zrem(self.schedule_key, *gone)
        return [None if r is None else bytes(r) for r in raw]
