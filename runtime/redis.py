"""Redis client factories. Clients are made by entrypoints, never at import time."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.typing import EncodableT

from runtime.settings import Settings


class JoinPackConnection(aioredis.Connection):
    """Commands packed into one bytes object by a single join: each byte copied once.

    redis-py's asyncio client grows a bytes object argument by argument (~0.5 µs an
    argument: our batch scripts send hundreds), and hiredis's packer, which we used
    before, copies ~1.5 ns a byte (750 µs for identity's ~500 KB commit of a batch; a
    join takes ~15 µs). The bytes on the wire are redis-py's.
    """

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if type(arg) is bytes else _encoded(arg)
            parts += (b"$%d\r\n" % len(data), data, b"\r\n")
        return [b"".join(parts)]


def _encoded(arg: Any) -> bytes:
    """An argument's bytes, as redis-py's encoder makes them (it refuses booleans)."""
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):
        raise redis.exceptions.DataError(f"invalid input of type bool: {arg!r}")
    if isinstance(arg, int | float):
        return repr(arg).encode()
    if isinstance(arg, bytes | bytearray | memoryview):
        return bytes(arg)
    raise redis.exceptions.DataError(f"invalid input of type {type(arg).__name__}: {arg!r}")


def create_redis(settings: Settings, max_connections: int = 100) -> aioredis.Redis:
    """An asyncio client with a connection pool; decode nothing (bytes in, bytes out).

    The pool blocks: a caller finding every connection busy waits for one (up to the
    socket timeout, then a ConnectionError like any outage) instead of failing at once,
    so a worker's concurrency is not bounded by its pool size.
    """
    extra: dict[str, Any] = {}
    if settings.redis.startswith("redis://"):
        extra["connection_class"] = JoinPackConnection
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
