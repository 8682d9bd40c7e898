"""Gateway fixtures: the aiohttp app in-process against the real Kafka + Redis."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import Consumer

from runtime.settings import Settings
from schemas.codec import decode
from schemas.events import RAW_EVENT_ADAPTER
from services.gateway.app import create_gateway
from services.gateway.settings import GatewaySettings

WEB_KEY = "wk_web_test"
APP_KEY = "wk_app_test"
LINE_SECRET = "line-channel-secret"
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def gateway_settings(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "write_keys": {WEB_KEY: "web", APP_KEY: "app"},
        "line_channel_secret": LINE_SECRET,
        "line_provider": "shop",
        "request_timeout_s": 3.0,
    }
    return GatewaySettings(**(values | overrides))


@pytest.fixture
async def gateway_factory(settings: Settings) -> AsyncIterator[ClientFactory]:
    """``await gateway_factory(kafka=..., **gateway overrides)`` -> a client of a fresh app."""
    clients: list[TestClient[Any, Any]] = []

    async def make(kafka: str | None = None, **overrides: Any) -> TestClient[Any, Any]:
        app_settings = settings.model_copy(update={"kafka": kafka or settings.kafka})
        app = create_gateway(app_settings, gateway_settings(**overrides))
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def drain(
    consumer: Consumer, expected: int, timeout: float = 20.0, settle: float = 2.0
) -> list[Any]:
    """Every message that arrives: at least ``expected`` within ``timeout``, then ``settle``
    more seconds to catch any extra (a duplicate or something that should not be there)."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    quiet_until: float | None = None
    while True:
        now = time.monotonic()
        if len(got) >= expected and quiet_until is None:
            quiet_until = now + settle
        if (quiet_until is not None and now > quiet_until) or now > deadline:
            break
        message = consumer.poll(0.2)
        if message is None:
            continue
        assert not message.error(), message.error()
        got.append(message)
    return got


def events_of(messages: list[Any]) -> list[Any]:
    return [decode(RAW_EVENT_ADAPTER, message.value()) for message in messages]
