"""The reports read every customer's purchases from the profile views in the real Redis,
a SCAN page at a time: none missed or read twice across pages, absorbed ones left out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis

from runtime.settings import Settings
from services.segmenter.adapters.profiles import profile_key, read_histories


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    made = aioredis.Redis.from_url(settings.redis)
    yield made
    keys = [key async for key in made.scan_iter(match=f"{settings.namespace}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await made.delete(*keys[start : start + 1000])
    await made.aclose()


async def test_when_profiles_span_many_scan_pages_then_each_buyer_is_read_once(
    settings: Settings, client: aioredis.Redis
) -> None:
    ns = settings.namespace
    async with client.pipeline(transaction=False) as pipe:
        for n in range(2_500):  # several pages of 1,000
            bought = [[1_700_000_000 + n, 1_000 + n, "online"]]
            pipe.hset(profile_key(ns, f"c{n}"), mapping={"purchases": orjson.dumps(bought)})
        pipe.hset(profile_key(ns, "gone"), mapping={"absorbed_into": "c1"})  # no purchases
        await pipe.execute()

    histories = [h async for h in read_histories(client, ns)]

    assert sorted(h.customer_id for h in histories) == sorted(f"c{n}" for n in range(2_500))
    c7 = next(h for h in histories if h.customer_id == "c7")
    assert [(p.at, p.net, p.channel) for p in c7.purchases] == [(1_700_000_007, 1_007, "online")]
