"""HTTP handlers: read the request, map each event, hand them to :class:`Ingest`, answer.

Status codes: 200 when every event was accepted, was a duplicate or was rejected next to
accepted ones (rejections are listed per event and dead-lettered); 400 when every event
was rejected or the body is malformed; 401 unknown write key / bad LINE signature;
413 too large; 503 when Kafka did not acknowledge (retry: nothing was half-accepted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from schemas.events import Source
from services.gateway.adapters.dedupe import LineNonces
from services.gateway.domain import line_webhook
from services.gateway.domain.segment_mapping import map_message
from services.gateway.domain.segment_values import MappingError, required_id
from services.gateway.http_edge import (
    Refused,
    basic_auth_key,
    json_response,
    parse_json,
    read_body,
    source_for,
)
from services.gateway.ingest import Candidate, Ingest, Invalid, KafkaUnavailable, original_bytes
from services.gateway.metrics import LINE_EVENTS_IGNORED
from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Any]


class Collector:
    def __init__(
        self,
        gateway: GatewaySettings,
        ingest: Ingest,
        nonces: LineNonces,
        clock: Callable[[], datetime],
    ) -> None:
        self._gateway = gateway
        self._ingest = ingest
        self._nonces = nonces
        self._clock = clock

    def segment(self, kind: str | None) -> Handler:
        """The handler of ``/v1/<kind>`` (``None``: ``/v1/batch``)."""

        async def handle(request: web.Request) -> web.Response:
            try:
                return await self._segment(request, kind)
            except Refused as refused:
                return refused.response()

        return handle

    async def _segment(self, request: web.Request, kind: str | None) -> web.Response:
        header_key = basic_auth_key(request)
        source = source_for(header_key, self._gateway.write_keys) if header_key else None
        body = await read_body(request, self._gateway.max_request_bytes)
        document = parse_json(body)
        if source is None:  # browser tags send the key in the body (no preflight)
            key = document.get("writeKey") if isinstance(document, dict) else None
            source = source_for(key if isinstance(key, str) else None, self._gateway.write_keys)
        messages = segment_messages(document, kind, self._gateway.max_batch_events)
        check_size = len(body) > self._gateway.max_event_bytes
        candidates: list[Candidate] = []
        invalid: list[Invalid] = []
        received_at = self._clock()
        for index, message in enumerate(messages):
            try:
                if check_size:
                    self._check_size(message)
                event = map_message(message, source, received_at)
            except MappingError as err:
                invalid.append(_invalid(index, message, err))
            else:
                candidates.append(self._ingest.candidate(index, event))
        return await self._answer(candidates, invalid, source.value)

    def _check_size(self, message: Any) -> None:
        size = len(original_bytes(message))
        if size > self._gateway.max_event_bytes:
            limit = self._gateway.max_event_bytes
            raise MappingError("(event)", f"{size} bytes exceeds {limit}", reason="too_large")

    async def _answer(
        self, candidates: list[Candidate], invalid: list[Invalid], source: str
    ) -> web.Response:
        try:
            report = await self._ingest.submit(candidates, invalid, source)
        except KafkaUnavailable as err:
            log.warning("answering 503: %s", err)
            raise Refused(503, "unavailable", "events not stored, retry later") from None
        body = report.as_json()
        return json_response(body, 200 if body["success"] else 400)

    async def line(self, request: web.Request) -> web.Response:
        try:
            return await self._line(request)
        except Refused as refused:
            return refused.response()

    async def _line(self, request: web.Request) -> web.Response:
        secret = self._gateway.line_channel_secret
        body = await read_body(request, self._gateway.max_request_bytes)
        signature = request.headers.get("x-line-signature")
        if secret is None or not line_webhook.verify_signature(
            secret.get_secret_value().encode(), body, signature
        ):
            raise Refused(401, "bad_signature", "x-line-signature does not match the body")
        document = parse_json(body)
        try:
            events = line_webhook.webhook_events(document)
        except MappingError as err:
            raise Refused(400, "invalid_webhook", str(err)) from None
        members = await self._nonces.members(line_webhook.link_nonces(events))
        candidates, invalid = self._line_events(events, document, members)
        return await self._answer(candidates, invalid, Source.LINE.value)

    def _line_events(
        self, events: list[Any], document: dict[str, Any], members: dict[str, str]
    ) -> tuple[list[Candidate], list[Invalid]]:
        candidates: list[Candidate] = []
        invalid: list[Invalid] = []
        channel_id = str(document.get("destination") or "line")
        received_at = self._clock()
        for index, raw in enumerate(events):
            try:
                event = line_webhook.map_event(
                    raw,
                    channel_id=channel_id,
                    provider=self._gateway.line_provider,
                    received_at=received_at,
                    members=members,
                )
            except MappingError as err:
                invalid.append(_invalid(index, raw, err, id_field="webhookEventId"))
                continue
            if event is None:
                LINE_EVENTS_IGNORED.labels(_line_type(raw)).inc()
            else:
                _log_unknown_nonce(event)
                candidates.append(self._ingest.candidate(index, event))
        return candidates, invalid

    async def link_nonce(self, request: web.Request) -> web.Response:
        """``POST /v1/line/link-nonce {"member_id": "M1"}`` -> ``{"nonce": "…"}`` (site backend)."""
        try:
            source_for(basic_auth_key(request), self._gateway.write_keys)
            document = parse_json(await read_body(request, 4096))
            member = document.get("member_id") if isinstance(document, dict) else None
            try:
                member_id = required_id(member, "member_id")
            except MappingError as err:
                raise Refused(400, "invalid_member", str(err)) from None
        except Refused as refused:
            return refused.response()
        return json_response({"nonce": await self._nonces.issue(member_id)})


def segment_messages(document: Any, kind: str | None, max_events: int) -> list[Any]:
    """The Segment calls of a request; a batch's top-level context is under each call's."""
    if not isinstance(document, dict):
        raise Refused(400, "invalid_body", "the body must be a JSON object")
    if kind is not None:
        return [{**document, "type": kind}]
    batch = document.get("batch")
    if not isinstance(batch, list):
        raise Refused(400, "invalid_batch", "a batch body needs a 'batch' list")
    if not batch:
        raise Refused(400, "empty_batch", "the batch has no events")
    if len(batch) > max_events:
        raise Refused(413, "batch_too_large", f"{len(batch)} events exceeds {max_events}")
    shared = document.get("context")
    if isinstance(shared, dict) and shared:
        return [_with_context(message, shared) for message in batch]
    return batch


def _with_context(message: Any, shared: dict[str, Any]) -> Any:
    if not isinstance(message, dict):
        return message
    own = message.get("context")
    return {**message, "context": {**shared, **own} if isinstance(own, dict) else shared}


def _invalid(index: int, message: Any, err: MappingError, id_field: str = "messageId") -> Invalid:
    message_id = message.get(id_field) if isinstance(message, dict) else None
    return Invalid(
        index=index,
        message_id=message_id if isinstance(message_id, str) else None,
        reason=err.reason,
        error=str(err),
        original=original_bytes(message),
    )


_LINE_TYPES = frozenset(
    (
        "message",
        "unsend",
        "join",
        "leave",
        "memberJoined",
        "memberLeft",
        "postback",
        "videoPlayComplete",
        "beacon",
        "things",
        "module",
        "activated",
        "deactivated",
        "botSuspended",
        "botResumed",
        "pnpDeliveryCompletion",
    )
)


def _line_type(raw: Any) -> str:
    """A metric label from a small fixed set, whatever the sender wrote."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    return kind if kind in _LINE_TYPES else "other"


def _log_unknown_nonce(event: Any) -> None:
    if event.type == "line_account_linked" and event.identifiers.member_id is None:
        log.warning("LINE account link without a known nonce", extra={"event_id": event.event_id})
