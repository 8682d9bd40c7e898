"""A scripted day of four customers through the whole pipeline on real Kafka + Redis:
the web shop's Segment SDK through the real gateway, the stores' POS export through the
gateway's CSV import, the CRM writing consents and card registrations straight to Kafka;
identity, segmenter, journey and notifier (dry-run delivery) as real processes.

- Dave leaves a cart: he gets the three reminders.
- Alice leaves a cart and pays for it at a store with her member card: no reminder.
- Bob, a store regular, buys online for the first time: no first-purchase (F2) coupon.
- Carol opted out of email: she gets nothing marketing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from segment.analytics import Client  # type: ignore[import-untyped]

from runtime.settings import Settings
from schemas.channels import Channel, Purpose
from schemas.codec import decode, encode
from schemas.events import ConsentGranted, ConsentRevoked, EventEnvelope, Identified, PageViewed
from schemas.identifiers import Identifiers
from schemas.notifications import NotificationOutcome
from schemas.payloads import ConsentPayload, PageViewedPayload
from schemas.topics import NOTIFICATIONS_OUTCOMES, raw_topic_for
from services.journey.domain.policy import in_holdout
from services.journey.settings import JourneySettings
from tests.integration.conftest import ROOT, Worker, wait_for_metric

WEB_KEY = "e2e-web-key"
DAY, HOUR, MINUTE = 86_400.0, 3600.0, 60.0
BASE = datetime(2030, 6, 3, 0, 0, tzinfo=UTC).timestamp()  # Monday 09:00 in Tokyo
DELIVERED = {"sent", "delivered"}

pytestmark = pytest.mark.usefixtures("topics", "redis_client")


def at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def upstream(producer: Producer, settings: Settings, *events: EventEnvelope) -> None:
    """The CRM and the app back end write raw events straight to Kafka."""
    for event in events:
        topic = raw_topic_for(event.type).name(settings.namespace)  # type: ignore[attr-defined]
        producer.produce(topic, key=event.identifiers.routing_key(), value=encode(event))
    assert producer.flush(10) == 0


def envelope(event_id: str, t: float, **ids: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": at(t),
        "received_at": at(t),
        "source": "crm",
        "identifiers": Identifiers(**ids),
    }


def consent(member: str, t: float, granted: bool = True) -> EventEnvelope:
    payload = ConsentPayload(
        channel=Channel.EMAIL, purpose=Purpose.MARKETING, method="web_form", shown_text="メルマガ"
    )
    kind = ConsentGranted if granted else ConsentRevoked
    return kind(**envelope(f"consent-{member}-{granted}", t, member_id=member), payload=payload)


def card_registered(member: str, card: str, email: str, t: float) -> Identified:
    ids = {"member_id": member, "pos_card": card, "email": email}
    return Identified(**envelope(f"card-{member}", t, **ids))


def heartbeat(producer: Producer, settings: Settings, t: float) -> None:
    """Some visitor's page view at ``t``: the shop's clock (event time) moves there."""
    page = PageViewed(
        **envelope(f"hb-{t}", t, anonymous_id="e2e-heartbeat"),
        payload=PageViewedPayload(url="https://shop.example.jp/"),
    )
    upstream(producer, settings, page)


def pos_import(settings: Settings, csv: Path) -> None:
    env = {"KIZUNA_KAFKA": settings.kafka, "KIZUNA_NAMESPACE": settings.namespace}
    command = [sys.executable, "-m", "services.gateway.pos_import", str(csv)]
    subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, check=True, timeout=60)


def receipts_csv(path: Path, rows: list[tuple[str, str, float, str, int]]) -> Path:
    lines = ["store_id,receipt_id,purchased_at,member_card,product_id,name,quantity,unit_price"]
    for store, receipt, t, card, price in rows:
        lines.append(f"{store},{receipt},{at(t).isoformat()},{card},tea-9,玉露,1,{price}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def lookup(identity: Worker, identifier: str) -> str:
    query = urllib.parse.urlencode({"identifier": identifier})
    url = f"http://127.0.0.1:{identity.port}/customers/lookup?{query}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(json.loads(response.read())["customer_id"])


def skipped(journey: Worker, customer_id: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{journey.port}/customers/{customer_id}/journeys/why"
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(json.loads(response.read())["skipped"])


def outcomes_until(
    consumer: Consumer, done: Callable[[list[NotificationOutcome]], bool], timeout: float
) -> list[NotificationOutcome]:
    got: list[NotificationOutcome] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done(got):
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            got.append(decode(NOTIFICATIONS_OUTCOMES.adapter, message.value() or b""))
    return got


def test_a_day_at_the_shop(
    settings: Settings,
    producer: Producer,
    worker_factory: Callable[[str], Worker],
    consumer_factory: Callable[..., Consumer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name, value in {
        "KIZUNA_GATEWAY_WRITE_KEYS": json.dumps({WEB_KEY: "web"}),
        "KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS": str(20 * 365 * DAY),
        "KIZUNA_JOURNEY_GLOBAL_HOLDOUT": "0",
        "KIZUNA_JOURNEY_TICK_INTERVAL_SECONDS": "0.1",
        "KIZUNA_NOTIFIER_OUTBOX_DIR": str(tmp_path / "outbox"),
    }.items():
        monkeypatch.setenv(name, value)
    gateway = worker_factory("services.gateway")
    identity = worker_factory("services.identity")
    worker_factory("services.segmenter")
    journey = worker_factory("services.journey")
    worker_factory("services.notifier")
    outcomes = consumer_factory(NOTIFICATIONS_OUTCOMES.name(settings.namespace))

    # the CRM: member cards registered, e-mail consents (Carol withdrew hers)
    people = {"alice": "M-ALICE-7", "bob": "M-BOB-7", "carol": "M-CAROL-7", "dave": "M-DAVE-7"}
    upstream(
        producer,
        settings,
        *(
            card_registered(m, f"CARD-{m}", f"{n}@example.jp", BASE - 400 * DAY)
            for n, m in people.items()
        ),
        *(consent(m, BASE - 300 * DAY) for m in people.values()),
        consent(people["carol"], BASE - 2 * DAY, granted=False),
    )
    # Bob has been a store regular for a year
    history = [
        ("S01", f"r-bob-{n}", BASE - (300 - 60 * n) * DAY, f"CARD-{people['bob']}", 3_000)
        for n in range(4)
    ]
    pos_import(settings, receipts_csv(tmp_path / "history.csv", history))

    # the web shop's SDK, through the gateway: carts, and Bob's first online order
    sdk = Client(WEB_KEY, host=f"http://127.0.0.1:{gateway.port}", max_retries=2)
    for name in ("alice", "carol", "dave"):
        member = people[name]
        sdk.identify(
            member,
            {"email": f"{name}@example.jp"},
            anonymous_id=f"cookie-{name}",
            timestamp=at(BASE),
        )
        product = {"product_id": "tea-9", "name": "玉露", "price": 4_200, "quantity": 1}
        sdk.track(
            member,
            "Product Added",
            {**product, "cart_id": f"cart-{name}"},
            timestamp=at(BASE + MINUTE),
        )
    order = {
        "order_id": "o-bob-1",
        "total": 4_200,
        "products": [{"product_id": "tea-9", "price": 4_200, "quantity": 1}],
    }
    sdk.track(people["bob"], "Order Completed", order, timestamp=at(BASE + 2 * MINUTE))
    sdk.flush()
    sdk.join()
    # Alice pays for her cart at the Shibuya store, showing her member card
    pos_import(
        settings,
        receipts_csv(
            tmp_path / "today.csv",
            [("S01", "r-alice-1", BASE + 20 * MINUTE, f"CARD-{people['alice']}", 4_200)],
        ),
    )
    # identity stitches the 21 events so far and the journeys take them in before the
    # clock moves (a store receipt taken in after the reminder was due would come too late)
    wait_for_metric(journey, "kizuna_journey_events_total", 21)

    ids = {name: lookup(identity, f"member_id:{member}") for name, member in people.items()}
    policy = JourneySettings().policy()
    assert not in_holdout(policy, ids["dave"], "cart_abandonment", 0.05), "pick another name"

    # each reminder must go out before the clock jumps on: one that is a day late has
    # expired and is skipped (Dave is the only one with a cart left and a channel)
    for reminder, later in enumerate((HOUR + MINUTE, DAY + MINUTE, 3 * DAY + MINUTE), 1):
        heartbeat(producer, settings, BASE + later)
        wait_for_metric(
            journey,
            "kizuna_journey_notifications_requested_total",
            reminder,
            journey="cart_abandonment",
        )
    heartbeat(producer, settings, BASE + 15 * DAY)
    time.sleep(4)  # the later journeys' sends (nothing waits on them here)

    def dave_has_three(got: list[NotificationOutcome]) -> bool:
        carts = [
            o for o in got if o.customer_id == ids["dave"] and o.journey_id == "cart_abandonment"
        ]
        return len([o for o in carts if o.status in DELIVERED]) >= 3

    got = outcomes_until(outcomes, dave_has_three, timeout=90)
    got += outcomes_until(outcomes, lambda _: False, timeout=5)  # anything else that follows

    def delivered(name: str, journey: str) -> list[NotificationOutcome]:
        return [
            o
            for o in got
            if o.customer_id == ids[name] and o.journey_id == journey and o.status in DELIVERED
        ]

    assert len(delivered("dave", "cart_abandonment")) == 3
    assert delivered("alice", "cart_abandonment") == []  # the store purchase ended it
    assert delivered("bob", "f2_nudge") == []  # a regular is not a first-time buyer
    marketing = {"cart_abandonment", "browse_abandonment", "f2_nudge", "dormant_reactivation"}
    assert [
        o
        for o in got
        if o.customer_id == ids["carol"] and o.journey_id in marketing and o.status in DELIVERED
    ] == []
    # ... and not because their events got lost: the same events did their other work
    assert delivered("alice", "post_purchase")  # her store receipt's thank-you
    assert delivered("bob", "post_purchase")  # his online order's confirmation
    reasons = {r["reason"] for r in skipped(journey, ids["carol"])}
    assert "no_consent" in reasons  # Carol's cart journey ran, and held its messages
    written = list((tmp_path / "outbox").rglob("*"))
    assert any(f.is_file() for f in written)  # the dry-run messages are readable files
