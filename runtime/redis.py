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
        args = _split_name(args)
        if not set(map(type, args)) <= _PLAIN:  # one C-level pass for the common case
            args = tuple(_packable(a) for a in args)
        try:
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]  # stub: 1-tuple
        except TypeError as err:
            raise redis.exceptions.DataError(str(err)) from err


def _split_name(args: tuple[EncodableT, ...]) -> tuple[EncodableT, ...]:
    """A command name of several words ("CONFIG GET") as separate arguments, as redis-py
    sends it."""
    first = args[0]
    if isinstance(first, str):
        return (*first.encode().split(), *args[1:])
    if isinstance(first, bytes) and b" " in first:
        return (*first.split(), *args[1:])
    return args


_PLAIN = frozenset({str, bytes, int, float})  # what hiredis packs as redis-py would


def _packable(arg: Any) -> Any:
    if isinstance(arg, bool):  # redis-py refuses booleans; so do we
        raise redis.exceptions.DataError(f"invalid input of type bool: {arg!r}")
    if isinstance(arg, bytearray | memoryview):
        return bytes(arg)
    return arg


class JoinPackConnection(aioredis.Connection):
    """Commands packed into one bytes object by a single join, for a client that sends
    large values (identity's graph: a batch's commit is ~500 KB). hiredis copies ~1.5 ns
    a byte (750 µs for that commit; a join ~15 µs) but ~80 ns an argument against ~140
    here, so clients sending many small arguments keep :class:`HiredisPackConnection`.
    The bytes on the wire are redis-py's.
    """

    def pack_command(self, *args: EncodableT) -> list[bytes]:
        args = _split_name(args)
        parts = [b"*%d\r\n" % len(args)]
        add = parts.append
        for arg in args:
            data = arg if type(arg) is bytes else _encoded(arg)
            size = len(data)
            add(_HEADS[size] if size < len(_HEADS) else b"$%d\r\n" % size)
            add(data)
            add(b"\r\n")
        return [b"".join(parts)]


_HEADS = [b"$%d\r\n" % size for size in range(4096)]  # a bulk string's header, by length


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


def create_redis(
    settings: Settings, max_connections: int = 100, *, large_values: bool = False
) -> aioredis.Redis:
    """An asyncio client with a connection pool; decode nothing (bytes in, bytes out).
    ``large_values``: it sends values of kilobytes (see :class:`JoinPackConnection`).

    The pool blocks: a caller finding every connection busy waits for one (up to the
    socket timeout, then a ConnectionError like any outage) instead of failing at once,
    so a worker's concurrency is not bounded by its pool size.
    """
    extra: dict[str, Any] = {}
    if settings.redis.startswith("redis://"):
        extra["connection_class"] = JoinPackConnection if large_values else HiredisPackConnection
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
