"""End to end on the real local stack: gateway -> identity -> segmenter + journey +
notifier, one process each, in a fresh namespace; the notifier delivers for real to a
local fake FCM / LINE server that this bench runs.

    python bench/e2e.py [--events 20000] [--samples 40] [--background 300]

1. Throughput: ``--events`` Segment calls (bench/gateway.py's web mix) posted to the
   gateway's /v1/batch as fast as it takes them. Events/s from the first post until
   segmenter, journey and the notifier's consent ledger have each consumed every
   customer event identity produced from them (their own counters).
2. Latency under load: while ``--background`` events/s of the same web traffic go
   through the gateway, ``--samples`` fresh app users each consent to marketing push,
   open the app with a push token, then report two locations inside the Shibuya store
   150 s apart in event time (the geo-push dwell), posted to the gateway's /v1/track as
   the app SDK's ``Location Reported``. Latency: from posting the second location to the
   fake FCM receiving that user's push; p50 / p99.

Consent and the push token come from the app back end straight to ``kizuna.raw.app`` /
``raw.profile`` (the Segment API has no consent call); the measured path is gateway ->
identity -> journey -> notifier -> FCM. Stores are open 10:00-21:00 JST; outside those hours the
users' events are dated on a fixed future weekday (the journey worker then follows
event time: KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS is set large).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import queue
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from aiohttp import web
from common import BenchWorker, clean_up, free_port, record
from confluent_kafka import Producer
from gateway import WRITE_KEY, segment_call  # bench/gateway.py: the web traffic mix

from runtime.kafka import create_admin, create_consumer, create_producer
from runtime.settings import load_settings
from runtime.topics import ensure_topics
from schemas.channels import Channel, Purpose
from schemas.codec import encode
from schemas.events import AppOpened, ConsentGranted, LocationReported, RawEvent, Source
from schemas.identifiers import Identifiers
from schemas.payloads import AppOpenedPayload, ConsentPayload, LocationReportedPayload
from schemas.topics import CUSTOMER_EVENTS, NOTIFICATIONS_REQUESTED, raw_topic_for

TOKYO = ZoneInfo("Asia/Tokyo")
NEAR_SHIBUYA = (35.6600, 139.7010)  # services/journey/stores.yaml: within 120 m
DWELL_S = 150.0  # geo_push.yaml: dwell 2m
FUTURE_DAY = datetime(2030, 6, 3, 11, 0, tzinfo=TOKYO)  # a Monday, shops open
CONSUMED = "kizuna_messages_consumed_total"
SERVICES = ("identity", "segmenter", "journey", "notifier")


def serve_fake_providers(port: int, arrivals: Any) -> None:
    """FCM v1 + LINE push answering 200; each FCM push's (token, arrival time) queued."""

    async def fcm(request: web.Request) -> web.Response:
        body = await request.json()
        arrivals.put((body.get("message", {}).get("token"), time.time()))
        return web.json_response({"name": "projects/bench/messages/1"})

    async def line(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/projects/{project}/messages:send", fcm)
    app.router.add_post("/v2/bot/message/push", line)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Pipeline:
    """The five services as processes in ``namespace``, ready to take traffic."""

    def __init__(self, namespace: str, partitions: int, provider: str) -> None:
        env = {
            "KIZUNA_GATEWAY_WRITE_KEYS": orjson.dumps({WRITE_KEY: "web"}).decode(),
            "KIZUNA_GATEWAY_PROCESSES": "1",
            "KIZUNA_JOURNEY_GLOBAL_HOLDOUT": "0",
            "KIZUNA_JOURNEY_CLOCK_SKEW_SECONDS": str(20 * 365 * 86_400),
            "KIZUNA_NOTIFIER_DRY_RUN": "false",
            "KIZUNA_NOTIFIER_OUTBOX_DIR": f"/tmp/{namespace}/outbox",
            "KIZUNA_NOTIFIER_FCM_BASE_URL": provider,
            "KIZUNA_NOTIFIER_FCM_PROJECT": "bench",
            "KIZUNA_NOTIFIER_FCM_TOKEN": "bench",
            "KIZUNA_NOTIFIER_LINE_BASE_URL": provider,
            "KIZUNA_NOTIFIER_LINE_CHANNEL_TOKEN": "bench",
        }
        self.workers = {
            name: BenchWorker(f"services.{name}", namespace, partitions, **env)
            for name in ("gateway", *SERVICES)
        }

    def wait_ready(self) -> None:
        for worker in self.workers.values():
            worker.wait_ready(180)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.workers['gateway'].port}/v1/batch"

    def consumed(self) -> dict[str, float]:
        """Customer events each stage has taken (identity: raw events)."""
        w = self.workers
        return {
            "identity": w["identity"].total(CONSUMED),
            "segmenter": w["segmenter"].total(CONSUMED, 'customer.events"'),
            "journey": w["journey"].total("kizuna_journey_events_total"),
            "notifier": w["notifier"].total(CONSUMED, 'customer.events"'),
        }

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()


