"""Given local LINE and FCM servers that check every request, when the providers send,
then headers, retry key and body are exactly right, and each answer maps to the right
verdict: retry on 5xx / 429 / timeout, never on other 4xx, 409 means already delivered;
LINE's 429 for the month's message quota is not retried (it cannot clear by retrying)."""

from __future__ import annotations

from collections import deque

import pytest

from schemas.channels import Channel
from services.notifier.adapters.fcm import FcmProvider
from services.notifier.adapters.http import HttpClient
from services.notifier.adapters.line import LinePushProvider, retry_key
from services.notifier.adapters.messages import LineContent, Outbound, PushContent
from services.notifier.adapters.oauth import StaticToken
from services.notifier.domain.retry import Verdict
from tests.integration.notifier.fakes import FakeProvider

USER = "U4af4980629a0c3c5d3c2ea8d5f1a6b7c"
LINE_MESSAGE = Outbound(
    "n-line-1",
    "c-1",
    Channel.LINE,
    USER,
    LineContent(({"type": "text", "text": "カートに商品が残っています"},)),
)
PUSH_MESSAGE = Outbound(
    "n-push-1",
    "c-1",
    Channel.PUSH,
    "device-token-1",
    PushContent("ご注文を承りました", "注文番号 A-1", "kizuna://orders/A-1"),
)


async def test_when_line_accepts_then_the_request_carries_token_retry_key_and_messages(
    fake: tuple[FakeProvider, str], http: HttpClient
) -> None:
    server, url = fake
    line = LinePushProvider(http, url, "line-secret", timeout_s=1.0)

    result = await line.send(LINE_MESSAGE)

    assert result.verdict is Verdict.ACCEPTED
    (seen,) = server.seen
    assert seen.path == "/v2/bot/message/push"
    assert seen.headers["Authorization"] == "Bearer line-secret"
    assert seen.headers["X-Line-Retry-Key"] == retry_key("n-line-1")
    assert seen.headers["Content-Type"].startswith("application/json")
    assert seen.body == {
        "to": USER,
        "messages": [{"type": "text", "text": "カートに商品が残っています"}],
    }


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("500", Verdict.RETRYABLE),
        ("503", Verdict.RETRYABLE),
        ("429", Verdict.RETRYABLE),
        ("429-quota", Verdict.PERMANENT),
        ("hang", Verdict.RETRYABLE),
        ("400", Verdict.PERMANENT),
        ("403", Verdict.PERMANENT),
        ("409", Verdict.DUPLICATE),
    ],
)
async def test_when_line_answers_then_only_5xx_rate_429_and_timeouts_are_retried(
    fake: tuple[FakeProvider, str], http: HttpClient, answer: str, verdict: Verdict
) -> None:
    server, url = fake
    server.script.append(answer)
    server.retry_after = "7"
    line = LinePushProvider(http, url, "t", timeout_s=0.5)

    result = await line.send(LINE_MESSAGE)

    assert result.verdict is verdict
    if answer == "429":
        assert result.retry_after_s == 7.0


async def test_when_line_sees_the_same_retry_key_twice_then_the_second_is_a_duplicate(
    fake: tuple[FakeProvider, str], http: HttpClient
) -> None:
    server, url = fake
    line = LinePushProvider(http, url, "t", timeout_s=1.0)

    first, second = await line.send(LINE_MESSAGE), await line.send(LINE_MESSAGE)

    assert (first.verdict, second.verdict) == (Verdict.ACCEPTED, Verdict.DUPLICATE)
    assert len(server.accepted()) == 1


async def test_when_fcm_accepts_then_the_v1_request_has_bearer_token_and_message(
    fake: tuple[FakeProvider, str], http: HttpClient
) -> None:
    server, url = fake
    fcm = FcmProvider(http, url, "shop-prod", StaticToken("oauth-abc"), timeout_s=1.0, ttl_s=600)

    result = await fcm.send(PUSH_MESSAGE)

    assert result.verdict is Verdict.ACCEPTED
    assert result.provider_message_id == "projects/p/messages/1"
    (seen,) = server.seen
    assert seen.path == "/v1/projects/shop-prod/messages:send"
    assert seen.headers["Authorization"] == "Bearer oauth-abc"
    message = seen.body["message"]
    assert message["token"] == "device-token-1"
    assert message["notification"] == {"title": "ご注文を承りました", "body": "注文番号 A-1"}
    assert message["data"] == {"notification_id": "n-push-1", "link": "kizuna://orders/A-1"}
    assert message["android"] == {"ttl": "600s"}


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("404-unregistered", Verdict.GONE),
        ("400", Verdict.PERMANENT),
        ("429", Verdict.RETRYABLE),
        ("500", Verdict.RETRYABLE),
        ("503", Verdict.RETRYABLE),
        ("hang", Verdict.RETRYABLE),
    ],
)
async def test_when_fcm_answers_then_unregistered_is_gone_and_quota_or_5xx_is_retried(
    fake: tuple[FakeProvider, str], http: HttpClient, answer: str, verdict: Verdict
) -> None:
    server, url = fake
    server.script = deque([answer])
    server.retry_after = "12"
    fcm = FcmProvider(http, url, "p", StaticToken("x"), timeout_s=0.5)

    result = await fcm.send(PUSH_MESSAGE)

    assert result.verdict is verdict
    if answer in ("429", "503"):
        assert result.retry_after_s == 12.0
