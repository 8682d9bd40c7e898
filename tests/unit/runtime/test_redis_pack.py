"""Commands packed by either of our packers are byte for byte what redis-py's own packer
sends."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from runtime.redis import HiredisPackConnection, JoinPackConnection

PACKERS = [HiredisPackConnection, JoinPackConnection]

COMMANDS = [
    ("GET", "kizuna:n:1"),
    ("EVALSHA", "0" * 40, 2, "k1", b"k2", 1795986424.7985122, 1e-07, 0.1 + 0.2, -3),
    ("HSET", "kizuna:c:1", "email", "花子@example.jp\tok"),
    ("CONFIG GET", "maxmemory"),
    (b"OBJECT ENCODING", b"key"),
    ("SET", "k", memoryview(b"\x00\xff bytes")),
    ("SET", "k", bytearray(b"x" * 7000)),  # above redis-py's 6,000-byte chunking cutoff
    ("EVALSHA", "0" * 40, 0, b"{" + b"x" * 600_000 + b"}", *[b"y" * n for n in range(300)]),
    ("SET", "k", ""),
]


def _wire(chunks: list[bytes]) -> bytes:
    return b"".join(bytes(c) for c in chunks)


@pytest.mark.parametrize("packer", PACKERS)
@pytest.mark.parametrize("args", COMMANDS)
def test_when_a_command_is_packed_then_the_bytes_equal_redis_pys(
    packer: type[aioredis.Connection], args: tuple
) -> None:
    ours, theirs = packer(), aioredis.Connection()

    assert _wire(ours.pack_command(*args)) == _wire(theirs.pack_command(*args))


@pytest.mark.parametrize("packer", PACKERS)
@pytest.mark.parametrize("value", [True, None, object(), ["a"]])
def test_when_a_value_redis_py_refuses_is_given_then_it_is_refused_too(
    packer: type[aioredis.Connection], value: Any
) -> None:
    with pytest.raises(redis.exceptions.DataError):
        aioredis.Connection().pack_command("SET", "k", value)  # the behaviour we keep
    with pytest.raises(redis.exceptions.DataError):
        packer().pack_command("SET", "k", value)
