"""Per-provider token bucket in Redis, shared by every worker (reservation semantics:
a caller always gets a slot and is told how long to wait for it)."""

from __future__ import annotations

import redis.asyncio as aioredis

BUCKET_SCRIPT = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate) - 1
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(math.max(now, ts)))
redis.call('EXPIRE', KEYS[1], 60)
if tokens >= 0 then return '0' end
return tostring(-tokens / rate)
"""


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, namespace: str, rates: dict[str, float]) -> None:
        self._prefix = f"{namespace}:notifier:rl:"
        self._rates = rates
        self._bucket = redis.register_script(BUCKET_SCRIPT)

    async def wait_s(self, provider: str, now: float) -> float:
        """Seconds to wait before this send may go (0 when under the rate or unlimited)."""
        rate = self._rates.get(provider, 0.0)
        if rate <= 0:
            return 0.0
        burst = max(rate, 1.0)  # one second's worth
        return float(await self._bucket(keys=[self._prefix + provider], args=[rate, burst, now]))
