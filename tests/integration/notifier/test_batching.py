"""Given the batched Redis calls (one claim per batch, coalesced tokens and finishes),
each notification still goes at most once, a customer's requests still see what the
earlier ones changed, a late batch claim is never acted on once another worker owns
the id, and the token bucket hands out the same slots as one call per message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis

from runtime.redis import create_redis
from runtime.settings import Settings
from schemas.channels import Channel
from schemas.notifications import SendNotification
from services.notifier.adapters.ratelimit import RateLimiter
from services.notifier.adapters.state import ClaimRequest, ClaimResult, Profile
from services.notifier.claims import Claims
from services.notifier.domain.retry import Verdict
from tests.integration.notifier.conftest import Harness, app_opened, consent, line_followed

Request = Callable[..., SendNotification]


async def test_when_a_batch_is_delivered_twice_then_each_customer_gets_one_message(
    harness: Harness, request_: Request
) -> None:
    for c in range(20):
        await harness.customer(f"c-{c}", line_followed(), consent(True, Channel.LINE))
    batch = [request_(f"n-{c}", f"c-{c}", channels=(Channel.LINE,)) for c in range(20)]

    await harness.delivery.handle_many(batch, "request")
    await harness.delivery.handle_many(batch, "request")

    assert len(harness.providers[Channel.LINE].sent) == 20
    statuses = [o.status for o in harness.sink.outcomes]
    assert (statuses.count("sent"), statuses.count("duplicate")) == (20, 20)


async def test_when_the_first_request_kills_the_token_then_the_next_one_in_the_batch_sees_it(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", consent(True, Channel.PUSH), app_opened("tok-dead"))
    harness.providers[Channel.PUSH].script.append(Verdict.GONE)

    await harness.delivery.handle_many(
        [request_(f"n-{i}", channels=(Channel.PUSH,)) for i in (1, 2)], "request"
    )

    assert len(harness.providers[Channel.PUSH].sent) == 1
    assert harness.sink.statuses()[1] == ("suppressed", "unreachable")


async def test_when_a_late_batch_claim_was_taken_over_then_this_worker_does_not_send(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", line_followed(), consent(True, Channel.LINE))
    request = request_(channels=(Channel.LINE,))
    (claimed,) = await Claims(harness.store, harness.ledger).batch(
        [request], "request", harness.clock()
    )
    harness.clock.now += 31  # our lease ran out before our turn came ...
    other = await harness.store.claim(request.notification_id, b"{}", harness.clock(), "request")
    assert other.claim.value == "reclaimed"  # ... and another worker took the id over

    assert await harness.delivery.handle(request, "request", claimed) is None

    assert harness.providers[Channel.LINE].sent == []
    assert harness.sink.outcomes == []


async def test_when_a_late_batch_claim_is_still_ours_then_it_is_renewed_and_sent_once(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", line_followed(), consent(True, Channel.LINE))
    request = request_(channels=(Channel.LINE,))
    (claimed,) = await Claims(harness.store, harness.ledger).batch(
        [request], "request", harness.clock()
    )
    harness.clock.now += 20

    await harness.delivery.handle(request, "request", claimed)
    await harness.store.mark_reported([request.notification_id])  # the sink flushed
    await harness.delivery.handle(request)  # redelivered: already final

    assert len(harness.providers[Channel.LINE].sent) == 1
    assert harness.sink.statuses() == [("sent", None), ("duplicate", "already sent")]


async def test_when_many_sends_take_tokens_at_once_then_they_get_back_to_back_slots(
    settings: Settings, redis_client: redis.Redis
) -> None:
    client = create_redis(settings)
    limiter = RateLimiter(client, settings.namespace, {"line": 2.0})

    slots = await asyncio.gather(*(limiter.slot("line", 1000.0) for _ in range(5)))
    later = (await limiter.slot("line", 1000.0)).wait_s
    waits = [s.wait_s for s in slots]
    await client.aclose()

    assert sorted(waits) == [0.0, 0.0, 0.5, 1.0, 1.5]
    assert later == 2.0


async def test_when_redis_fails_during_a_batch_then_running_it_again_sends_each_once(
    harness: Harness, request_: Request, monkeypatch: pytest.MonkeyPatch
) -> None:
    for c in range(3):
        await harness.customer(f"c-{c}", line_followed(), consent(True, Channel.LINE))
    batch = [request_(f"n-{c}", f"c-{c}", channels=(Channel.LINE,)) for c in range(3)]
    claim_batch, failures = harness.store.claim_batch, [redis.exceptions.ConnectionError("gone")]

    async def flaky(items: list[ClaimRequest]) -> list[tuple[ClaimResult, Profile]]:
        if failures:
            raise failures.pop()
        return await claim_batch(items)

    monkeypatch.setattr(harness.store, "claim_batch", flaky)

    with pytest.raises(redis.exceptions.ConnectionError):
        await harness.delivery.handle_many(batch, "request")
    await harness.delivery.handle_many(batch, "request")  # what the worker does on an outage

    assert sorted(m.notification_id for m in harness.providers[Channel.LINE].sent) == [
        "n-0",
        "n-1",
        "n-2",
    ]
    assert harness.sink.statuses() == [("sent", None)] * 3
