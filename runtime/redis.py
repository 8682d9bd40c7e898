"""Redis client factories. Clients are made by entrypoints, never at import time."""

from __future__ import annotations

from typing import Any

import hiredis
import redis
import redis.asyncio as aioredis
from redis.typing import EncodableT

from runtime.settings import Settings


class HiredisPackConnection(aioredis.Connection):
    """Commands packed by hiredis in C, as redis-py's sync client already does.

    The asyncio client packs in Python by growing one bytes object argument by argument,
    which costs more than the round trip for our batch scripts (hundreds of arguments
    each). The bytes on the wire are the same.
    """

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        if not set(map(type, args)) <= _PLAIN:  # one C-level pass for the common case
            args = tuple(_packable(a) for a in args)
        try:
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # stub: 1-tuple
        except TypeError as err:
            raise redis.exceptions.DataError(str(err)) from err


_PLAIN = frozenset({str, bytes, int, float})  # what hiredis packs as redis-py would


def _packable(arg: Any) -> Any:
    if isinstance(arg, bool):  # redis-py refuses booleans; so do we
        raise redis.exceptions.DataError(f"invalid input of type bool: {arg!r}")
    if isinstance(arg, bytearray | memoryview):
        return bytes(arg)
    return arg


def create_redis(settings: Settings, max_connections: int = 100) -> aioredis.Redis:
    """An asyncio client with a connection pool; decode nothing (bytes in, bytes out).

    The pool blocks: a caller finding every connection busy waits for one (up to the
    socket timeout, then a ConnectionError like any outage) instead of failing at once,
    so a worker's concurrency is not bounded by its pool size.
    """
    extra: dict[str, Any] = {}
    if settings.redis.startswith("redis://"):
        extra["connection_class"] = HiredisPackConnection
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis,
        max_connections=max_connections,
        timeout=10,
        socket_connect_timeout=5,
        socket_timeout=10,
        health_check_interval=30,
        **extra,
    )
    return aioredis.Redis.from_pool(pool)


def create_sync_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis, socket_connect_timeout=5, socket_timeout=10)


# What a Redis outage looks like to a client: retry or skip, never crash the worker on it.
REDIS_OUTAGE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