class Poster:
    """Posts Segment batches (unique messageIds, real-now timestamps) to the gateway."""

    def __init__(self, session: aiohttp.ClientSession, url: str, seed: int) -> None:
        self.session, self.url = session, url
        self.templates = [segment_call(random.Random(seed)) for _ in range(500)]
        self.run = uuid.uuid4().hex[:8]
        self.sent = self.accepted = self.failed = 0

    async def post(self, count: int) -> None:
        stamp = datetime.now(UTC).isoformat()
        calls = []
        for _ in range(count):
            call = self.templates[self.sent % len(self.templates)]
            calls.append({**call, "messageId": f"{self.run}-{self.sent}", "timestamp": stamp})
            self.sent += 1
        body = orjson.dumps({"batch": calls, "sentAt": stamp})
        async with self.session.post(self.url, data=body) as response:
            await response.read()
            if response.status == 200:
                self.accepted += count
            else:
                self.failed += 1


def session() -> aiohttp.ClientSession:
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    return aiohttp.ClientSession(headers=headers)


async def post_all(url: str, events: int, concurrency: int, batch: int) -> tuple[int, float]:
    """(events accepted, seconds from the first post to the last answer)."""
    async with session() as http:
        posters = [Poster(http, url, seed) for seed in range(concurrency)]
        share = events // concurrency

        async def drive(poster: Poster) -> None:
            while poster.sent < share:
                await poster.post(min(batch, share - poster.sent))

        started = time.monotonic()
        await asyncio.gather(*(drive(p) for p in posters))
        return sum(p.accepted for p in posters), time.monotonic() - started


def throughput(pipeline: Pipeline, args: argparse.Namespace) -> None:
    before = pipeline.consumed()
    started = time.monotonic()
    accepted, posting = asyncio.run(post_all(pipeline.gateway_url, args.events, 8, 100))
    done: dict[str, float] = {}
    deadline = time.monotonic() + 900
    while len(done) < len(SERVICES):
        if time.monotonic() > deadline:
            raise SystemExit(f"pipeline did not drain {accepted} events in 900 s: {done}")
        now = pipeline.consumed()
        for stage in SERVICES:
            if stage not in done and now[stage] - before[stage] >= accepted:
                done[stage] = time.monotonic() - started
        time.sleep(0.2)
    total = max(done.values())
    rate = accepted / total
    print(f"end-to-end throughput: {accepted:,} events accepted by the gateway")
    print(f"  gateway ingest      {accepted / posting:10,.0f} events/s (while the rest ran)")
    for stage, seconds in done.items():
        print(f"  {stage:18}  all consumed after {seconds:6.1f} s")
    print(f"  end-to-end          {rate:10,.0f} events/s (first post -> last stage done)")
    stages = ", ".join(f"{s} {t:.1f} s" for s, t in done.items())
    note = f"{accepted:,} web events, one process per service; drained: {stages}"
    figure = "events/s, gateway -> identity -> segmenter+journey+notifier"
    record("e2e", figure, rate, "events/s", note=note)
    record("e2e", "gateway ingest events/s during the run", accepted / posting, "events/s")


def envelope(event_id: str, at: datetime, device: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": at,
        "received_at": at,
        "source": Source.APP,
        "identifiers": Identifiers(device_id=device),
    }


def onboarding(user: str, at: datetime) -> list[RawEvent]:
    """Push opt-in and an app open with a push token, ``user`` identified by its device."""
    device, opened_at = f"dev-{user}", at + timedelta(seconds=1)
    consent = ConsentPayload(channel=Channel.PUSH, purpose=Purpose.MARKETING, method="app")
    opened = AppOpenedPayload(platform="ios", push_token=f"tok-{user}", push_enabled=True)
    return [
        ConsentGranted(**envelope(f"{user}-consent", at, device), payload=consent),
        AppOpened(**envelope(f"{user}-open", opened_at, device), payload=opened),
    ]


def ping(user: str, n: int, at: datetime) -> LocationReported:
    where = LocationReportedPayload(
        latitude=NEAR_SHIBUYA[0], longitude=NEAR_SHIBUYA[1], accuracy_m=10.0
    )
    return LocationReported(**envelope(f"{user}-ping{n}", at, f"dev-{user}"), payload=where)


def send(producer: Producer, namespace: str, *events: RawEvent) -> None:
    for event in events:
        topic = raw_topic_for(event.type).name(namespace)
        producer.produce(topic, key=event.identifiers.routing_key(), value=encode(event))
    producer.flush(10)


