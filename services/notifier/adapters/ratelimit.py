"""Per-provider token bucket in Redis, shared by every worker (reservation semantics:
a caller always gets a slot and is told how long to wait for it).

Concurrent callers for one provider are coalesced: one script call reserves ``n``
tokens at once and answers with the bucket level before the reservation, from which
the i-th caller's wait is exactly what the i-th of ``n`` single reservations made
back to back would have been told. The rate a provider sees is therefore unchanged.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from services.notifier.adapters.coalesce import Coalescer

# ARGV: rate, burst, now, n. Returns the tokens available (after refill) before taking n.
BUCKET_SCRIPT = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
redis.call('HSET', KEYS[1], 't', tostring(tokens - n), 'ts', tostring(math.max(now, ts)))
redis.call('EXPIRE', KEYS[1], 60)
return tostring(tokens)
"""


def waits(available: float, n: int, rate: float) -> list[float]:
    """Seconds each of ``n`` back-to-back reservations waits, given the bucket level."""
    return [max(0.0, (i + 1 - available) / rate) for i in range(n)]


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, namespace: str, rates: dict[str, float]) -> None:
        self._prefix = f"{namespace}:notifier:rl:"
        self._rates = rates
        self._bucket = redis.register_script(BUCKET_SCRIPT)
        self._groups: dict[str, Coalescer[float, float]] = {}

    async def wait_s(self, provider: str, now: float) -> float:
        """Seconds to wait before this send may go (0 when under the rate or unlimited)."""
        if self._rates.get(provider, 0.0) <= 0:
            return 0.0
        if provider not in self._groups:
            self._groups[provider] = Coalescer(lambda nows: self.reserve(provider, nows))
        return await self._groups[provider].submit(now)

    async def reserve(self, provider: str, nows: list[float]) -> list[float]:
        """One token per entry of ``nows``, in one round trip; each entry's wait."""
        rate = self._rates[provider]
        burst = max(rate, 1.0)  # one second's worth
        args = [rate, burst, max(nows), len(nows)]
        available = float(await self._bucket(keys=[self._prefix + provider], args=args))
        return waits(available, len(nows), rate)
