"""The faust app factory: one place that turns Settings into a configured worker."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any, cast

import faust
import mode.loop
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.web import Request, Response, View

from runtime.consumer import assigned_partitions, settled
from runtime.logging import configure_logging
from runtime.monitor import CachedPrometheusMonitor
from runtime.recovery import SeekFirstTableManager
from runtime.settings import Settings
from runtime.transport import RewindingTransport

FETCH_BYTES_PER_PARTITION = 8 * 1024 * 1024
STREAM_BUFFER_RECORDS = 32_768


class App(faust.App):
    """faust's App on the rewinding transport (see :mod:`runtime.transport`); its table
    manager seeks the stream partitions before resuming them (:mod:`runtime.recovery`)."""

    def _new_transport(self) -> Any:
        return RewindingTransport(self.conf.broker_consumer, self)


def broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap.split(","))


def create_app(
    service: str, settings: Settings, *, group: str | None = None, **overrides: Any
) -> faust.App:
    """A faust app named ``<namespace>-<service>`` with Prometheus and /health wired in.

    Agents run with concurrency 1 (faust-streaming#606: concurrency > 1 can commit an
    offset past a message still being processed); scale out with partitions instead.
    """
    app_id = f"{settings.namespace}-{group or service}"  # also the consumer group
    datadir = Path(settings.data_dir) / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "broker": broker_url(settings.kafka),
        "store": settings.store,
        "datadir": str(datadir),
        "web_host": settings.web_host,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "topic_partitions": settings.partitions or 8,
        "topic_replication_factor": 1,
        "topic_allow_declare": True,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "autodiscover": False,
        "table_cleanup_interval": 30.0,
        "broker_session_timeout": settings.session_timeout_seconds,
        # faust's defaults (1 MiB per partition fetch, 4,096 records per stream buffer)
        # stall a busy worker: the buffer fills, faust pauses the partition, the fetcher
        # waits for it to drain. Bigger fetches and buffers keep records flowing (a bare
        # agent: ~2.2k -> ~4.3k records/s). Memory: at most one fetch per partition.
        "consumer_max_fetch_size": FETCH_BYTES_PER_PARTITION,
        "stream_buffer_maxsize": STREAM_BUFFER_RECORDS,
        "TableManager": SeekFirstTableManager,  # seek before resuming (runtime.recovery)
        **overrides,
    }
    app = App(app_id, **options)
    setup_prometheus_sensors(app, name_prefix=f"kizuna_faust_{service}")
    app.monitor = CachedPrometheusMonitor(metrics=app.monitor._metrics)  # type: ignore[attr-defined]
    _add_health(app, service)
    return app


def _add_health(app: faust.App, service: str) -> None:
    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            assigned = sorted(
                [f"{tp.topic}:{tp.partition}" for tp in app.assignor.assigned_actives()]
                + assigned_partitions()  # batch consumers outside faust (runtime.consumer)
            )
            status = _status(app)
            body = {
                "service": service,
                "event_loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
                "gc_thresholds": gc.get_threshold(),
                "status": status,
                "assigned": assigned,
            }
            return self.json(body, status=200 if status == "ok" else 503)


def _status(app: faust.App) -> str:
    """``joining`` until the worker's faust agents (if it has any) are in their group and
    their streams run (recovery completed), ``rebalancing`` while a rebalance is on or a
    batch consumer is still getting its share, else ``ok``. Before its first assignment
    faust reports no rebalance at all, so without the first check a worker whose join
    waits for a killed predecessor's session to expire looked ready."""
    tables = cast(SeekFirstTableManager, app.tables)  # create_app's TableManager
    if app.agents and not tables.recovery.completed.is_set():
        return "joining"
    return "rebalancing" if app.rebalancing or not settled() else "ok"


FAST_GC = (50_000, 20, 100)
"""Collect cyclic garbage every 50,000 net allocations (CPython: 700): identity resolves
~1.55x, the segmenter ~1.3x as many events per second."""
IDENTITY_GC = (1_000_000, 20, 100)
"""identity's: every 1,000,000 net allocations. Its caches (parsed customers, link ids)
grow by a few objects an event, so with FAST_GC a young collection came every few batches
and an older one every ~20 of those, walking the grown caches again each time: ~10 % of
the worker's samples (py-spy, 2026-12-06), in whatever line of a batch's commit crossed
the threshold. A batch in flight holds ~16k net allocations, far below either."""
CPYTHON_GC = (700, 10, 10)
"""CPython's thresholds: the journey keeps them. Collected rarely, the garbage of a due
index rebuild fragments the heap around the index: 1M pending timers took ~300 B of RSS
each instead of ~267 (its target is 300). (It once gained ~15 % more events per second
with FAST_GC; on 2026-12-05, after its decoding and reports changed, no longer: 3
alternating pairs within noise.)"""


def run_worker(
    app: faust.App, settings: Settings, service: str, gc_thresholds: tuple[int, int, int] = FAST_GC
) -> None:
    """Start the worker in the foreground; SIGTERM/SIGINT stop it cleanly."""
    configure_logging(service, settings.log_level, settings.log_format)
    if settings.event_loop == "uvloop":
        mode.loop.use("uvloop")  # before the worker makes its loop
    tune_gc(settings.gc_thresholds or gc_thresholds)
    if settings.profile_path:
        _profile_until_exit(settings.profile_path)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, override_logging=False)
    worker.execute_from_commandline()


def tune_gc(thresholds: tuple[int, int, int]) -> None:
    """Collect cyclic garbage less often, and never walk what start-up made again.

    The workers allocate many short-lived objects per event (models, dataclasses,
    tuples), so with CPython's thresholds the young generations are collected every few
    events, and the old one keeps walking the caches, indexes and imported modules that
    live as long as the process. Everything alive once the app is built (modules,
    schemas, the app) is moved out of the collector's sight by ``gc.freeze``; cycles
    made later are still collected, only in larger batches.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def _profile_until_exit(path: str) -> None:
    import atexit
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()

    def dump() -> None:
        profiler.disable()
        profiler.dump_stats(path)

    atexit.register(dump)
