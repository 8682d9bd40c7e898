"""Journey measurement in Redis: exactly-once counters and the "why skipped" history.

Each fact (an entry, a send, a conversion, an exit, a final skip) carries a
deterministic id; a Lua script counts it only if ``SET NX`` on that id succeeds, so a
redelivered event or a replay never counts twice.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from services.journey.domain.outputs import Converted, Entered, Exited, Output, Requested, Skipped

FACT_TTL_SECONDS = 120 * 86_400
# re-entry refusals happen on every product view of a browsing customer: counted in the
# metrics, not written per customer
QUIET_REFUSALS = frozenset({"cooldown", "entered_before", "max_entries"})
# nor counted in a journey's report: an audience refusal (e.g. the F2 nudge's trigger, an
# order, by a repeat buyer) says the customer was not meant for it, on every such order
# (a fact key each, kept FACT_TTL_SECONDS); the metrics and her "why" history still say so
UNCOUNTED_REFUSALS = QUIET_REFUSALS | {"audience"}
WHY_TTL_SECONDS = 90 * 86_400

COUNT_ONCE = """
local ttl = tonumber(ARGV[2])
local facts = cjson.decode(ARGV[1])
local counted = 0
for _, fact in ipairs(facts) do
  if redis.call('SET', fact[1], '1', 'NX', 'EX', ttl) then
    local incs = fact[3]
    for i = 1, #incs, 2 do redis.call('HINCRBY', fact[2], incs[i], incs[i + 1]) end
    counted = counted + 1
  end
end
return counted
"""


REMEMBER_WHY = """
local keep = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('LPUSH', ARGV[i], ARGV[i + 1])
  redis.call('LTRIM', ARGV[i], 0, keep - 1)
  redis.call('EXPIRE', ARGV[i], ttl)
end
return (#ARGV - 2) / 2
"""
WHY_PER_CALL = 1_000  # bounds how long one call holds Redis


class JourneyReports:
    def __init__(self, redis: Redis, namespace: str, why_keep: int = 50) -> None:
        self.redis, self.ns, self.why_keep = redis, namespace, why_keep
        self._count = redis.register_script(COUNT_ONCE)
        self._remember = redis.register_script(REMEMBER_WHY)
        self._facts: list[list[Any]] = []
        self._why: list[tuple[str, bytes]] = []

    def report_key(self, journey: str) -> str:
        return f"{self.ns}:journey:report:{journey}"

    def why_key(self, customer_id: str) -> str:
        return f"{self.ns}:journey:why:{customer_id}"

    def stage(self, customer_id: str, output: Output) -> None:
        fact = self._fact(customer_id, output)
        if fact is not None:
            self._facts.append(fact)
        if isinstance(output, Skipped) and output.reason not in QUIET_REFUSALS:
            record = {
                "at": output.at,
                "journey": output.journey,
                "instance": output.instance_id,
                "step": output.step,
                "reason": output.reason,
                "deferred": not output.final,
            }
            self._why.append((customer_id, orjson.dumps(record)))

    def _fact(self, customer_id: str, o: Output) -> list[Any] | None:
        dedupe = f"{self.ns}:journey:fact:"
        if isinstance(o, Entered):
            incs = [f"entered:{o.variant}", 1, f"value:{o.variant}", o.value]
            return [f"{dedupe}e:{o.instance_id}", self.report_key(o.journey), incs]
        if isinstance(o, Requested):
            r = o.request
            return [
                f"{dedupe}s:{r.notification_id}",
                self.report_key(r.journey_id or ""),
                [f"sent:{o.variant}", 1],
            ]
        if isinstance(o, Converted):
            incs = [f"converted:{o.variant}", 1, f"revenue:{o.variant}", o.amount]
            if o.recovered:
                incs += [f"recovered:{o.variant}", 1, f"recovered_revenue:{o.variant}", o.amount]
            return [f"{dedupe}c:{o.instance_id}", self.report_key(o.journey), incs]
        if isinstance(o, Exited):
            return [
                f"{dedupe}x:{o.instance_id}",
                self.report_key(o.journey),
                [f"exited:{o.reason}", 1],
            ]
        if isinstance(o, Skipped) and o.final and o.reason not in UNCOUNTED_REFUSALS:
            # her id too: a refused entry has no instance, and two customers refused
            # at the same instant are two skips
            fid = f"k:{o.journey}:{customer_id}:{o.instance_id}:{o.step}:{o.reason}:{o.at}"
            return [dedupe + fid, self.report_key(o.journey), [f"skipped:{o.reason}", 1]]
        return None

    def pending(self) -> int:
        return len(self._facts) + len(self._why)

    async def flush(self) -> int:
        facts, self._facts = self._facts, []
        why, self._why = self._why, []
        counted = 0
        try:
            if facts:
                counted = int(await self._count(args=[orjson.dumps(facts), FACT_TTL_SECONDS]))
        except Exception:
            self._facts[:0], self._why[:0] = facts, why  # counted once each, so safe to resend
            raise
        for start in range(0, len(why), WHY_PER_CALL):
            # one script call, not three commands a record (~10 µs each in the worker)
            args: list[Any] = [self.why_keep, WHY_TTL_SECONDS]
            for customer_id, record in why[start : start + WHY_PER_CALL]:
                args += (self.why_key(customer_id), record)
            await self._remember(args=args)
        return counted

    async def why(self, customer_id: str) -> list[dict[str, Any]]:
        return [orjson.loads(r) for r in await self.redis.lrange(self.why_key(customer_id), 0, -1)]

    async def counters(self, journey: str) -> dict[str, int]:
        raw = await self.redis.hgetall(self.report_key(journey))
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    async def journeys(self) -> list[str]:
        prefix = self.report_key("")
        found = [
            k.decode() if isinstance(k, bytes) else k
            async for k in self.redis.scan_iter(f"{prefix}*", count=1000)  # (10 a page)
        ]
        return sorted(k[len(prefix) :] for k in found)
