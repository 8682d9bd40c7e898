"""The journey reports' exactly-once counting in the real Redis: one count per skipped
customer, however many share an instant, and none for a redelivered fact."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from runtime.settings import Settings
from services.journey.adapters.reports import JourneyReports
from services.journey.domain.outputs import Skipped

AT = 1_900_000_000.0


@pytest.fixture
async def reports(settings: Settings) -> AsyncIterator[JourneyReports]:
    client = aioredis.Redis.from_url(settings.redis)
    yield JourneyReports(client, settings.namespace)
    keys = [key async for key in client.scan_iter(match=f"{settings.namespace}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_when_two_customers_are_refused_entry_at_the_same_instant_then_both_count(
    reports: JourneyReports,
) -> None:
    for customer in ("c1", "c2", "c1"):  # c1's refusal delivered twice
        reports.stage(customer, Skipped("cart_abandonment", None, None, "exited", AT))

    await reports.flush()

    assert await reports.counters("cart_abandonment") == {"skipped:exited": 2}


async def test_when_a_repeat_buyer_is_outside_an_audience_then_only_her_history_says_so(
    reports: JourneyReports,
) -> None:
    for n in range(3):  # three repeat orders, each a trigger of the F2 nudge
        reports.stage("c1", Skipped("f2_nudge", None, None, "audience", AT + n))

    counted = await reports.flush()

    assert counted == 0
    assert await reports.counters("f2_nudge") == {}
    assert [r["reason"] for r in await reports.why("c1")] == ["audience"] * 3