def visit_times(samples: int) -> tuple[Callable[[int], datetime], str]:
    """When sample ``k``'s first ping happens (its second comes DWELL_S later)."""
    now = datetime.now(TOKYO)
    opens, closes = now.replace(hour=10, minute=5), now.replace(hour=20, minute=50)
    if opens + timedelta(seconds=DWELL_S) < now < closes - timedelta(seconds=samples * 2):
        return (lambda k: datetime.now(TOKYO) - timedelta(seconds=DWELL_S)), "real-now"
    return (
        lambda k: FUTURE_DAY + timedelta(seconds=10 * k)
    ), f"event time {FUTURE_DAY:%F %H:%M} JST"


async def background(url: str, rate: float, stop: asyncio.Event, poster_box: list[Poster]) -> None:
    """``rate`` events/s of web traffic in batches of rate/10 every 100 ms."""
    async with session() as http:
        poster = Poster(http, url, seed=99)
        poster_box.append(poster)
        per_tick = max(1, round(rate / 10))
        next_tick = time.monotonic()
        while not stop.is_set():
            await poster.post(per_tick)
            next_tick += 0.1
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))


def ping_call(user: str, n: int, at: datetime) -> dict[str, Any]:
    """The app SDK's location ping as a Segment track call (``Location Reported``)."""
    return {
        "type": "track",
        "event": "Location Reported",
        "anonymousId": f"anon-{user}",
        "messageId": f"{user}-ping{n}",
        "timestamp": at.isoformat(),
        "properties": {"latitude": NEAR_SHIBUYA[0], "longitude": NEAR_SHIBUYA[1], "accuracy": 10},
        "context": {"device": {"id": f"dev-{user}"}},
    }


async def sample_pushes(
    track_url: str, users: list[str], first_ping: Callable[[int], datetime]
) -> dict[str, float]:
    """Both pings of each user through the gateway, one user a second; returns when each
    second ping was posted."""
    sent: dict[str, float] = {}
    async with session() as http:
        for k, user in enumerate(users):
            at = first_ping(k)
            async with http.post(track_url, json=ping_call(user, 1, at)) as response:
                response.raise_for_status()
            await asyncio.sleep(0.5)
            sent[f"tok-{user}"] = time.time()
            second = ping_call(user, 2, at + timedelta(seconds=DWELL_S))
            async with http.post(track_url, json=second) as response:
                response.raise_for_status()
            await asyncio.sleep(0.5)
    return sent


async def latency_run(
    pipeline: Pipeline,
    namespace: str,
    users: list[str],
    first_ping: Callable[[int], datetime],
    rate: float,
) -> tuple[dict[str, float], float, int]:
    """(second-ping times by token, background events/s accepted, non-200 batches)."""
    stop, box = asyncio.Event(), list[Poster]()
    load = asyncio.create_task(background(pipeline.gateway_url, rate, stop, box))
    await asyncio.sleep(5.0)  # the load is steady before the first sample
    started, accepted = time.monotonic(), box[0].accepted if box else 0
    track_url = pipeline.gateway_url.replace("/v1/batch", "/v1/track")
    sent = await sample_pushes(track_url, users, first_ping)
    await asyncio.sleep(10.0)  # keep the load on while the last pushes travel
    stop.set()
    await load
    poster = box[0]
    return sent, (poster.accepted - accepted) / (time.monotonic() - started), poster.failed


def latency(pipeline: Pipeline, namespace: str, args: argparse.Namespace, arrivals: Any) -> None:
    run = uuid.uuid4().hex[:6]
    users = [f"geo-{run}-{k}" for k in range(args.samples)]
    first_ping, mode = visit_times(args.samples)
    onboarded = first_ping(0) - timedelta(hours=1)
    before = pipeline.consumed()
    producer = create_producer(load_settings().kafka)
    send(producer, namespace, *(e for user in users for e in onboarding(user, onboarded)))
    for stage in ("journey", "notifier"):  # consents and tokens are known before any ping
        wait_until(stage, pipeline, before[stage] + 2 * len(users))
    sent, load_rate, failed = asyncio.run(
        latency_run(pipeline, namespace, users, first_ping, args.background)
    )
    received = collect(arrivals, set(sent), timeout=30.0)
    lags = sorted(received[t] - sent[t] for t in sent if t in received)
    missing = len(sent) - len(lags)
    print(
        f"geo-push latency: {len(sent)} fresh app users ({mode}), background "
        f"{load_rate:,.0f} events/s through the gateway (non-200 batches: {failed})"
    )
    note = f"{len(lags)}/{len(sent)} pushes arrived; {mode}; background {load_rate:,.0f} ev/s"
    if not lags:
        print("  no push arrived")
        record("e2e", "geo-push latency p50", float("nan"), "ms", None, note)
        return
    p50 = statistics.median(lags) * 1000
    p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000
    print(f"  location (gateway) -> FCM push  p50 {p50:8.0f} ms   p99 {p99:8.0f} ms")
    print(f"  pushes received {len(lags)}/{len(sent)} (missing {missing})")
    legs = breakdown(namespace, sent, received)
    if legs:
        split = ", ".join(f"{leg} {seconds * 1000:.0f} ms" for leg, seconds in legs.items())
        print(f"  median per leg (Kafka timestamps of each hand-off): {split}")
        note += f"; median per leg: {split}"
    record("e2e", "geo-push latency p50 (gateway -> FCM)", p50, "ms", None, note)
    record("e2e", "geo-push latency p99 (gateway -> FCM)", p99, "ms", None, note)
    record("e2e", "background load during latency run", load_rate, "events/s (load)", None, note)


