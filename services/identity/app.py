"""The identity worker: wiring only (the batch consumer, HTTP lookup, graph size)."""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from runtime.app import create_app
from runtime.consumer import BatchConsumer
from runtime.deadletter import FaustDeadLetters
from runtime.producer import AsyncProducer
from runtime.redis import create_redis
from runtime.settings import Settings
from schemas.identifiers import InvalidIdentifierError
from schemas.topics import CUSTOMER_EVENTS, IDENTITY_CHANGES, IDENTITY_LINKS, RAW_TOPICS
from services.identity import metrics
from services.identity.adapters.redis_graph import RedisGraph
from services.identity.domain.explain import chain, describe
from services.identity.domain.rules import parse_identifier
from services.identity.resolver import SERVICE, Resolver
from services.identity.settings import IdentitySettings


def build_app(settings: Settings, identity: IdentitySettings) -> faust.App:
    app = create_app(SERVICE, settings, group=identity.consumer_group)
    ns = settings.namespace
    graph_ns = identity.graph_namespace or ns
    raw_topics = [spec.name(ns) for spec in RAW_TOPICS]
    for spec in (*RAW_TOPICS, CUSTOMER_EVENTS, IDENTITY_CHANGES, IDENTITY_LINKS):  # for faust
        app.topic(spec.name(ns), key_serializer="raw", value_serializer="raw")
    dead_letters = FaustDeadLetters(app, ns)
    graphs: dict[str, RedisGraph] = {}

    def graph() -> RedisGraph:
        if "g" not in graphs:  # clients are made when the worker runs, never at import
            graphs["g"] = RedisGraph(
                create_redis(settings, large_values=True),  # a batch's commit: ~500 KB
                graph_ns,
                identity.rules(),
                outbox_ttl=identity.outbox_ttl_seconds,
                buckets=identity.index_buckets,
                remember=identity.remembered_identifiers,
            )
        return graphs["g"]

    producer = AsyncProducer(settings.kafka)
    consumer = BatchConsumer(  # its Kafka client is made when it runs
        settings.kafka,
        f"{ns}-{identity.consumer_group or SERVICE}-resolve",
        raw_topics,
        service=SERVICE,
        max_batch=identity.batch_size,
        within_seconds=identity.batch_within_seconds,
        session_timeout_seconds=settings.session_timeout_seconds,
        carry_over_from=f"{ns}-{identity.consumer_group or SERVICE}",  # the faust agent's
        settle=producer,  # a batch's offsets once its outputs are acknowledged
    )

    @app.task
    async def resolve() -> None:
        """The raw topics in batches straight from confluent-kafka (the graph is in
        Redis: no faust table), offsets committed once a batch's outputs are acknowledged;
        a batch is read and observed while the one before it is in Redis."""
        resolver = Resolver(
            graph(),
            producer,
            dead_letters,
            namespace=ns,
            max_bytes=settings.max_message_bytes,
        )
        await consumer.run(resolver.begin, overlapped=True)

    @app.timer(interval=15.0)
    async def graph_size() -> None:
        stats = await graph().client.hgetall(graph().keys.stats)
        metrics.GRAPH_IDENTIFIERS.set(int(stats.get(b"identifiers", 0)))
        metrics.GRAPH_CUSTOMERS.set(int(stats.get(b"customers", 0)))

    _add_lookup(app, graph, identity)
    return app


def _add_lookup(app: faust.App, graph: Any, identity: IdentitySettings) -> None:
    rules = identity.rules()

    @app.page("/customers/lookup")
    class Lookup(View):
        async def get(self, request: Request) -> Response:
            try:
                key = parse_identifier(request.query.get("identifier", ""), rules)
            except (ValueError, InvalidIdentifierError) as err:
                return self.json({"error": str(err)}, status=400)
            customer = await graph().customer_of(key)
            if customer is None:
                return self.json({"error": f"no customer has {key}"}, status=404)
            return self.json(describe(customer))

    @app.page("/customers/why")
    class Why(View):
        async def get(self, request: Request) -> Response:
            try:
                a = parse_identifier(request.query.get("a", ""), rules)
                b = parse_identifier(request.query.get("b", ""), rules)
            except (ValueError, InvalidIdentifierError) as err:
                return self.json({"error": str(err)}, status=400)
            customer = await graph().customer_of(a)
            if customer is None or b not in customer.nodes:
                return self.json({"error": f"{a} and {b} are not the same customer"}, status=404)
            return self.json({"customer_id": customer.customer_id, "chain": chain(customer, a, b)})
