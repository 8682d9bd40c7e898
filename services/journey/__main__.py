"""``python -m services.journey``: the journey worker (web port 6068 in compose)."""

from __future__ import annotations

import asyncio
import sys

from runtime.app import CPYTHON_GC, run_worker
from runtime.kafka import create_admin
from runtime.redis import create_redis
from runtime.settings import Settings, load_settings
from runtime.topics import changelog_spec, ensure_topics
from schemas.topics import CUSTOMER_EVENTS
from services.journey.adapters.scenarios import ScenarioError
from services.journey.app import SERVICE, TABLE, build, load_context
from services.journey.domain.catalogue import Context
from services.journey.messages import control_spec
from services.journey.settings import JourneySettings, load_journey_settings


def main() -> None:
    settings, journey = load_settings(), load_journey_settings()
    partitions = settings.partitions or CUSTOMER_EVENTS.partitions
    try:
        ctx = asyncio.run(_context(settings, journey))
    except ScenarioError as err:
        sys.exit(f"journey: {err}")
    ensure_topics(
        create_admin(settings.kafka),
        settings.namespace,
        specs=[control_spec(partitions), changelog_spec(SERVICE, TABLE, partitions)],
    )
    app, _ = build(settings, journey, ctx)
    run_worker(app, settings, SERVICE, gc_thresholds=CPYTHON_GC)  # memory per timer


async def _context(settings: Settings, journey: JourneySettings) -> Context:
    redis = create_redis(settings)
    try:
        return await load_context(settings, journey, redis)
    finally:
        await redis.aclose()


if __name__ == "__main__":
    main()
