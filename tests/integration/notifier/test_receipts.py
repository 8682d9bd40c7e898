"""Given the real Redis, when the app reports that a push arrived (Segment's "Push
Notification Received" with the notification id the push carried), then the sent
notification is reported ``delivered`` exactly once, also when the receipt overtakes
the send's own bookkeeping or is read again after a crash; receipts for anything not
sent change nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from schemas.channels import Channel
from schemas.notifications import SendNotification
from services.notifier.adapters.messages import Outbound, SendResult
from services.notifier.domain.receipts import Receipt
from services.notifier.domain.retry import Verdict
from tests.integration.notifier.conftest import T0, Harness, app_opened, consent

Request = Callable[..., SendNotification]
ARRIVED = T0 + timedelta(seconds=2)


def receipt(notification_id: str = "n-1", via: str = "Push Notification Received") -> Receipt:
    return Receipt(notification_id, "c-1", ARRIVED, via)


@pytest.fixture
async def pushed(harness: Harness, request_: Request) -> Harness:
    await harness.customer("c-1", consent(True, Channel.PUSH), app_opened("tok-1"))
    await harness.delivery.handle(request_("n-1", channels=(Channel.PUSH,)))
    return harness


async def test_when_the_app_says_the_push_arrived_then_it_is_delivered_once(
    pushed: Harness,
) -> None:
    first = await pushed.delivery.confirm(receipt())
    again = await pushed.delivery.confirm(receipt(via="Push Notification Tapped"))

    assert (first, again) == (True, False)
    sent, delivered = pushed.sink.outcomes
    assert (sent.status, delivered.status) == ("sent", "delivered")
    assert delivered.reason == "receipt: Push Notification Received"
    assert delivered.occurred_at == ARRIVED
    assert delivered.channel is Channel.PUSH
    assert delivered.provider_message_id == sent.provider_message_id
    assert delivered.notification_id == sent.notification_id


async def test_when_a_receipt_names_nothing_sent_then_nothing_is_reported(
    harness: Harness, request_: Request
) -> None:
    await harness.customer("c-1", consent(True, Channel.PUSH), app_opened("tok-1"))
    harness.providers[Channel.PUSH].script.append(Verdict.PERMANENT)
    await harness.delivery.handle(request_("n-failed", channels=(Channel.PUSH,)))
    await harness.delivery.handle(request_("n-no-consent", channels=(Channel.EMAIL,)))

    applied = [
        await harness.delivery.confirm(receipt(i)) for i in ("n-failed", "n-no-consent", "n-x")
    ]

    assert applied == [False, False, False]
    assert harness.sink.statuses() == [
        ("failed", "scripted permanent"),
        ("suppressed", "no_consent"),
    ]


async def test_when_the_receipt_comes_while_the_send_is_in_flight_then_it_is_not_lost(
    harness: Harness, request_: Request
) -> None:
    """The app can report before the worker wrote the send's final state."""
    await harness.customer("c-1", consent(True, Channel.PUSH), app_opened("tok-1"))
    scripted = harness.providers[Channel.PUSH]

    async def fast_phone(message: Outbound) -> SendResult:
        assert not await harness.delivery.confirm(receipt(message.notification_id))
        return SendResult(Verdict.ACCEPTED, provider_message_id="m-1")

    scripted.send = fast_phone  # type: ignore[method-assign]
    await harness.delivery.handle_many([request_("n-1", channels=(Channel.PUSH,))], "request")

    assert harness.sink.statuses() == [
        ("sent", None),
        ("delivered", "receipt: receipt during the send"),
    ]
    assert not await harness.delivery.confirm(receipt())  # and the late copy changes nothing


async def test_when_delivered_was_not_acknowledged_then_the_receipt_read_again_reports_it(
    pushed: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = [ConnectionError("kafka away")]

    async def flush() -> None:
        if failing:
            raise failing.pop()

    monkeypatch.setattr(pushed.sink, "flush", flush)
    with pytest.raises(ConnectionError):
        await pushed.delivery.confirm(receipt())  # the worker stops before acking the event

    assert await pushed.delivery.confirm(receipt())  # the event is read again
    assert not await pushed.delivery.confirm(receipt())
    assert [o.status for o in pushed.sink.outcomes] == ["sent", "delivered", "delivered"]


async def test_when_a_timed_out_push_did_arrive_then_its_retry_is_called_off(
    harness: Harness, request_: Request
) -> None:
    """FCM timed out, so a retry was scheduled; then the app says the push arrived. It is
    delivered, and the retry never sends it a second time."""
    await harness.customer("c-1", consent(True, Channel.PUSH), app_opened("tok-1"))
    harness.providers[Channel.PUSH].script.append(Verdict.RETRYABLE)
    await harness.delivery.handle_many([request_("n-1", channels=(Channel.PUSH,))], "request")

    assert await harness.delivery.confirm(receipt())
    harness.clock.now += 3600
    assert await harness.delivery.run_due(10) == 0
    await harness.delivery.handle_many([request_("n-1", channels=(Channel.PUSH,))], "request")

    assert len(harness.providers[Channel.PUSH].sent) == 1
    (delivered, duplicate) = harness.sink.outcomes
    assert (delivered.status, delivered.channel, delivered.attempts) == (
        "delivered",
        Channel.PUSH,
        1,
    )
    assert (duplicate.status, duplicate.reason) == ("duplicate", "already delivered")


async def test_when_an_arrived_push_was_not_stored_then_the_receipt_read_again_reports_it(
    harness: Harness, request_: Request, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.customer("c-1", consent(True, Channel.PUSH), app_opened("tok-1"))
    harness.providers[Channel.PUSH].script.append(Verdict.RETRYABLE)
    await harness.delivery.handle_many([request_("n-1", channels=(Channel.PUSH,))], "request")

    async def crash(notification_id: str, outcome: bytes) -> None:
        raise ConnectionError("died before the outcome was stored")

    with monkeypatch.context() as patched:
        patched.setattr(harness.store, "record_outcome", crash)
        with pytest.raises(ConnectionError):
            await harness.delivery.confirm(receipt())

    assert await harness.delivery.confirm(receipt())  # the receipt event is read again
    assert not await harness.delivery.confirm(receipt())
    assert [(o.status, o.attempts) for o in harness.sink.outcomes] == [("delivered", 1)]
    assert len(harness.providers[Channel.PUSH].sent) == 1
