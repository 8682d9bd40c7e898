"""Redis client factories. Clients are made by entrypoints, never at import time."""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from runtime.settings import Settings


def create_redis(settings: Settings) -> aioredis.Redis:
    """An asyncio client with a connection pool; decode nothing (bytes in, bytes out)."""
    return aioredis.Redis.from_url(
        settings.redis, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30
    )


def create_sync_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis, socket_connect_timeout=5, socket_timeout=10)


# What a Redis outage looks like to a client: retry or skip, never crash the worker on it.
REDIS_OUTAGE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
