"""Redis stores of the gateway: accepted messageIds, and LINE account-link nonces.

Keys: ``<namespace>:gateway:seen:<event_id>`` (SET NX, TTL) is written only after Kafka
acknowledged the event; ``<namespace>:gateway:line_nonce:<nonce>`` -> member id.
Redis being away never refuses an event: it is produced, and consumers dedupe on event_id.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.gateway.metrics import DEDUPE_ERRORS

log = logging.getLogger(__name__)


# One round trip and one command per request, however many events it holds.
_MARK_SEEN = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, '1', 'NX', 'EX', ARGV[1])
end
return #KEYS
"""


class RedisSeen:
    def __init__(self, client: aioredis.Redis, namespace: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = f"{namespace}:gateway:seen:"
        self._ttl_s = ttl_s
        self._mark = client.register_script(_MARK_SEEN)

    async def already_seen(self, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        try:
            found = await self._client.mget([self._prefix + event_id for event_id in event_ids])
        except RedisError as err:
            DEDUPE_ERRORS.labels("read").inc()
            log.warning("dedupe read failed, producing anyway: %s", err)
            return set()
        return {event_id for event_id, value in zip(event_ids, found, strict=True) if value}

    async def mark_seen(self, event_ids: Sequence[str]) -> None:
        try:
            await self._mark(keys=[self._prefix + event_id for event_id in event_ids],
                             args=[self._ttl_s])  # fmt: skip
        except RedisError as err:
            DEDUPE_ERRORS.labels("write").inc()
            log.warning("dedupe write failed (a retry may be produced twice): %s", err)


class LineNonces:
    """The LINE account-link nonce a site issued for one of its members."""

    def __init__(self, client: aioredis.Redis, namespace: str, ttl_s: int) -> None:
        self._client = client
        self._prefix = f"{namespace}:gateway:line_nonce:"
        self._ttl_s = ttl_s

    async def issue(self, member_id: str) -> str:
        """A fresh nonce for ``member_id`` (LINE wants 10-255 characters, unguessable)."""
        nonce = secrets.token_urlsafe(24)
        await self._client.set(self._prefix + nonce, member_id.encode(), ex=self._ttl_s)
        return nonce

    async def members(self, nonces: Sequence[str]) -> dict[str, str]:
        if not nonces:
            return {}
        try:
            found = await self._client.mget([self._prefix + nonce for nonce in nonces])
        except RedisError as err:
            log.warning("LINE nonce lookup failed: %s", err)
            return {}
        return {
            nonce: value.decode() if isinstance(value, bytes) else str(value)
            for nonce, value in zip(nonces, found, strict=True)
            if value is not None
        }


async def issue_link_nonce(client: aioredis.Redis, namespace: str, member_id: str) -> str:
    """For a site backend: store a nonce for ``member_id`` before redirecting to LINE."""
    return await LineNonces(client, namespace, 24 * 3600).issue(member_id)
