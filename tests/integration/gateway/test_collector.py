"""The HTTP collector on the real broker: what it acknowledges is on the raw topics exactly
once, what it refuses produces nothing, and invalid events land on the dead-letter topic."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import orjson
from confluent_kafka import Consumer

from runtime.settings import Settings
from schemas.codec import decode
from schemas.deadletter import DeadLetter
from schemas.topics import DEADLETTER, RAW_TOPICS
from tests.integration.gateway.conftest import (
    WEB_KEY,
    ClientFactory,
    basic,
    drain,
    events_of,
)


def page(n: int, run: str = "r") -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": f"{run}-{n}",
        "anonymousId": f"anon-{n}",
        "timestamp": "2026-11-20T10:00:00+09:00",
        "properties": {"url": f"https://shop.example.jp/p/{n}"},
    }


def raw_topics(settings: Settings) -> list[str]:
    return [spec.name(settings.namespace) for spec in RAW_TOPICS]


async def test_when_requests_are_refused_then_nothing_is_produced_and_the_valid_one_is(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    gateway_factory: ClientFactory,
) -> None:
    client = await gateway_factory(max_request_bytes=4096)
    body = orjson.dumps({"batch": [page(1)]})
    big = orjson.dumps({"batch": [page(n) for n in range(100)]})

    refusals = [
        await client.post("/v1/batch", data=body, headers=basic("wk_unknown")),
        await client.post("/v1/batch", data=body),
        await client.post("/v1/batch", data=b'{"batch": [', headers=basic(WEB_KEY)),
        await client.post("/v1/batch", data=big, headers=basic(WEB_KEY)),
        await client.post(
            "/v1/batch",
            data=gzip.compress(big),
            headers=basic(WEB_KEY) | {"Content-Encoding": "gzip"},
        ),
        await client.post("/v1/batch", data=b'{"batch": []}', headers=basic(WEB_KEY)),
    ]
    accepted = await client.post(
        "/v1/batch", data=gzip.compress(body), headers=basic(WEB_KEY) | {"Content-Encoding": "gzip"}
    )

    assert [(r.status, (await r.json())["code"]) for r in refusals] == [
        (401, "unauthorized"),
        (401, "unauthorized"),
        (400, "invalid_json"),
        (413, "request_too_large"),
        (413, "request_too_large"),
        (400, "empty_batch"),
    ]
    assert accepted.status == 200, await accepted.text()
    messages = drain(
        consumer_factory(*raw_topics(settings), DEADLETTER.name(settings.namespace)), 1
    )
    assert [e.event_id for e in events_of(messages)] == ["r-1"]


async def test_when_a_batch_mixes_valid_and_invalid_events_then_each_is_reported(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    gateway_factory: ClientFactory,
) -> None:
    client = await gateway_factory()
    bad_money = {
        "type": "track",
        "event": "Order Completed",
        "messageId": "bad-money",
        "userId": "M1",
        "properties": {"order_id": "o1", "total": 1980.5, "products": [{"id": "p", "price": 1980}]},
    }
    naive = page(3) | {"timestamp": "2026-11-20T10:00:00"}
    batch = [page(1), bad_money, page(2), naive, {"type": "fly", "messageId": "x"}]

    response = await client.post("/v1/batch", json={"batch": batch}, headers=basic(WEB_KEY))

    report = await response.json()
    assert response.status == 200
    assert (report["accepted"], report["duplicates"]) == (2, 0)
    assert [(r["index"], r["reason"]) for r in report["rejected"]] == [
        (1, "invalid"),
        (3, "invalid"),
        (4, "unknown_type"),
    ]
    assert "properties.total: must be whole yen" in report["rejected"][0]["error"]
    assert "timestamp" in report["rejected"][1]["error"]
    accepted = events_of(drain(consumer_factory(*raw_topics(settings)), 2))
    assert sorted(e.event_id for e in accepted) == ["r-1", "r-2"]
    letters = [
        decode(DEADLETTER.adapter, m.value())
        for m in drain(consumer_factory(DEADLETTER.name(settings.namespace)), 3)
    ]
    assert all(isinstance(letter, DeadLetter) for letter in letters)
    assert sorted(orjson.loads(letter.original).get("messageId") for letter in letters) == [
        "bad-money",
        "r-3",
        "x",
    ]


async def test_when_a_message_id_is_sent_again_then_it_succeeds_and_is_stored_once(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    gateway_factory: ClientFactory,
) -> None:
    client = await gateway_factory()
    first = await client.post(
        "/v1/track",
        json=page(1) | {"type": "track", "event": "Coupon Applied"},
        headers=basic(WEB_KEY),
    )
    batch = {"batch": [page(1) | {"type": "track", "event": "Coupon Applied"}, page(2), page(2)]}
    second = await client.post("/v1/batch", json=batch, headers=basic(WEB_KEY))

    assert first.status == 200
    assert (await second.json())["accepted"] == 1
    assert (await second.json())["duplicates"] == 2
    events = events_of(drain(consumer_factory(*raw_topics(settings)), 2))
    assert sorted(e.event_id for e in events) == ["r-1", "r-2"]


async def test_when_kafka_is_down_then_503_and_the_retry_arrives_exactly_once(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    gateway_factory: ClientFactory,
) -> None:
    batch = {"batch": [page(n) for n in range(20)]}
    down = await gateway_factory(kafka="127.0.0.1:9", request_timeout_s=1.5)
    healthy = await gateway_factory()

    refused = await down.post("/v1/batch", json=batch, headers=basic(WEB_KEY))
    some = await healthy.post(
        "/v1/batch", json={"batch": batch["batch"][:5]}, headers=basic(WEB_KEY)
    )
    retried = await healthy.post("/v1/batch", json=batch, headers=basic(WEB_KEY))

    assert refused.status == 503
    assert (await refused.json())["code"] == "unavailable"
    assert some.status == 200
    assert (await retried.json()) | {"rejected": []} == {
        "success": True,
        "accepted": 15,
        "duplicates": 5,
        "rejected": [],
    }
    events = events_of(drain(consumer_factory(*raw_topics(settings)), 20))
    assert sorted(e.event_id for e in events) == sorted(f"r-{n}" for n in range(20))
    health = await (await down.get("/health")).json()
    assert health["status"] == "ok"
