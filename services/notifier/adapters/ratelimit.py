"""Per-provider token bucket in Redis, shared by every worker (reservation semantics:
a caller is given a slot and told how long to wait for it, as long as that wait is
within ``max_wait_s``; further out, no token is taken and the caller is told when one
should be free, so it can schedule the send instead of holding a worker for minutes).

Concurrent callers for one provider are coalesced: one script call reserves ``n``
tokens at once and answers with the bucket level before the reservation, from which
the i-th caller's wait is exactly what the i-th of ``n`` single reservations made
back to back would have been told. The rate a provider sees is therefore unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from services.notifier.adapters.coalesce import Coalescer

# ARGV: rate, burst, now, n, max wait. Takes the first k <= n tokens whose wait is within
# max wait; returns {tokens available (after refill) before taking them, k}.
BUCKET_SCRIPT = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n, max_wait = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local k = math.max(0, math.min(n, math.floor(tokens + max_wait * rate + 1e-9)))
redis.call('HSET', KEYS[1], 't', tostring(tokens - k), 'ts', tostring(math.max(now, ts)))
redis.call('EXPIRE', KEYS[1], math.max(60, math.ceil(max_wait) + 60))
return {tostring(tokens), k}
"""


@dataclass(frozen=True)
class Slot:
    wait_s: float  # until the token is (or, when not reserved, should be) there
    reserved: bool  # False: no token taken, send later (the wait was over the limit)


def waits(available: float, n: int, rate: float) -> list[float]:
    """Seconds each of ``n`` back-to-back reservations waits, given the bucket level."""
    return [max(0.0, (i + 1 - available) / rate) for i in range(n)]


def slots(available: float, n: int, rate: float, taken: int) -> list[Slot]:
    """What each of ``n`` callers is told when the first ``taken`` got a token."""
    return [Slot(w, i < taken) for i, w in enumerate(waits(available, n, rate))]


class RateLimiter:
    def __init__(
        self,
        redis: aioredis.Redis,
        namespace: str,
        rates: dict[str, float],
        max_wait_s: float = 5.0,
    ) -> None:
        self._prefix = f"{namespace}:notifier:rl:"
        self._rates = rates
        self.max_wait_s = max_wait_s
        self._bucket = redis.register_script(BUCKET_SCRIPT)
        self._groups: dict[str, Coalescer[float, Slot]] = {}

    async def slot(self, provider: str, now: float) -> Slot:
        """This send's slot: wait ``wait_s`` then send, or (not reserved) send later."""
        if self._rates.get(provider, 0.0) <= 0:
            return FREE
        if provider not in self._groups:
            self._groups[provider] = Coalescer(lambda nows: self.reserve(provider, nows))
        return await self._groups[provider].submit(now)

    async def reserve(self, provider: str, nows: list[float]) -> list[Slot]:
        """Tokens for the entries of ``nows`` (one round trip); each entry's slot."""
        rate = self._rates[provider]
        burst = max(rate, 1.0)  # one second's worth
        args = [rate, burst, max(nows), len(nows), self.max_wait_s]
        available, taken = await self._bucket(keys=[self._prefix + provider], args=args)
        return slots(float(available), len(nows), rate, int(taken))


FREE = Slot(0.0, True)
