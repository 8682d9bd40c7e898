"""Given the real Redis and scripted providers, the delivery pipeline sends a message at
most once per notification id, only with consent, on the first usable channel, and
retries, falls back or gives up exactly as the provider's answer demands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from prometheus_client import generate_latest

from runtime.redis import create_redis
from runtime.settings import Settings
from schemas.channels import Channel, Purpose
from schemas.codec import encode
from schemas.notifications import SendNotification
from services.notifier.adapters.messages import Outbound, SendResult
from services.notifier.adapters.ratelimit import RateLimiter
from services.notifier.domain.reach import MarketingCap
from services.notifier.domain.retry import Verdict
from tests.integration.notifier.conftest import (
    T0,
    Harness,
    app_opened,
    consent,
    email_known,
    line_followed,
)

Request = Callable[..., SendNotification]


async def test_when_no_opt_in_was_recorded_then_marketing_is_suppressed(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", email_known())

    await harness.delivery.handle(request_())

    assert harness.sink.statuses() == [("suppressed", "no_consent")]
    assert harness.providers[Channel.EMAIL].sent == []


async def test_when_opted_in_then_the_mail_goes_once_with_an_unsubscribe_link(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", email_known(), consent(True, Channel.EMAIL))

    await harness.delivery.handle(request_())

    (sent,) = harness.providers[Channel.EMAIL].sent
    assert sent.address == "hanako@example.jp"
    assert sent.content.unsubscribe_url == "https://kizuna.example/unsubscribe/c-1.email"  # type: ignore[union-attr]
    (outcome,) = harness.sink.outcomes
    assert (outcome.status, outcome.channel, outcome.attempts) == ("sent", Channel.EMAIL, 1)
    assert outcome.provider_latency_ms is not None


async def test_when_opted_out_after_opting_in_then_marketing_is_suppressed(
    harness: Harness, request_: Request
) -> None:
    later = T0 + timedelta(days=3)
    await harness.customer(
        "c-1", email_known(), consent(True, Channel.EMAIL), consent(False, Channel.EMAIL, later)
    )

    await harness.delivery.handle(request_())

    assert harness.sink.statuses() == [("suppressed", "opted_out")]


async def test_when_an_old_opt_in_arrives_after_a_newer_opt_out_then_the_opt_out_stands(
    harness: Harness, request_: Request
) -> None:
    await harness.customer(
        "c-1",
        email_known(),
        consent(False, Channel.EMAIL, T0 + timedelta(days=3)),
        consent(True, Channel.EMAIL, T0),  # late, older
    )

    await harness.delivery.handle(request_())

    assert harness.sink.statuses() == [("suppressed", "opted_out")]
    history = await harness.ledger.history("c-1")
    assert [r.state for r in history] == ["granted", "revoked"]
    assert history[0].shown_text == "お得な情報を受け取る"


async def test_when_transactional_then_no_opt_in_is_needed_but_a_channel_opt_out_stops_it(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", email_known(), consent(False, Channel.EMAIL))
    await harness.customer(
        "c-2", email_known(), consent(False, Channel.EMAIL, purpose=Purpose.TRANSACTIONAL)
    )
    data = {"store_name": "絆茶舗", "order_id": "A-1", "items": [], "total": 0}

    await harness.delivery.handle(
        request_(
            "n-1", "c-1", purpose=Purpose.TRANSACTIONAL, template="order_confirmation", data=data
        )
    )
    await harness.delivery.handle(
        request_(
            "n-2", "c-2", purpose=Purpose.TRANSACTIONAL, template="order_confirmation", data=data
        )
    )

    assert harness.sink.statuses() == [("sent", None), ("suppressed", "opted_out")]
    assert harness.providers[Channel.EMAIL].sent[0].content.unsubscribe_url is None  # type: ignore[union-attr]


async def test_when_the_same_request_is_redelivered_then_it_is_not_sent_again(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", email_known(), consent(True, Channel.EMAIL))

    await harness.delivery.handle_many([request_()], "request")
    await harness.delivery.handle_many([request_()], "request")

    assert len(harness.providers[Channel.EMAIL].sent) == 1
    assert harness.sink.statuses() == [("sent", None), ("duplicate", "already sent")]


async def test_when_line_is_preferred_but_unfollowed_then_push_is_chosen(
    harness: Harness, request_: Request
) -> None:
    await harness.customer(
        "c-1", consent(True, Channel.LINE), consent(True, Channel.PUSH), app_opened("tok-1")
    )

    await harness.delivery.handle(request_(channels=(Channel.LINE, Channel.PUSH)))

    assert harness.providers[Channel.LINE].sent == []
    assert [m.address for m in harness.providers[Channel.PUSH].sent] == ["tok-1"]


async def test_when_line_fails_permanently_then_it_falls_back_to_email_if_allowed(
    harness: Harness, request_: Request
) -> None:
    await harness.customer(
        "c-1",
        line_followed(),
        email_known(),
        consent(True, Channel.LINE),
        consent(True, Channel.EMAIL),
    )
    harness.providers[Channel.LINE].script.extend([Verdict.PERMANENT, Verdict.PERMANENT])

    await harness.delivery.handle(request_("n-1", channels=(Channel.LINE, Channel.EMAIL)))
    await harness.delivery.handle(
        request_("n-2", channels=(Channel.LINE, Channel.EMAIL), allow_fallback=False)
    )

    assert [(o.status, o.channel) for o in harness.sink.outcomes] == [
        ("sent", Channel.EMAIL),
        ("failed", Channel.LINE),
    ]


async def test_when_the_provider_fails_transiently_then_the_retry_is_scheduled_and_sent_later(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", line_followed(), consent(True, Channel.LINE))
    harness.providers[Channel.LINE].script.append(Verdict.RETRYABLE)
    harness.providers[Channel.LINE].retry_after_s = 30

    await harness.delivery.handle(request_(channels=(Channel.LINE,)))
    assert harness.sink.outcomes == []
    assert await harness.delivery.run_due(10) == 0  # not due yet: Retry-After honoured
    await harness.delivery.handle(request_(channels=(Channel.LINE,)))  # redelivered meanwhile
    harness.clock.now += 31
    assert await harness.delivery.run_due(10) == 1

    assert harness.sink.statuses() == [("sent", None)]
    assert harness.sink.outcomes[0].attempts == 2
    assert len(harness.providers[Channel.LINE].sent) == 2


async def test_when_retries_run_out_then_the_request_fails_and_is_dead_lettered(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", line_followed(), consent(True, Channel.LINE))
    harness.providers[Channel.LINE].script.extend([Verdict.RETRYABLE] * 3)

    await harness.delivery.handle(request_(channels=(Channel.LINE,)))
    for _ in range(2):
        harness.clock.now += 60
        await harness.delivery.run_due(10)

    assert [(o.status, o.attempts) for o in harness.sink.outcomes] == [("failed", 3)]
    assert len(harness.sink.letters) == 1


async def test_when_fcm_says_unregistered_then_the_token_is_forgotten(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", consent(True, Channel.PUSH), app_opened("tok-dead"))
    harness.providers[Channel.PUSH].script.append(Verdict.GONE)

    await harness.delivery.handle(request_("n-1", channels=(Channel.PUSH,)))
    await harness.delivery.handle(request_("n-2", channels=(Channel.PUSH,)))

    assert harness.sink.statuses()[1] == ("suppressed", "unreachable")
    assert (await harness.ledger.profile("c-1")).push_token() is None


async def test_when_a_template_variable_is_missing_then_that_request_fails_visibly(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", email_known(), consent(True, Channel.EMAIL))

    await harness.delivery.handle(request_("n-1", data={"store_name": "絆茶舗"}))
    await harness.delivery.handle(request_("n-2"))

    assert harness.sink.outcomes[0].status == "failed"
    assert "template_error" in (harness.sink.outcomes[0].reason or "")
    assert harness.sink.letters[0].reason == "processing_failed"
    assert harness.sink.outcomes[1].status == "sent"


async def test_when_a_worker_died_mid_send_then_the_next_one_resends_after_the_lease(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", line_followed(), consent(True, Channel.LINE))
    request = request_(channels=(Channel.LINE,))
    await harness.store.claim(
        request.notification_id, encode(request), harness.clock(), "request"
    )  # then died

    await harness.delivery.handle(request)  # redelivered while the lease still holds
    assert harness.providers[Channel.LINE].sent == []
    harness.clock.now += 31
    await harness.delivery.run_due(10)

    assert harness.sink.statuses() == [("sent", None)]


async def test_when_the_request_expired_then_it_is_not_sent(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", email_known(), consent(True, Channel.EMAIL))

    await harness.delivery.handle(request_(expires_at=T0 - timedelta(minutes=1)))

    assert harness.sink.statuses() == [("expired", "expired before sending")]


class _Broken:
    channel = Channel.LINE

    async def send(self, message: Outbound) -> SendResult:
        raise KeyError("a bug in the provider adapter")


async def test_when_a_provider_raises_then_the_send_is_retried_later_not_the_worker_stopped(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", line_followed(), consent(True, Channel.LINE))
    harness.delivery.providers[Channel.LINE] = _Broken()

    await harness.delivery.handle_many([request_(channels=(Channel.LINE,))], "request")
    harness.delivery.providers[Channel.LINE] = harness.providers[Channel.LINE]
    harness.clock.now += 60
    assert await harness.delivery.run_due(10) == 1

    assert harness.sink.statuses() == [("sent", None)]
    assert harness.sink.outcomes[0].attempts == 2


async def test_when_the_rate_limit_has_no_slot_soon_then_the_send_waits_in_the_schedule(
    harness: Harness, request_: Request, settings: Settings
) -> None:
    """LINE at 2 sends/s (a burst of 2) and at most 0.5 s of waiting in the worker: of five
    sends at once, three go (the third after 0.5 s); two are scheduled for their slot,
    without using up an attempt, and go when it comes."""
    client = create_redis(settings)
    harness.delivery.limiter = RateLimiter(
        client, settings.namespace, {Channel.LINE.value: 2.0}, max_wait_s=0.5
    )
    for c in range(5):
        await harness.customer(f"c-{c}", line_followed(), consent(True, Channel.LINE))
    batch = [request_(f"n-{c}", f"c-{c}", channels=(Channel.LINE,)) for c in range(5)]

    await harness.delivery.handle_many(batch, "request")

    assert harness.sink.statuses() == [("sent", None)] * 3
    assert len(harness.providers[Channel.LINE].sent) == 3
    assert await harness.delivery.run_due(10) == 0  # their slots are still ahead
    harness.clock.now += 2
    assert await harness.delivery.run_due(10) == 2
    await client.aclose()

    assert harness.sink.statuses() == [("sent", None)] * 5
    assert len(harness.providers[Channel.LINE].sent) == 5
    assert [o.attempts for o in harness.sink.outcomes] == [1] * 5, "deferral used an attempt"


async def test_when_marketing_exceeds_the_safety_cap_then_it_is_suppressed_as_capped(
    harness: Harness, request_: Request
) -> None:
    """Two marketing messages a day at most: a third the same day is refused (whatever
    asked for it), a transactional one still goes, and a day later marketing goes again."""
    harness.delivery.cap = MarketingCap(sends=2)
    await harness.customer("c-1", line_followed(), consent(True, Channel.LINE))
    line = (Channel.LINE,)

    for n in range(3):
        harness.clock.now += 60
        await harness.delivery.handle_many([request_(f"n-{n}", channels=line)], "request")
    await harness.delivery.handle(
        request_("n-receipt", channels=line, purpose=Purpose.TRANSACTIONAL)
    )
    harness.clock.now += 86_400
    await harness.delivery.handle(request_("n-tomorrow", channels=line))

    assert harness.sink.statuses() == [
        ("sent", None),
        ("sent", None),
        ("suppressed", "capped"),
        ("sent", None),
        ("sent", None),
    ]
    assert 'reason="capped"' in generate_latest().decode()
