"""At the end of a recovery a worker's stream partitions are sought to their committed
offsets while still paused, and only then resumed: a fetch running under the seek had
lost a record for good (runtime.recovery; the restart fault test saw it)."""

from __future__ import annotations

import itertools
from typing import Any

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.types import TP

from runtime.app import create_app
from runtime.recovery import SeekFirstRecovery
from runtime.settings import load_settings

APPS = itertools.count()
EVENTS = TP("ns.customer.events", 0)


class Consumer:
    """What recovery asks of faust's consumer, recorded in order."""

    def __init__(self, changelog: TP) -> None:
        self.calls: list[Any] = []
        self.changelog = changelog

    def assignment(self) -> set[TP]:
        return {EVENTS, self.changelog}

    async def perform_seek(self) -> None:
        self.calls.append("seek")

    def resume_partitions(self, tps: set[TP]) -> None:
        self.calls.append(("resume", frozenset(tps)))

    def resume_flow(self) -> None:
        self.calls.append("flow")


@pytest.fixture
def app() -> faust.App:
    app = create_app(f"recovery_{next(APPS)}", load_settings())  # own Prometheus names
    table = app.Table("customers", partitions=1)  # registers itself with the table manager
    app.consumer_generation_id = 7
    consumer = Consumer(TP(table.changelog_topic.get_topic_name(), 0))

    class Fetcher:
        async def maybe_start(self) -> None:
            consumer.calls.append("fetcher")

    app._consumer = consumer  # type: ignore[attr-defined]
    app.__dict__["_fetcher"] = Fetcher()  # a cached property
    return app


def stream_partitions_sought_before_resumed(calls: list[Any]) -> bool:
    return calls[:2] == ["seek", ("resume", frozenset({EVENTS}))] and "fetcher" in calls


def test_when_the_tables_are_recovered_then_streams_are_sought_before_they_resume(
    app: faust.App,
) -> None:
    assert isinstance(app.tables.recovery, SeekFirstRecovery)


async def test_the_seek_comes_before_the_resume_after_a_table_recovery(app: faust.App) -> None:
    await app.tables.recovery.on_recovery_completed(generation_id=7)

    assert stream_partitions_sought_before_resumed(app.consumer.calls)  # type: ignore[attr-defined]
    assert app.tables.recovery.completed.is_set()


async def test_the_seek_comes_before_the_resume_for_a_worker_without_tables(
    app: faust.App,
) -> None:
    await app.tables.recovery._resume_streams(generation_id=7)

    assert stream_partitions_sought_before_resumed(app.consumer.calls)  # type: ignore[attr-defined]


async def test_when_the_generation_moved_on_then_nothing_is_resumed(app: faust.App) -> None:
    await app.tables.recovery.on_recovery_completed(generation_id=6)

    assert app.consumer.calls == []  # type: ignore[attr-defined]
    assert not app.tables.recovery.completed.is_set()


async def test_faust_itself_resumes_first(app: faust.App) -> None:
    """The upstream order this module exists for (drop it when faust seeks first)."""
    upstream = Recovery(app, app.tables)

    await upstream.on_recovery_completed(generation_id=7)

    assert not stream_partitions_sought_before_resumed(app.consumer.calls)  # type: ignore[attr-defined]
