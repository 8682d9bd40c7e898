"""Exactly-once effect: one Redis hash per notification id, and the retry schedule.

``<ns>:notifier:n:<id>`` moves pending -> sent | failed | suppressed | expired, or
pending -> retrying -> pending ... A redelivered request finds the state and does not
send again; a ``pending`` older than its lease means the worker that claimed it died
mid-send, so it is sent again with the same idempotency key. ``<ns>:notifier:retry`` is
a sorted set of ids by due time, polled by a timer; entries are leased while being
processed so a crash never loses a scheduled retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis
from redis.typing import EncodableT

CLAIM = """
local function claim()
local key, schedule = KEYS[1], KEYS[2]
local now, lease, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local id, origin = ARGV[5], ARGV[6]
local state = redis.call('HGET', key, 'state')
if not state then
  redis.call('HSET', key, 'state', 'pending', 'attempt', 1, 'lease', now + lease,
             'req', ARGV[4], 'failed', '')
  redis.call('EXPIRE', key, ttl)
  return {'claimed', '1', ''}
end
local attempt = tonumber(redis.call('HGET', key, 'attempt') or '0')
local failed = redis.call('HGET', key, 'failed') or ''
if state == 'pending' then
  local held = tonumber(redis.call('HGET', key, 'lease') or '0')
  if held > now then
    redis.call('ZADD', schedule, held, id)
    return {'in_flight', tostring(attempt), ''}
  end
  redis.call('HSET', key, 'attempt', attempt + 1, 'lease', now + lease)
  return {'reclaimed', tostring(attempt + 1), failed}
end
if state == 'retrying' then
  local due = tonumber(redis.call('HGET', key, 'due') or '0')
  if origin == 'retry' and due <= now then
    redis.call('HSET', key, 'state', 'pending', 'attempt', attempt + 1, 'lease', now + lease)
    return {'claimed', tostring(attempt + 1), failed}
  end
  redis.call('ZADD', schedule, due, id)
  return {'scheduled', tostring(attempt), ''}
end
if origin == 'retry' then redis.call('ZREM', schedule, id) end
return {'final', tostring(attempt), state, redis.call('HGET', key, 'reported') or '0',
        redis.call('HGET', key, 'outcome') or ''}
end
-- the verdict in five slots, then the customer's profile hash (one round trip for both)
local reply = claim()
for i = #reply + 1, 5 do reply[i] = '' end
if KEYS[3] then
  for _, item in ipairs(redis.call('HGETALL', KEYS[3])) do reply[#reply + 1] = item end
end
return reply
"""

FINISH = """
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'outcome', ARGV[2], 'reported', '0')
redis.call('HDEL', KEYS[1], 'req')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('ZREM', KEYS[2], ARGV[4])
return 1
"""

RESCHEDULE = """
redis.call('HSET', KEYS[1], 'state', 'retrying', 'due', ARGV[1], 'failed', ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]), ARGV[3])
return 1
"""

POP_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
end
return ids
"""


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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_claim(reply: list[bytes]) -> ClaimResult:
    claim, attempt = Claim(_text(reply[0])), int(reply[1])
    if claim is Claim.FINAL:
        outcome = reply[4] if isinstance(reply[4], bytes) else reply[4].encode()
        return ClaimResult(claim, attempt, frozenset(), _text(reply[2]), reply[3] == b"1", outcome)
    failed = frozenset(f for f in _text(reply[2]).split(",") if f)
    return ClaimResult(claim, attempt, failed)


class NotificationStore:
    def __init__(self, redis: aioredis.Redis, namespace: str, lease_s: float, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:notifier:n:"
        self.schedule_key = f"{namespace}:notifier:retry"
        self._lease, self._ttl = lease_s, ttl_s
        self._claim = redis.register_script(CLAIM)
        self._finish = redis.register_script(FINISH)
        self._reschedule = redis.register_script(RESCHEDULE)
        self._pop = redis.register_script(POP_DUE)

    def key(self, notification_id: str) -> str:
        return self._prefix + notification_id

    def claim_args(
        self, notification_id: str, request: bytes, now: float, origin: str
    ) -> tuple[list[str], list[EncodableT]]:
        keys = [self.key(notification_id), self.schedule_key]
        return keys, [now, self._lease, self._ttl, request, notification_id, origin]

    async def claim(
        self, notification_id: str, request: bytes, now: float, origin: str
    ) -> ClaimResult:
        keys, args = self.claim_args(notification_id, request, now, origin)
        return parse_claim(await self._claim(keys=keys, args=args))

    async def claim_and_read(
        self, notification_id: str, request: bytes, now: float, origin: str, hash_key: str
    ) -> tuple[ClaimResult, dict[bytes, bytes]]:
        """Claim and read one more hash (the customer's profile) in a single round trip."""
        keys, args = self.claim_args(notification_id, request, now, origin)
        reply = await self._claim(keys=[*keys, hash_key], args=args)
        pairs = reply[5:]
        return parse_claim(reply), dict(zip(pairs[::2], pairs[1::2], strict=True))

    async def finish(self, notification_id: str, state: str, outcome: bytes) -> None:
        keys = [self.key(notification_id), self.schedule_key]
        await self._finish(keys=keys, args=[state, outcome, self._ttl, notification_id])

    async def mark_reported(self, notification_ids: list[str]) -> None:
        if not notification_ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for notification_id in notification_ids:
                pipe.hset(self.key(notification_id), "reported", "1")
            await pipe.execute()

    async def reschedule(self, notification_id: str, due: float, failed: frozenset[str]) -> None:
        keys = [self.key(notification_id), self.schedule_key]
        await self._reschedule(keys=keys, args=[due, ",".join(sorted(failed)), notification_id])

    async def due(self, now: float, limit: int) -> list[str]:
        ids = await self._pop(keys=[self.schedule_key], args=[now, self._lease, limit])
        return [_text(i) for i in ids]

    async def unschedule(self, notification_id: str) -> None:
        await self._redis.zrem(self.schedule_key, notification_id)

    async def request_of(self, notification_id: str) -> bytes | None:
        raw: Any = await self._redis.hget(self.key(notification_id), "req")
        if raw is None:
            await self._redis.zrem(self.schedule_key, notification_id)
            return None
        return bytes(raw)
