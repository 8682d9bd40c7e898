"""Given the real local Redis, values and scripts round-trip, and AOF is on."""

from __future__ import annotations

import asyncio

import pytest
import redis

from runtime.redis import create_redis
from runtime.settings import Settings
from schemas.codec import encode
from schemas.events import RAW_EVENT_ADAPTER
from schemas.examples import example


def test_when_an_event_is_stored_then_it_reads_back_equal(
    redis_client: redis.Redis, settings: Settings
) -> None:
    event = example("pos_purchased")
    key = f"{settings.namespace}:event:{event.event_id}"

    redis_client.set(key, encode(event))

    assert RAW_EVENT_ADAPTER.validate_json(redis_client.get(key) or b"") == event


def test_when_the_local_redis_runs_then_append_only_persistence_is_on(
    redis_client: redis.Redis,
) -> None:
    assert redis_client.config_get("appendonly") == {"appendonly": "yes"}


@pytest.mark.asyncio
async def test_when_a_lua_script_runs_on_the_async_client_then_it_is_atomic(
    settings: Settings,
) -> None:
    client = create_redis(settings)
    key = f"{settings.namespace}:counter"
    bump = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    try:
        results = [await bump(keys=[key], args=[5]) for _ in range(3)]
        assert results == [5, 10, 15]
    finally:
        await client.delete(key)
        await client.aclose()


async def test_when_more_calls_than_connections_run_at_once_then_they_wait_not_fail(
    settings: Settings,
) -> None:
    client = create_redis(settings, max_connections=8)
    key = f"{settings.namespace}:busy"
    try:
        # Each call holds a connection until its answer: 64 at once must share 8.
        await asyncio.gather(*(client.incr(key) for _ in range(64)))

        assert await client.get(key) == b"64"
        pool = client.connection_pool
        opened = [*pool._get_free_connections(), *pool._get_in_use_connections()]
        assert 1 < len(opened) <= 8
    finally:
        await client.delete(key)
        await client.aclose()
