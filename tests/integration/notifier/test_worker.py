"""The notifier as a real worker process on the real Kafka + Redis.

Given a LINE server that records a push and then never answers, when the worker is
killed -9 after LINE accepted but before the offset was committed, then the restarted
worker sends again with the same retry key, LINE answers 409, and exactly one "sent"
outcome is published. Given a marketing mail's one-click unsubscribe, when the mail
client POSTs it, then marketing stops at once and the opt-out is published as a raw
consent_revoked event.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis
from confluent_kafka import Consumer, Producer

from runtime.settings import Settings
from schemas.channels import Channel, Purpose
from schemas.codec import decode, encode
from schemas.customer import CustomerEvent
from schemas.events import CustomTracked, Source
from schemas.identifiers import Identifiers
from schemas.notifications import NotificationOutcome, SendNotification
from schemas.payloads import CustomTrackedPayload
from schemas.topics import (
    CUSTOMER_EVENTS,
    DEADLETTER,
    NOTIFICATIONS_OUTCOMES,
    NOTIFICATIONS_REQUESTED,
    RAW_PROFILE,
)
from services.notifier.adapters.line import retry_key
from services.notifier.domain.tokens import sign
from tests.integration.conftest import Worker, consume, wait_until
from tests.integration.notifier.conftest import (
    CART_DATA,
    app_opened,
    consent,
    email_known,
    line_followed,
)
from tests.integration.notifier.fakes import FakeProvider, ThreadedFake

NOTIFIER = "services.notifier"
SECRET = "test-unsubscribe-secret"


@pytest.fixture
def line_server() -> Iterator[ThreadedFake]:
    server = ThreadedFake(FakeProvider(hang_s=20.0))
    yield server
    server.close()


@pytest.fixture
def notifier_env(monkeypatch: pytest.MonkeyPatch, tmp_path, line_server: ThreadedFake) -> None:
    for name, value in {
        "DRY_RUN": "false",
        "LINE_BASE_URL": line_server.url,
        "LINE_CHANNEL_TOKEN": "line-token",
        "FCM_BASE_URL": line_server.url,  # the fake answers FCM v1 too
        "FCM_TOKEN": "fcm-token",
        "SMTP_PORT": "1",  # no mail in these tests
        "LEASE_S": "2",
        "RETRY_POLL_S": "0.2",
        "SESSION_TIMEOUT_S": "6",
        "UNSUBSCRIBE_SECRET": SECRET,
        "OUTBOX_DIR": str(tmp_path / "outbox"),
    }.items():
        monkeypatch.setenv(f"KIZUNA_NOTIFIER_{name}", value)


def produce_customer(producer: Producer, settings: Settings, customer_id: str, *events) -> None:
    topic = CUSTOMER_EVENTS.name(settings.namespace)
    for event in events:
        item = CustomerEvent(
            customer_id=customer_id, identity_version=1, resolved_at=datetime.now(UTC), event=event
        )
        producer.produce(topic, key=customer_id.encode(), value=encode(item))
    assert producer.flush(10) == 0


def request(notification_id: str, channels: tuple[Channel, ...]) -> SendNotification:
    return SendNotification(
        notification_id=notification_id,
        customer_id="c-1",
        purpose=Purpose.MARKETING,
        channels=channels,
        template="cart_abandoned",
        data=CART_DATA,
        requested_at=datetime.now(UTC),
    )


def outcomes_of(messages: list) -> list[NotificationOutcome]:
    return [decode(NOTIFICATIONS_OUTCOMES.adapter, m.value()) for m in messages]


@pytest.mark.usefixtures("topics", "notifier_env")
def test_when_killed_after_line_accepted_then_the_restart_does_not_deliver_twice(
    settings: Settings,
    producer: Producer,
    consumer_factory: Callable[..., Consumer],
    redis_client: redis.Redis,
    worker_factory: Callable[[str], Worker],
    line_server: ThreadedFake,
) -> None:
    first = worker_factory(NOTIFIER)
    produce_customer(producer, settings, "c-1", line_followed(), consent(True, Channel.LINE))
    profile = f"{settings.namespace}:notifier:c:c-1"
    wait_until(lambda: len(redis_client.hgetall(profile)) >= 3)
    outcomes = consumer_factory(NOTIFICATIONS_OUTCOMES.name(settings.namespace))

    line_server.fake.script.append("hang")  # LINE takes it, then the worker dies waiting
    producer.produce(
        NOTIFICATIONS_REQUESTED.name(settings.namespace),
        key=b"c-1",
        value=encode(request("n-crash-1", (Channel.LINE,))),
    )
    assert producer.flush(10) == 0
    wait_until(lambda: len(line_server.fake.seen) == 1)
    first.process.kill()
    first.process.wait(10)
    worker_factory(NOTIFIER)

    (outcome,) = outcomes_of(consume(outcomes, 1, timeout=60))
    time.sleep(2)  # anything more would be a second outcome
    assert outcomes.poll(1.0) is None
    assert (outcome.status, outcome.channel, outcome.attempts) == ("sent", Channel.LINE, 2)
    seen = line_server.fake.seen
    assert [s.answered for s in seen] == [200, 409]
    assert {s.headers["X-Line-Retry-Key"] for s in seen} == {retry_key("n-crash-1")}


@pytest.mark.usefixtures("topics", "notifier_env")
def test_when_the_one_click_unsubscribe_is_posted_then_marketing_stops_and_it_is_published(
    settings: Settings,
    producer: Producer,
    consumer_factory: Callable[..., Consumer],
    redis_client: redis.Redis,
    worker_factory: Callable[[str], Worker],
) -> None:
    worker = worker_factory(NOTIFIER)
    produce_customer(producer, settings, "c-1", email_known(), consent(True, Channel.EMAIL))
    profile = f"{settings.namespace}:notifier:c:c-1"
    wait_until(lambda: redis_client.hget(profile, "consent:email:marketing") is not None)
    raw_profile = consumer_factory(RAW_PROFILE.name(settings.namespace))
    outcomes = consumer_factory(NOTIFICATIONS_OUTCOMES.name(settings.namespace))
    letters = consumer_factory(DEADLETTER.name(settings.namespace))

    token = sign(SECRET.encode(), "c-1", Channel.EMAIL)
    post = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}/unsubscribe/{token}",
        data=b"List-Unsubscribe=One-Click",
        method="POST",
    )
    with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    topic = NOTIFICATIONS_REQUESTED.name(settings.namespace)
    producer.produce(topic, key=b"c-1", value=encode(request("n-after-unsub", (Channel.EMAIL,))))
    producer.produce(topic, key=b"c-1", value=b"not json")
    assert producer.flush(10) == 0

    (revoked,) = [decode(RAW_PROFILE.adapter, m.value()) for m in consume(raw_profile, 1)]
    assert revoked.type == "consent_revoked"
    assert (revoked.payload.method, revoked.payload.channel) == ("one_click", Channel.EMAIL)
    assert revoked.identifiers.email == "hanako@example.jp"
    (outcome,) = outcomes_of(consume(outcomes, 1))
    assert (outcome.status, outcome.reason) == ("suppressed", "opted_out")
    (letter,) = [decode(DEADLETTER.adapter, m.value()) for m in consume(letters, 1)]
    assert letter.reason == "undecodable"
    assert 'kizuna_notifier_suppressed_total{reason="opted_out"} 1.0' in worker.metrics()


@pytest.mark.usefixtures("topics", "notifier_env")
def test_when_the_unsubscribe_token_is_forged_then_nothing_changes(
    worker_factory: Callable[[str], Worker],
) -> None:
    worker = worker_factory(NOTIFIER)
    forged = sign(b"another-secret", "c-1", Channel.EMAIL)
    post = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}/unsubscribe/{forged}", data=b"", method="POST"
    )

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=10)  # noqa: S310

    refused.value.close()
    assert refused.value.code == 400


@pytest.mark.usefixtures("topics", "notifier_env")
def test_when_the_worker_is_stopped_then_its_clients_are_closed_cleanly(
    settings: Settings,
    producer: Producer,
    consumer_factory: Callable[..., Consumer],
    redis_client: redis.Redis,
    worker_factory: Callable[[str], Worker],
) -> None:
    worker = worker_factory(NOTIFIER)
    produce_customer(producer, settings, "c-1", line_followed(), consent(True, Channel.LINE))
    profile = f"{settings.namespace}:notifier:c:c-1"
    wait_until(lambda: len(redis_client.hgetall(profile)) >= 3)
    outcomes = consumer_factory(NOTIFICATIONS_OUTCOMES.name(settings.namespace))
    producer.produce(
        NOTIFICATIONS_REQUESTED.name(settings.namespace),
        key=b"c-1",
        value=encode(request("n-before-stop", (Channel.LINE,))),
    )
    assert producer.flush(10) == 0
    (outcome,) = outcomes_of(consume(outcomes, 1))  # the HTTP session and Redis pool are in use

    worker.stop()  # SIGTERM

    assert outcome.status == "sent"
    assert worker.process.returncode == 0
    log = worker.log_path.read_text(errors="replace")
    for leak in ("Unclosed client session", "Unclosed connector", "Unclosed connection"):
        assert leak not in log


@pytest.mark.usefixtures("topics", "notifier_env")
def test_when_the_app_reports_the_push_arrived_then_delivered_is_published_once(
    settings: Settings,
    producer: Producer,
    consumer_factory: Callable[..., Consumer],
    redis_client: redis.Redis,
    worker_factory: Callable[[str], Worker],
    line_server: ThreadedFake,
) -> None:
    worker = worker_factory(NOTIFIER)
    produce_customer(producer, settings, "c-1", app_opened("tok-1"), consent(True, Channel.PUSH))
    profile = f"{settings.namespace}:notifier:c:c-1"
    wait_until(lambda: redis_client.hget(profile, "consent:push:marketing") is not None)
    outcomes = consumer_factory(NOTIFICATIONS_OUTCOMES.name(settings.namespace))
    producer.produce(
        NOTIFICATIONS_REQUESTED.name(settings.namespace),
        key=b"c-1",
        value=encode(request("n-push-1", (Channel.PUSH,))),
    )
    assert producer.flush(10) == 0
    (sent,) = outcomes_of(consume(outcomes, 1))
    pushed = line_server.fake.seen[-1].body["message"]

    received = CustomTracked(
        event_id="e-receipt-1",
        occurred_at=datetime.now(UTC),
        received_at=datetime.now(UTC),
        source=Source.APP,
        identifiers=Identifiers(device_id="d-1"),
        payload=CustomTrackedPayload(
            name="Push Notification Received",
            properties={"notification_id": pushed["data"]["notification_id"]},
        ),
    )
    produce_customer(producer, settings, "c-1", received, received)  # the SDK sent it twice

    (delivered,) = outcomes_of(consume(outcomes, 1))
    time.sleep(2)  # anything more would be a second delivered
    assert outcomes.poll(1.0) is None
    assert (sent.status, sent.channel) == ("sent", Channel.PUSH)
    assert (delivered.status, delivered.notification_id) == ("delivered", "n-push-1")
    assert 'kizuna_notifier_outcomes_total{status="delivered"} 1.0' in worker.metrics()