def kafka_times(topic: str, pick: Callable[[bytes], tuple[str, str] | None]) -> dict[str, Any]:
    """Read ``topic`` from the start; for each message ``pick`` maps to (key, extra), keep
    {key: (extra, Kafka timestamp in s)}."""
    consumer = create_consumer(load_settings().kafka, f"{topic}-bench-{uuid.uuid4().hex[:6]}")
    consumer.subscribe([topic])
    found: dict[str, Any] = {}
    idle = 0
    try:
        while idle < 3:
            batch = consumer.consume(5000, 1.0)
            idle = 0 if batch else idle + 1
            for message in batch:
                if message.error() or (picked := pick(message.value() or b"")) is None:
                    continue
                found[picked[0]] = (picked[1], message.timestamp()[1] / 1000)
    finally:
        consumer.close()
    return found


def second_ping(value: bytes) -> tuple[str, str] | None:
    """(user, customer id) of a customer event that is some user's second ping."""
    if b"-ping2" not in value:
        return None
    wrapped = orjson.loads(value)
    event_id = str(wrapped["event"]["event_id"])
    return (
        (event_id[: -len("-ping2")], wrapped["customer_id"])
        if event_id.endswith("-ping2")
        else None
    )


def geo_request(value: bytes) -> tuple[str, str] | None:
    request = orjson.loads(value)
    return (request["customer_id"], "") if request.get("journey_id") == "geo_push" else None


def breakdown(
    namespace: str, sent: dict[str, float], received: dict[str, float]
) -> dict[str, float]:
    """Median seconds per leg, from the Kafka timestamps of the hand-offs between them."""
    resolved = kafka_times(CUSTOMER_EVENTS.name(namespace), second_ping)
    requested = kafka_times(NOTIFICATIONS_REQUESTED.name(namespace), geo_request)
    legs: dict[str, list[float]] = {"identity": [], "journey": [], "notifier": []}
    for user, (customer, at_customer) in resolved.items():
        token = f"tok-{user}"
        if token not in sent or token not in received or customer not in requested:
            continue
        at_request = requested[customer][1]
        legs["identity"].append(at_customer - sent[token])
        legs["journey"].append(at_request - at_customer)
        legs["notifier"].append(received[token] - at_request)
    return {leg: statistics.median(values) for leg, values in legs.items() if values}


def wait_until(stage: str, pipeline: Pipeline, count: float, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while pipeline.consumed()[stage] < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{stage} did not take the onboarding events in {timeout}s")
        time.sleep(0.3)


def collect(arrivals: Any, tokens: set[str], timeout: float) -> dict[str, float]:
    """First arrival time of each wanted token, until all came or ``timeout`` passed."""
    got: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(got) < len(tokens) and time.monotonic() < deadline:
        try:
            token, at = arrivals.get(timeout=0.5)
        except queue.Empty:
            continue
        if token in tokens:
            got.setdefault(token, at)
    return got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--background", type=float, default=300.0, help="events/s")
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    settings = load_settings()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    admin = create_admin(settings.kafka)
    ensure_topics(admin, namespace, partitions=args.partitions)
    port = free_port()
    arrivals: Any = multiprocessing.Queue()
    provider = multiprocessing.Process(
        target=serve_fake_providers, args=(port, arrivals), daemon=True
    )
    provider.start()
    pipeline = None
    try:
        pipeline = Pipeline(namespace, args.partitions, f"http://127.0.0.1:{port}")
        pipeline.wait_ready()
        throughput(pipeline, args)
        latency(pipeline, namespace, args, arrivals)
    finally:
        if pipeline is not None:
            pipeline.stop()
        provider.terminate()
        provider.join(5)
        clean_up(admin, namespace)


if __name__ == "__main__":
    main()
