"""The consent ledger and contact points in Redis: last-writer-wins registers + history.

``<ns>:notifier:c:<customer>`` holds the registers (value ``<sort key>\\t<value>``; a
Lua script keeps the write with the greatest sort key). ``<ns>:notifier:ch:<customer>``
keeps every consent record ever seen, by event id (a replay adds nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis

from services.notifier.domain.ledger import ConsentRecord, Register
from services.notifier.domain.reach import Profile

LAST_WRITER_WINS = """
local changed = 0
for i = 1, #ARGV, 2 do
  local field, value = ARGV[i], ARGV[i + 1]
  local new_key = string.sub(value, 1, string.find(value, '\\t', 1, true) - 1)
  local old = redis.call('HGET', KEYS[1], field)
  if not old or string.sub(old, 1, (string.find(old, '\\t', 1, true) or 0) - 1) < new_key then
    redis.call('HSET', KEYS[1], field, value)
    changed = changed + 1
  end
end
return changed
"""


class LedgerStore:
    def __init__(self, redis: aioredis.Redis, namespace: str) -> None:
        self._redis = redis
        self._prefix = f"{namespace}:notifier:"
        self._lww = redis.register_script(LAST_WRITER_WINS)

    def profile_key(self, customer_id: str) -> str:
        return f"{self._prefix}c:{customer_id}"

    def history_key(self, customer_id: str) -> str:
        return f"{self._prefix}ch:{customer_id}"

    async def apply(
        self, customer_id: str, writes: Iterable[Register], record: ConsentRecord | None = None
    ) -> int:
        """Record the consent (if any) first, then the registers; returns registers changed."""
        if record is not None:
            await self._redis.hsetnx(
                self.history_key(customer_id), record.event_id, record.model_dump_json()
            )
        args: list[str] = []
        for write in writes:
            args += [write.field, write.encoded()]
        if not args:
            return 0
        return int(await self._lww(keys=[self.profile_key(customer_id)], args=args))

    async def profile(self, customer_id: str) -> Profile:
        raw = await self._redis.hgetall(self.profile_key(customer_id))
        return parse_profile(raw)

    async def history(self, customer_id: str) -> list[ConsentRecord]:
        raw = await self._redis.hvals(self.history_key(customer_id))
        records = [ConsentRecord.model_validate_json(item) for item in raw]
        return sorted(records, key=lambda r: (r.occurred_at, r.event_id))


def parse_profile(raw: Mapping[Any, Any]) -> Profile:
    return Profile.parse({_str(k): _str(v) for k, v in raw.items()})


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
