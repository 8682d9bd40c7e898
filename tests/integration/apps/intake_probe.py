"""A minimal faust worker over every raw topic: valid events are recorded in Redis,
invalid ones dead-lettered by runtime.intake.
Run as ``python -m tests.integration.apps.intake_probe``.
"""

from __future__ import annotations

from typing import Any

from runtime.app import create_app, run_worker
from runtime.deadletter import FaustDeadLetters
from runtime.intake import decoded
from runtime.redis import create_redis
from runtime.settings import load_settings
from schemas.events import RAW_EVENT_ADAPTER
from schemas.topics import RAW_TOPICS

SERVICE = "intake-probe"
settings = load_settings()
app = create_app(SERVICE, settings)
raw_topics = app.topic(
    *(spec.name(settings.namespace) for spec in RAW_TOPICS),
    key_serializer="raw",
    value_serializer="raw",
)
dead_letters = FaustDeadLetters(app, settings.namespace)


@app.agent(raw_topics)
async def intake(stream: Any) -> None:
    redis = create_redis(settings)
    async for received in decoded(
        stream,
        RAW_EVENT_ADAPTER,
        dead_letters,
        service=SERVICE,
        max_bytes=settings.max_message_bytes,
    ):
        await redis.rpush(f"{settings.namespace}:seen", received.value.event_id)


if __name__ == "__main__":
    run_worker(app, settings, SERVICE)
