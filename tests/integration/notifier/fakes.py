"""Local stand-ins for the LINE Messaging API and FCM HTTP v1: real HTTP servers that
record every request exactly and answer what the test scripts (200, 409, 429, 500, or
hang). LINE mode remembers retry keys and answers 409 to a repeated one, as LINE does."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any
    answered: int


@dataclass
class FakeProvider:
    """``script`` holds answers for the next requests ("200", "409", "429", "429-quota",
    "500", "503", "404-unregistered", "400", "hang"); when empty, answer 200 (or 409 for a repeated
    LINE retry key)."""

    script: deque[str] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    retry_after: str | None = None
    hang_s: float = 30.0
    accepted_keys: set[str] = field(default_factory=set)
    arrived: asyncio.Event | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        answer = self.script.popleft() if self.script else "auto"
        key = request.headers.get("X-Line-Retry-Key")
        if answer == "auto":
            answer = "409" if key and key in self.accepted_keys else "200"
        status = int(answer.split("-")[0]) if answer != "hang" else 200
        self.seen.append(Seen(request.path, dict(request.headers), body, status))
        if key and status == 200:
            self.accepted_keys.add(key)
        if answer == "hang":
            await asyncio.sleep(self.hang_s)
        return self._response(answer, status)

    def _response(self, answer: str, status: int) -> web.Response:
        headers = {"x-line-request-id": f"req-{len(self.seen)}"}
        if status in (429, 503) and self.retry_after:
            headers["Retry-After"] = self.retry_after
        if answer == "404-unregistered":
            error = {
                "error": {
                    "code": 404,
                    "status": "NOT_FOUND",
                    "details": [{"errorCode": "UNREGISTERED"}],
                }
            }
            return web.json_response(error, status=404, headers=headers)
        if status == 200:
            return web.json_response(
                {"name": f"projects/p/messages/{len(self.seen)}"}, headers=headers
            )
        if answer == "429-quota":  # LINE's answer once the month's messages are used up
            body = {"message": "You have reached your monthly limit."}
            return web.json_response(body, status=429, headers=headers)
        if answer == "429":  # LINE's wording for its rate limit
            body = {"message": "The API rate limit has been exceeded. Try again later."}
            return web.json_response(body, status=429, headers=headers)
        return web.json_response({"message": answer}, status=status, headers=headers)

    def accepted(self) -> list[Seen]:
        return [s for s in self.seen if s.answered == 200]


def make_app(fake: FakeProvider) -> web.Application:
    app = web.Application()
    app.router.add_post("/v2/bot/message/push", fake.handle)
    app.router.add_post("/v1/projects/{project}/messages:send", fake.handle)
    return app


async def start(fake: FakeProvider, port: int = 0) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(fake), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    sockets = site._server.sockets  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{sockets[0].getsockname()[1]}"


class ThreadedFake:
    """The fake on its own event loop in a thread (for workers running as processes)."""

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.runner, self.url = asyncio.run_coroutine_threadsafe(start(fake), self.loop).result(10)

    def close(self) -> None:
        self.fake.hang_s = 0
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()
