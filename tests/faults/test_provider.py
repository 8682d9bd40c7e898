"""Given the notifier worker as a process and a LINE that is slow and failing — 500, 503,
429 with Retry-After, and pushes it accepts but answers only after the worker gave up
waiting — when a stream of notification requests arrives, then LINE accepts each one
exactly once (the retry after a timeout carries the same X-Line-Retry-Key and is
answered 409), none is lost, each has one "sent" outcome and nothing is dead-lettered.

The provider adapters' verdicts on each answer (tests/integration/notifier/
test_http_providers.py) and the retry schedule, Retry-After and retries running out
(test_delivery.py) are tested in-process; this is the same through the real worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from runtime.settings import Settings
from schemas.topics import DEADLETTER
from tests.faults.harness import (
    Processes,
    Requests,
    assert_each_notification_sent_once,
    line_followers,
    read_topic,
)
from tests.integration.conftest import redis_client, topics  # noqa: F401  (fixtures)
from tests.integration.notifier.fakes import FakeProvider, Seen, ThreadedFake

FAILURES = ("500", "hang", "429", "503") * 6  # fresh pushes get these first; then 200


class FaithfulLine(FakeProvider):
    """As LINE does: a push whose X-Line-Retry-Key was accepted before is answered 409,
    whatever the script says (the script plays on fresh pushes only)."""

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("X-Line-Retry-Key")
        if key is None or key not in self.accepted_keys:
            return await super().handle(request)
        self.seen.append(Seen(request.path, dict(request.headers), await request.json(), 409))
        return web.json_response({"message": "duplicate"}, status=409)


@pytest.fixture
def line() -> Iterator[ThreadedFake]:
    server = ThreadedFake(FaithfulLine(retry_after="1", hang_s=2.0))
    server.fake.script.extend(FAILURES)
    yield server
    server.close()


@pytest.fixture
def notifier(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: ThreadedFake
) -> Iterator[Processes]:
    for name, value in {
        "DRY_RUN": "false",
        "LINE_BASE_URL": line.url,
        "LINE_CHANNEL_TOKEN": "line-token",
        "SMTP_PORT": "1",
        "HTTP_TIMEOUT_S": "0.5",  # a hung push times out; LINE took it all the same
        "RETRY_BASE_S": "0.3",
        "RETRY_POLL_S": "0.2",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "MARKETING_CAP_PER_DAY": "0",  # many messages per customer, on purpose
    }.items():
        monkeypatch.setenv(f"KIZUNA_NOTIFIER_{name}", value)
    running = Processes(settings, tmp_path)
    running.start("services.notifier")
    yield running
    running.stop_all()


@pytest.mark.usefixtures("topics", "redis_client")
def test_when_line_is_slow_and_failing_then_each_notification_is_accepted_exactly_once(
    settings: Settings, notifier: Processes, line: ThreadedFake
) -> None:
    line_followers(settings)
    requests = Requests(settings)
    for n in range(20):
        requests.send(n)

    sent = assert_each_notification_sent_once(settings, requests, line, timeout=60)

    answered = [s.answered for s in line.fake.seen]
    assert answered.count(409) >= 1  # a timed-out push was retried and recognised
    never = read_topic(settings.kafka, DEADLETTER.name(settings.namespace), lambda _: False, 5)
    assert never == []  # nothing dead-lettered within 5 s
    print(f"\nflaky LINE: {sent}; answers {sorted(set(answered))}")
