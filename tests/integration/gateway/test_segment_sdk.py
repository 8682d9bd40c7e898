"""A client no one here wrote: segment-analytics-python, pointed at the gateway process
(``python -m services.gateway``) by changing only the host, sends identify / track / page /
alias; the events arrive on the raw topics mapped to kizuna."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer
from segment.analytics import Client  # type: ignore[import-untyped]

from runtime.settings import Settings
from schemas.events import Identified, OrderCompleted, PageViewed, ProductViewed, Source
from schemas.topics import RAW_TOPICS
from tests.integration.conftest import Worker
from tests.integration.gateway.conftest import APP_KEY, drain, events_of


def test_when_the_segment_sdk_sends_calls_then_raw_topics_hold_kizuna_events(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    worker_factory: Callable[[str], Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIZUNA_GATEWAY_WRITE_KEYS", f'{{"{APP_KEY}": "app"}}')
    worker = worker_factory("services.gateway")
    errors: list[Exception] = []
    sdk = Client(
        APP_KEY,
        host=f"http://127.0.0.1:{worker.port}",
        gzip=True,
        on_error=lambda error, _batch: errors.append(error),
        max_retries=2,
    )
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

    sdk.identify("M100", {"email": "hanako@example.jp", "name": "山田 花子"}, anonymous_id="a-1")
    sdk.page("M100", name="トップ", properties={"url": "https://shop.example.jp/"}, timestamp=at)
    sdk.track("M100", "Product Viewed", {"product_id": "tea-001", "price": 1080})
    sdk.track(
        "M100",
        "Order Completed",
        {
            "order_id": "o-9",
            "total": 2160.0,
            "products": [{"product_id": "tea-001", "price": 1080, "quantity": 2}],
        },
    )
    sdk.alias("a-1", "M100")
    sdk.flush()
    sdk.join()

    assert errors == []
    events = events_of(
        drain(consumer_factory(*(s.name(settings.namespace) for s in RAW_TOPICS)), 5)
    )
    by_type = {event.type: event for event in events if event.type != "identified"}
    identified = [event for event in events if isinstance(event, Identified)]
    assert len(events) == 5
    assert all(event.source is Source.APP for event in events)
    assert {e.identifiers.email for e in identified} == {"hanako@example.jp", None}
    assert {e.identifiers.anonymous_id for e in identified} == {"a-1"}
    assert all(e.identifiers.member_id == "M100" for e in events)
    assert isinstance(by_type["page_viewed"], PageViewed)
    assert by_type["page_viewed"].occurred_at == at
    assert isinstance(by_type["product_viewed"], ProductViewed)
    order = by_type["order_completed"]
    assert isinstance(order, OrderCompleted)
    assert order.payload.money.total == 2160
    assert "library" in (order.context.model_extra or {})
    assert 'kizuna_gateway_events_accepted_total{source="app"} 5.0' in worker.metrics()
