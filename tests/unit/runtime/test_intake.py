"""Decoding at the edge: valid messages pass through, bad ones become dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from runtime.intake import decode_batch, decode_event, decoded
from runtime.metrics import MESSAGES_CONSUMED
from schemas.codec import encode
from schemas.deadletter import DeadLetter
from schemas.events import RAW_EVENT_ADAPTER
from schemas.examples import example


@dataclass
class FakeMessage:
    value: bytes | None
    key: bytes | None = b"k"
    topic: str = "t.raw.web"
    partition: int = 0
    offset: int = 0
    headers: Any = None


@dataclass
class FakeEvent:
    message: FakeMessage


class FakeStream:
    def __init__(self, values: list[bytes | None]) -> None:
        self.messages = [FakeMessage(v, offset=i) for i, v in enumerate(values)]

    async def events(self) -> AsyncIterator[FakeEvent]:
        for message in self.messages:
            yield FakeEvent(message)


class CollectingSink:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def send(self, letter: DeadLetter) -> None:
        self.letters.append(letter)


async def test_when_messages_exceed_the_size_limit_then_each_is_dead_lettered_as_too_large() -> (
    None
):
    stream = FakeStream([encode(example("page_viewed")), b"{oops", None, b"x" * 50])
    sink = CollectingSink()

    received = [
        r async for r in decoded(stream, RAW_EVENT_ADAPTER, sink, service="svc", max_bytes=40)
    ]

    assert received == []
    assert [letter.reason for letter in sink.letters] == [
        "too_large",
        "undecodable",
        "undecodable",
        "too_large",
    ]
    assert all(letter.service == "svc" and letter.key == b"k" for letter in sink.letters)


async def test_when_messages_are_valid_then_they_are_yielded_in_order_with_coordinates() -> None:
    good = [example("page_viewed", seed=1), example("pos_purchased", seed=2)]
    stream = FakeStream([encode(good[0]), b"{oops", None, encode(good[1])])
    sink = CollectingSink()

    received = [
        r async for r in decoded(stream, RAW_EVENT_ADAPTER, sink, service="svc", max_bytes=100_000)
    ]

    assert [r.value for r in received] == good
    assert [r.offset for r in received] == [0, 3]
    assert [(letter.reason, letter.source_offset) for letter in sink.letters] == [
        ("undecodable", 1),
        ("undecodable", 2),
    ]
    assert sink.letters[1].error == "empty message (no value)"
    assert sink.letters[0].original == b"{oops"


async def test_when_a_batch_mixes_good_and_bad_messages_then_it_decodes_as_each_alone() -> None:
    """decode_batch's inline path gives what decode_event gives message by message: the
    valid ones in order, every other one dead-lettered with its reason, all counted."""
    good = [example("page_viewed", seed=1), example("pos_purchased", seed=2)]
    unknown = encode(good[0]).replace(b'"page_viewed"', b'"page_flipped"')
    values = [encode(good[0]), b"{oops", None, b"", unknown, b"x" * 300_000, encode(good[1])]
    events = [FakeEvent(FakeMessage(v, offset=i)) for i, v in enumerate(values)]
    batch_sink, alone_sink = CollectingSink(), CollectingSink()
    counted = MESSAGES_CONSUMED.labels("batch-svc", "t.raw.web")
    before = counted._value.get()

    batch = await decode_batch(
        events, RAW_EVENT_ADAPTER, batch_sink, service="batch-svc", max_bytes=100_000
    )
    alone = [
        r
        for e in events
        if (
            r := await decode_event(
                e, RAW_EVENT_ADAPTER, alone_sink, service="s", max_bytes=100_000
            )
        )
    ]

    assert batch == alone
    assert [r.value for r in batch] == good
    assert [r.offset for r in batch] == [0, 6]
    assert [r.raw for r in batch] == [values[0], values[6]]
    reasons = [(letter.reason, letter.source_offset) for letter in batch_sink.letters]
    assert reasons == [
        ("undecodable", 1),
        ("undecodable", 2),
        ("undecodable", 3),
        ("unknown_type", 4),
        ("too_large", 5),
    ]
    assert [letter.error for letter in batch_sink.letters] == [
        letter.error for letter in alone_sink.letters
    ]
    assert counted._value.get() - before == len(values)
