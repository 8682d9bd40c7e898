"""Given a real Redis, when the segmenter flushes profile views (whole views, single
fields, absorbed customers), then each hash holds exactly the strings staged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from runtime.redis import create_redis
from runtime.settings import Settings
from services.segmenter.adapters.profiles import (
    CUSTOMERS_PER_CALL,
    RedisProfileView,
    profile_key,
    read_profile,
)


@pytest.fixture
async def async_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = create_redis(settings)
    yield client
    await client.aclose()


@pytest.fixture
def view(async_redis: aioredis.Redis, settings: Settings) -> RedisProfileView:
    return RedisProfileView(async_redis, settings.namespace)


def stored(client: redis.Redis, settings: Settings, customer_id: str) -> dict[str, str]:
    raw = client.hgetall(profile_key(settings.namespace, customer_id))
    return {name.decode(): value.decode() for name, value in raw.items()}


def down_for_one_write(view: RedisProfileView) -> None:
    """Redis refuses the view's next write, then takes them again."""
    script = view._write_script
    calls = 0

    async def down_once(**kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise redis.exceptions.ConnectionError("Redis is down")
        return await script(**kwargs)

    view._write_script = down_once  # type: ignore[assignment]


async def test_when_views_fields_and_an_absorbed_customer_are_flushed_then_each_hash_is_exact(
    view: RedisProfileView,
    async_redis: aioredis.Redis,
    redis_client: redis.Redis,
    settings: Settings,
) -> None:
    purchases = [[1_790_000_000, 5_000, "store"]]
    view.stage(
        "member-1",
        {
            "customer_id": "member-1",
            "cpm_group": "初回客/現役",
            "rfm_segment": "Can't Lose Them",
            "r_score": 5,
            "birthday": None,
            "purchases": purchases,
        },
    )
    view.stage_fields("member-2", {"last_seen_at": "2026-09-21T23:13:20+09:00"})
    view.stage("pos-card-7", {"customer_id": "pos-card-7", "rfm_segment": "Loyal"})
    assert await view.flush() == 3
    view.stage_absorbed("pos-card-7", "member-1")
    view.stage_fields("member-1", {"last_seen_at": "2026-09-22T08:00:00+09:00"})
    assert await view.flush() == 2  # after the first write: they land in order
    await view.settle()

    assert stored(redis_client, settings, "member-1") == {
        "customer_id": "member-1",
        "cpm_group": "初回客/現役",
        "rfm_segment": "Can't Lose Them",
        "r_score": "5",
        "birthday": "",
        "purchases": '[[1790000000,5000,"store"]]',
        "last_seen_at": "2026-09-22T08:00:00+09:00",
    }
    assert stored(redis_client, settings, "member-2") == {
        "last_seen_at": "2026-09-21T23:13:20+09:00"
    }
    assert stored(redis_client, settings, "pos-card-7") == {
        "customer_id": "pos-card-7",
        "absorbed_into": "member-1",
    }
    profile = await read_profile(async_redis, settings.namespace, "member-1")
    assert profile is not None
    assert profile["purchases"] == purchases
    assert profile["birthday"] is None


async def test_when_more_customers_than_one_call_takes_are_flushed_then_every_one_is_written(
    view: RedisProfileView, redis_client: redis.Redis, settings: Settings
) -> None:
    count = 2 * CUSTOMERS_PER_CALL + 7
    for n in range(count):
        view.stage(f"c{n}", {"customer_id": f"c{n}", "lifetime_orders": n})

    assert await view.flush() == count
    await view.settle()
    assert stored(redis_client, settings, f"c{count - 1}") == {
        "customer_id": f"c{count - 1}",
        "lifetime_orders": str(count - 1),
    }
    assert len(list(redis_client.scan_iter(match=profile_key(settings.namespace, "*")))) == count


async def test_when_a_write_fails_then_its_views_are_staged_again_and_the_next_flush_says_so(
    view: RedisProfileView, redis_client: redis.Redis, settings: Settings
) -> None:
    down_for_one_write(view)
    view.stage("c1", {"customer_id": "c1", "rfm_segment": "Loyal"})
    assert await view.flush() == 1  # returns before Redis answers
    view.stage("c1", {"customer_id": "c1", "rfm_segment": "Champions"})  # newer wins

    with pytest.raises(redis.exceptions.ConnectionError):
        await view.flush()
    assert stored(redis_client, settings, "c1") == {}

    assert await view.flush() == 1
    await view.settle()
    assert stored(redis_client, settings, "c1") == {
        "customer_id": "c1",
        "rfm_segment": "Champions",
    }


async def test_when_fields_are_staged_twice_then_both_land_and_a_failed_write_keeps_both(
    view: RedisProfileView, redis_client: redis.Redis, settings: Settings
) -> None:
    """A tick stages what time changed, a page view the last-seen time: neither may drop
    the other, before a flush or after a failed one."""
    down_for_one_write(view)
    view.stage_fields("c1", {"r_score": 2, "window_frequency": None, "rfm_segment": "At Risk"})
    view.stage_fields("c1", {"last_seen_at": "2026-09-22T08:00:00+09:00"})
    assert await view.flush() == 1
    view.stage_fields("c1", {"rfm_segment": "Hibernating"})  # newer, for one field

    with pytest.raises(redis.exceptions.ConnectionError):
        await view.flush()
    assert await view.flush() == 1
    await view.settle()
    assert stored(redis_client, settings, "c1") == {
        "r_score": "2",
        "window_frequency": "",
        "rfm_segment": "Hibernating",
        "last_seen_at": "2026-09-22T08:00:00+09:00",
    }


async def test_when_fields_come_after_a_whole_view_still_waiting_then_they_are_not_undone(
    view: RedisProfileView, redis_client: redis.Redis, settings: Settings
) -> None:
    """A tick's fields staged while the customer's whole view waits for its write (the
    whole views of a flush are written after the fields) must not be overwritten by it,
    nor after that write failed and was put back."""
    down_for_one_write(view)
    view.stage("c1", {"customer_id": "c1", "rfm_segment": "Loyal", "r_score": "4"})
    view.stage("c2", {"customer_id": "c2", "rfm_segment": "Loyal", "r_score": "4"})
    view.stage_fields("c1", {"rfm_segment": "At Risk", "r_score": 2})  # before the flush
    assert await view.flush() == 2  # this write fails
    view.stage_fields("c2", {"rfm_segment": "At Risk", "r_score": 2})  # while it is out

    with pytest.raises(redis.exceptions.ConnectionError):
        await view.flush()
    assert await view.flush() == 2
    await view.settle()
    for customer in ("c1", "c2"):
        assert stored(redis_client, settings, customer) == {
            "customer_id": customer,
            "rfm_segment": "At Risk",
            "r_score": "2",
        }
