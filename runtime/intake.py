"""Decode at the edge: turn a faust stream of raw bytes into valid models.

Messages that are not valid go to the dead-letter topic with the reason, the original
bytes and where they came from; valid ones are yielded with their Kafka coordinates.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from pydantic import TypeAdapter, ValidationError

from runtime.deadletter import DeadLetterSink, utcnow
from runtime.metrics import MESSAGES_CONSUMED, processing
from schemas.base import new_tuple
from schemas.codec import DecodeError, JsonReader, decode
from schemas.deadletter import DeadLetter

T = TypeVar("T")
N = TypeVar("N")
V = TypeVar("V", covariant=True)


class Received(NamedTuple, Generic[V]):  # built per message: a named tuple is ~4x cheaper
    value: V
    key: bytes | None
    topic: str
    partition: int
    offset: int
    raw: bytes = b""  # the validated bytes, for services that pass the event on unchanged


@cache
def _consumed(service: str, topic: str) -> Any:
    """The counter's child for one topic, looked up once (``labels()`` costs µs)."""
    return MESSAGES_CONSUMED.labels(service, topic)


async def decoded(
    stream: Any,
    adapter: JsonReader[T],
    dead_letters: DeadLetterSink,
    *,
    service: str,
    max_bytes: int,
) -> AsyncIterator[Received[T]]:
    """Yield each valid message of a raw-bytes faust stream; dead-letter the rest. The
    time until the agent asks for the next one is its processing time."""
    async for event in stream.events():
        received = await decode_event(
            event, adapter, dead_letters, service=service, max_bytes=max_bytes
        )
        if received is not None:
            started = time.perf_counter()
            yield received
            processing(service, stage_of(received.topic)).observe(time.perf_counter() - started)


def stage_of(topic: str) -> str:
    """``<namespace>.customer.events`` -> ``customer.events``: one label set per stage."""
    return topic.split(".", 1)[1] if "." in topic else topic


async def decode_batch(
    events: Sequence[Any],
    adapter: JsonReader[T],
    dead_letters: DeadLetterSink,
    *,
    service: str,
    max_bytes: int,
) -> list[Received[T]]:
    """The valid messages of a batch of faust events, in order; the rest dead-lettered.
    (:func:`decode_event` for each, with the valid ones decoded inline and counted once
    per topic: ~1 µs an event less, on every batch intake.)"""
    out: list[Received[T]] = []
    consumed: dict[str, int] = {}
    validate = adapter.validate_json
    try:
        for event in events:
            message = event.message
            topic = message.topic
            consumed[topic] = consumed.get(topic, 0) + 1
            value = validated(message.value, validate, max_bytes)
            if value is not None:
                fields = (value, message.key, topic, message.partition, message.offset)
                out.append(new_tuple(Received, (*fields, message.value)))
                continue
            received = await _decoded(event, adapter, dead_letters, service, max_bytes)
            if received is not None:
                out.append(received)
    finally:
        count_consumed(service, consumed)
    return out


def validated(raw: bytes | None, validate: Callable[[bytes], T], max_bytes: int) -> T | None:
    """``raw`` read by ``validate`` (an adapter's ``validate_json``), or None when it
    cannot be: decode it with :func:`decode_event` then, which dead-letters it with the
    reason. (Inline, a valid message costs no coroutine and no per-message count.)"""
    if raw and len(raw) <= max_bytes:
        try:
            return validate(raw)
        except ValidationError:
            return None
    return None


def count_consumed(service: str, consumed: dict[str, int]) -> None:
    """Count messages read inline (:func:`validated`), per topic, once per batch."""
    for topic, count in consumed.items():
        _consumed(service, topic).inc(count)


@dataclass(frozen=True)
class Narrow(Generic[N]):
    """A cheaper reading of a topic for the messages a stage uses few fields of: a model
    of just those fields (``adapter``), and ``enough`` to tell, once read, whether they
    are all the stage needs of this message. Cheaper still, ``peek(key, headers)`` may
    answer from the message's key and headers alone (None: read the body; False: the
    headers say the narrow model is not enough, decode in full)."""

    adapter: TypeAdapter[N]
    enough: Callable[[N], bool]
    peek: Callable[[bytes | None, Any], N | Literal[False] | None] | None = None


async def decode_batch_narrow(
    events: Sequence[Any],
    narrow: Narrow[N],
    adapter: JsonReader[T],
    dead_letters: DeadLetterSink,
    *,
    service: str,
    max_bytes: int,
) -> list[Received[N | T]]:
    """:func:`decode_batch`, but each message is first read through ``narrow`` (its
    headers, then its narrow model); only a message it cannot read, or not enough of, is
    decoded in full with ``adapter`` (and dead-lettered if invalid). Order is kept."""
    out: list[Received[N | T]] = []
    consumed: dict[str, int] = {}
    for event in events:
        message = event.message
        raw: bytes = message.value or b""
        value = _read_narrowly(narrow, message, raw) if raw and len(raw) <= max_bytes else None
        if value is not None:
            consumed[message.topic] = consumed.get(message.topic, 0) + 1
            key, topic, partition = message.key, message.topic, message.partition
            out.append(new_tuple(Received, (value, key, topic, partition, message.offset, raw)))
            continue
        received = await decode_event(
            event, adapter, dead_letters, service=service, max_bytes=max_bytes
        )
        if received is not None:
            out.append(received)
    for topic, count in consumed.items():
        _consumed(service, topic).inc(count)
    return out


def _read_narrowly(narrow: Narrow[N], message: Any, raw: bytes) -> N | None:
    """What ``narrow`` makes of a message: its headers' answer, else its narrow model's;
    None when the message must be decoded in full."""
    if narrow.peek is not None:
        peeked = narrow.peek(message.key, message.headers)
        if peeked is False:
            return None
        if peeked is not None:
            return peeked
    try:
        value = narrow.adapter.validate_json(raw)
    except ValidationError:
        return None
    return value if narrow.enough(value) else None


async def decode_event(
    event: Any,
    adapter: JsonReader[T],
    dead_letters: DeadLetterSink,
    *,
    service: str,
    max_bytes: int,
) -> Received[T] | None:
    _consumed(service, event.message.topic).inc()
    return await _decoded(event, adapter, dead_letters, service, max_bytes)


async def _decoded(
    event: Any, adapter: JsonReader[T], dead_letters: DeadLetterSink, service: str, max_bytes: int
) -> Received[T] | None:
    """The message decoded, or dead-lettered (None)."""
    message = event.message
    raw: bytes = message.value if message.value is not None else b""
    try:
        if not raw:
            raise DecodeError("undecodable", "empty message (no value)")
        value = decode(adapter, raw, max_bytes=max_bytes)
    except DecodeError as err:
        await dead_letters.send(
            DeadLetter.of(
                raw,
                reason=err.reason,
                error=err.detail,
                service=service,
                key=message.key,
                source_topic=message.topic,
                source_partition=message.partition,
                source_offset=message.offset,
                occurred_at=utcnow(),
            )
        )
        return None
    fields = (value, message.key, message.topic, message.partition, message.offset, raw)
    return new_tuple(Received, fields)
