"""The gateway aiohttp app: routes and the lifecycle of Kafka sink and Redis (wiring only)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from runtime.logging import configure_logging
from runtime.redis import create_redis
from runtime.settings import Settings
from services.gateway.adapters.dedupe import LineNonces, RedisSeen
from services.gateway.adapters.kafka_sink import KafkaSink
from services.gateway.handlers import Collector
from services.gateway.http_edge import CORS, json_response
from services.gateway.ingest import Ingest, utcnow
from services.gateway.metrics import REQUEST_SECONDS, REQUESTS
from services.gateway.settings import GatewaySettings

SEGMENT_CALLS = ("track", "identify", "page", "screen", "alias", "group")
_SINK = web.AppKey("sink", KafkaSink)
_REDIS = web.AppKey("redis", aioredis.Redis)

HandlerFn = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_gateway(
    settings: Settings,
    gateway: GatewaySettings,
    *,
    sink: KafkaSink | None = None,
    redis: aioredis.Redis | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> web.Application:
    """The gateway app; ``sink``/``redis`` default to clients made from settings at startup."""
    app = web.Application(client_max_size=gateway.max_request_bytes, middlewares=[_observe])
    app[_SINK] = sink or KafkaSink(settings.kafka, gateway.request_timeout_s)
    app[_REDIS] = redis or create_redis(settings)
    seen = RedisSeen(app[_REDIS], settings.namespace, gateway.dedupe_ttl_s)
    nonces = LineNonces(app[_REDIS], settings.namespace, gateway.line_nonce_ttl_s)
    ingest = Ingest(app[_SINK], seen, settings.namespace, clock=clock)
    collector = Collector(gateway, ingest, nonces, clock)
    for path in ("/v1/batch", "/v1/import"):
        app.router.add_post(path, collector.segment(None))
    for call in SEGMENT_CALLS:
        app.router.add_post(f"/v1/{call}", collector.segment(call))
    app.router.add_post("/v1/line/webhook", collector.line)
    app.router.add_post("/v1/line/link-nonce", collector.link_nonce)
    app.router.add_route("OPTIONS", "/v1/{tail:.*}", _preflight)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    if sink is None or redis is None:
        app.cleanup_ctx.append(_closing(close_sink=sink is None, close_redis=redis is None))
    return app


def _closing(
    *, close_sink: bool, close_redis: bool
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        if close_sink:
            app[_SINK].close()
        if close_redis:
            await app[_REDIS].aclose()

    return lifecycle


@web.middleware
async def _observe(request: web.Request, handler: HandlerFn) -> web.StreamResponse:
    started = time.perf_counter()
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    response = await handler(request)
    REQUESTS.labels(route, str(response.status)).inc()
    REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
    return response


async def _preflight(request: web.Request) -> web.Response:
    headers = {
        **CORS,
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
        "Access-Control-Max-Age": "86400",
    }
    return web.Response(status=204, headers=headers)


async def _health(request: web.Request) -> web.Response:
    reachable = request.app[_SINK].reachable
    body = {"service": "gateway", "status": "ok", "kafka": "ok" if reachable else "unreachable"}
    return json_response(body)


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def serve(settings: Settings, gateway: GatewaySettings, port: int) -> None:
    """Run one gateway process in the foreground until SIGTERM/SIGINT."""
    configure_logging("gateway", settings.log_level, settings.log_format)
    web.run_app(
        create_gateway(settings, gateway),
        host=settings.web_host,
        port=port,
        reuse_port=gateway.processes > 1,
        access_log=None,
        print=None,
    )
