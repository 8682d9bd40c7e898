"""Commands packed by hiredis are byte for byte what redis-py's own packer sends."""

from __future__ import annotations

import pytest
import redis
import redis.asyncio as aioredis

from runtime.redis import HiredisPackConnection

COMMANDS = [
    ("GET", "kizuna:n:1"),
    ("EVALSHA", "0" * 40, 2, "k1", b"k2", 1795986424.7985122, 1e-07, 0.1 + 0.2, -3),
    ("HSET", "kizuna:c:1", "email", "花子@example.jp\tok"),
    ("CONFIG GET", "maxmemory"),
    (b"OBJECT ENCODING", b"key"),
    ("SET", "k", memoryview(b"\x00\xff bytes")),
    ("SET", "k", bytearray(b"x" * 7000)),  # above redis-py's 6,000-byte chunking cutoff
]


def _wire(chunks: list[bytes]) -> bytes:
    return b"".join(bytes(c) for c in chunks)


@pytest.mark.parametrize("args", COMMANDS)
def test_when_a_command_is_packed_then_the_bytes_equal_redis_pys(args: tuple) -> None:
    ours, theirs = HiredisPackConnection(), aioredis.Connection()

    assert _wire(ours.pack_command(*args)) == _wire(theirs.pack_command(*args))


def test_when_a_boolean_is_given_then_it_is_refused_as_redis_py_refuses_it() -> None:
    with pytest.raises(redis.exceptions.DataError):
        HiredisPackConnection().pack_command("SET", "k", True)
