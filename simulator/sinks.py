"""Where emissions go: the gateway's HTTP API (Segment, LINE) and the raw Kafka topics."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections import Counter
from typing import Any

import httpx
import orjson
from confluent_kafka import KafkaError, Message

from runtime.kafka import create_producer
from schemas.codec import encode
from schemas.topics import raw_topic_for
from simulator.messages import DirectEvent, LineEvent

log = logging.getLogger(__name__)


def line_signature(secret: str, body: bytes) -> str:
    """What LINE puts in x-line-signature: base64(HMAC-SHA256(channel secret, body))."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Gateway:
    """An SDK's view of the gateway: Segment batches with a write key, LINE webhooks."""

    def __init__(
        self, url: str, write_keys: dict[str, str], line_secret: str | None, stats: Counter[str]
    ) -> None:
        self._client = httpx.AsyncClient(base_url=url, timeout=15.0)
        self._keys = write_keys
        self._line_secret = line_secret
        self._stats = stats

    async def batch(self, source: str, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        body = orjson.dumps({"batch": messages, "sentAt": messages[-1]["timestamp"]})
        auth = (self._keys[source], "")
        answer = await self._post("/v1/batch", body, auth=auth)
        self._count(f"segment_{source}", len(messages), answer)

    async def line(self, events: list[LineEvent]) -> None:
        if not events or self._line_secret is None:
            self._stats["line_skipped"] += len(events)
            return
        documents = [await self._linked(e) for e in events]
        body = orjson.dumps({"destination": "Ukizunasimbot", "events": documents})
        headers = {"x-line-signature": line_signature(self._line_secret, body)}
        answer = await self._post("/v1/line/webhook", body, headers=headers)
        self._count("line", len(events), answer)

    async def _linked(self, event: LineEvent) -> dict[str, Any]:
        """An accountLink carries the nonce the site issued for the member (as LINE echoes it)."""
        if event.link_member is None:
            return event.event
        body = orjson.dumps({"member_id": event.link_member})
        answer = await self._post(
            "/v1/line/link-nonce", body, auth=(next(iter(self._keys.values())), "")
        )
        nonce = (
            answer.json().get("nonce") if answer is not None and answer.status_code == 200 else None
        )
        return {**event.event, "link": {**event.event["link"], "nonce": nonce or "unknown"}}

    async def _post(self, path: str, body: bytes, **options: Any) -> httpx.Response | None:
        headers = {"content-type": "application/json", **options.pop("headers", {})}
        try:
            return await self._client.post(path, content=body, headers=headers, **options)
        except httpx.HTTPError as err:
            log.warning("POST %s failed: %s", path, err)
            return None

    def _count(self, what: str, n: int, answer: httpx.Response | None) -> None:
        ok = answer is not None and answer.status_code == 200
        self._stats[f"{what}_{'sent' if ok else 'failed'}"] += n
        if answer is not None and not ok:
            log.warning("%s answered %s: %.300s", what, answer.status_code, answer.text)

    async def close(self) -> None:
        await self._client.aclose()


class RawTopics:
    """An upstream integration (POS, malls, CRM, app backend) producing raw events."""

    def __init__(self, bootstrap: str, namespace: str, stats: Counter[str]) -> None:
        self._producer = create_producer(bootstrap)
        self._namespace = namespace
        self._stats = stats

    def send(self, emission: DirectEvent) -> None:
        event = emission.event
        topic = raw_topic_for(event.type).name(self._namespace)
        key = event.identifiers.routing_key().encode()
        self._producer.produce(topic, encode(event), key, on_delivery=self._delivered)

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        self._stats["kafka_failed" if err else "kafka_sent"] += 1

    def poll(self) -> None:
        self._producer.poll(0)

    def close(self, timeout_s: float = 10.0) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            log.error("%d raw events not delivered at exit", left)
