"""Decoding at the edge: valid messages pass through, bad ones become dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from runtime.intake import decoded
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
