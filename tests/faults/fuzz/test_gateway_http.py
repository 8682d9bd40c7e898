"""Hostile requests at a running gateway on the real broker: every one gets a 4xx or a
per-event rejection (never a 5xx), every rejected event is on the dead-letter topic, every
accepted one is on a raw topic, and the gateway still takes valid traffic afterwards."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from runtime.settings import Settings
from schemas.codec import decode
from schemas.topics import DEADLETTER, RAW_TOPICS
from services.gateway.domain.line_webhook import sign
from tests.hostile import SHIFT_JIS_BYTES, hostile_text, hostile_value, mutated, nested
from tests.integration.gateway.conftest import (
    LINE_SECRET,
    WEB_KEY,
    ClientFactory,
    basic,
    drain,
    events_of,
)

ORDER = {
    "type": "track",
    "event": "Order Completed",
    "userId": "M1",
    "timestamp": "2026-11-20T10:29:00+09:00",
    "properties": {
        "order_id": "o-1",
        "total": 2160,
        "products": [{"product_id": "tea-001", "name": "煎茶", "price": 1080, "quantity": 2}],
    },
}
BODIES = [
    b"",
    b"\xff\xfe\x00",
    SHIFT_JIS_BYTES,
    b"[" * 2_000 + b"]" * 2_000,
    b'{"batch": [' + b"[" * 1_000 + b"]" * 1_000 + b"]}",
    b'{"batch": "all of them"}',
    b'{"batch": {"0": {}}}',
    b'{"batch": [' + b"{}," * 3_000 + b"{}]}",
    gzip.compress(b"x" * 2_000_000),
]
serial = itertools.count()


def page(run: str) -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": f"{run}-{next(serial)}",
        "anonymousId": "anon-1",
        "properties": {"url": "https://shop.example.jp/"},
    }


def call_bytes(call: Any) -> bytes:
    try:
        return orjson.dumps(call)
    except orjson.JSONEncodeError:  # deeper than orjson writes: what a broken tool sends
        return b"[" * 900 + b"]" * 900


def with_fresh_id(call: Any) -> Any:
    if isinstance(call, dict) and call.get("messageId") == "hostile":
        return call | {"messageId": f"h-{next(serial)}"}
    return call


def raw_topics(settings: Settings) -> list[str]:
    return [spec.name(settings.namespace) for spec in RAW_TOPICS]


hostile_call = st.one_of(
    hostile_value,
    mutated(ORDER | {"messageId": "hostile"}),
    mutated(ORDER | {"messageId": "hostile"}, hostile_text),
)


async def test_when_hostile_batches_arrive_then_each_call_is_answered_and_nothing_is_lost(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    gateway_factory: ClientFactory,
) -> None:
    client = await gateway_factory(max_request_bytes=200_000)
    expected_ids: set[str] = set()
    rejected = 0
    statuses: list[int] = []

    @hypothesis_settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(hostile_call, min_size=1, max_size=4), st.integers(0, 2))
    def plan(hostile: list[Any], valid: int) -> None:
        plans.append((hostile, valid))

    plans: list[tuple[list[Any], int]] = []
    plan()
    for hostile, valid in plans:
        batch = [page("ok") for _ in range(valid)] + [with_fresh_id(call) for call in hostile]
        body = b'{"batch": [' + b",".join(call_bytes(call) for call in batch) + b"]}"
        response = await client.post("/v1/batch", data=body, headers=basic(WEB_KEY))
        report = await response.json()
        statuses.append(response.status)
        assert response.status in {200, 400}, report
        assert report["accepted"] + report["duplicates"] + len(report["rejected"]) == len(batch)
        refused = {r["index"] for r in report["rejected"]}
        assert not refused & set(range(valid)), report  # the valid pages always go through
        expected_ids |= {str(c["messageId"]) for i, c in enumerate(batch) if i not in refused}
        rejected += len(report["rejected"])
    for body in BODIES:
        response = await client.post(
            "/v1/batch",
            data=body,
            headers=basic(WEB_KEY)
            | ({"Content-Encoding": "gzip"} if body[:2] == b"\x1f\x8b" else {}),
        )
        statuses.append(response.status)
        answer = await response.json()
        assert 400 <= response.status < 500, answer
        assert answer.get("code") or answer["rejected"]
        rejected += len(answer.get("rejected", []))
    after = await client.post(
        "/v1/track",
        json=page("after") | {"type": "track", "event": "Coupon Applied"},
        headers=basic(WEB_KEY),
    )

    assert after.status == 200
    assert (await (await client.get("/health")).json())["status"] == "ok"
    assert rejected > 0
    assert 200 in statuses
    stored = events_of(drain(consumer_factory(*raw_topics(settings)), len(expected_ids) + 1))
    assert {e.event_id for e in stored} == expected_ids | {f"after-{next(serial) - 1}"}
    letters = drain(consumer_factory(DEADLETTER.name(settings.namespace)), rejected)
    decoded = [decode(DEADLETTER.adapter, m.value()) for m in letters]
    assert len(decoded) == rejected
    assert all(letter.reason and letter.error and letter.original for letter in decoded)


async def test_when_a_signed_line_webhook_holds_hostile_events_then_the_follow_still_arrives(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    gateway_factory: ClientFactory,
) -> None:
    client = await gateway_factory()
    follow = {
        "type": "follow",
        "timestamp": 1763634600000,
        "source": {"type": "user", "userId": "U4af4980629"},
        "webhookEventId": "01JGOOD",
    }
    hostile = [
        follow | {"webhookEventId": "01JFAR", "timestamp": 2**63 - 1},
        follow | {"webhookEventId": "01JZERO", "timestamp": 1},
        follow | {"webhookEventId": "01JNOUSER", "source": {"userId": "{{ 7*7 }} x"}},
        follow | {"webhookEventId": ["not", "an", "id"]},
        "not an event",
        follow | {"webhookEventId": "01JDEEP", "source": nested(200)},
    ]
    body = orjson.dumps({"destination": "U0", "events": [follow, *hostile]})

    response = await client.post(
        "/v1/line/webhook",
        data=body,
        headers={"x-line-signature": sign(LINE_SECRET.encode(), body)},
    )

    report = await response.json()
    assert response.status == 200, report
    assert report["accepted"] == 1
    assert [r["index"] for r in report["rejected"]] == [1, 2, 3, 4, 5, 6], report
    assert "timestamp: out of range" in report["rejected"][0]["error"]
    stored = events_of(drain(consumer_factory(*raw_topics(settings)), 1))
    assert [e.event_id for e in stored] == ["01JGOOD"]
    letters = drain(consumer_factory(DEADLETTER.name(settings.namespace)), 6)
    assert len(letters) == 6
