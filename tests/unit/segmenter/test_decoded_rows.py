"""The processor keeps the states it decoded or wrote, and uses one only while the table
still holds the very bytes it came from."""

from __future__ import annotations

import pytest

from services.segmenter import processor as processor_module
from services.segmenter.adapters.state_codec import decode_state, encode_state
from services.segmenter.domain.facts import Facts
from services.segmenter.domain.standing import CustomerState, Policy
from services.segmenter.processor import DecodedRows, Processor
from tests.unit.segmenter.builders import on_day, order, ts
from tests.unit.segmenter.test_sweep import NoViews, Recorder


def state(customer_id: str) -> CustomerState:
    return CustomerState(customer_id, Facts({}))


def test_when_the_row_is_not_the_one_decoded_then_nothing_is_returned() -> None:
    rows = DecodedRows(10)
    a = state("a")
    rows.remember(b"a", b"row-1", a)

    assert rows.get(b"a", b"row-1") is a
    copy = bytes(bytearray(b"row-1"))  # equal bytes, another object (as RocksDB gives)
    assert rows.get(b"a", copy) is a
    assert rows.get(b"a", b"row-2") is None  # someone wrote it since
    assert rows.get(b"b", b"row-1") is None


def test_when_full_then_the_least_recently_written_goes_first() -> None:
    rows = DecodedRows(2)
    rows.remember(b"a", b"1", state("a"))
    rows.remember(b"b", b"1", state("b"))
    rows.remember(b"a", b"2", state("a"))  # written again: the newest now
    rows.remember(b"c", b"1", state("c"))

    assert len(rows) == 2
    assert rows.get(b"b", b"1") is None
    assert rows.get(b"a", b"2") is not None
    assert rows.get(b"c", b"1") is not None


def test_when_the_limit_is_zero_then_nothing_is_kept() -> None:
    rows = DecodedRows(0)
    rows.remember(b"a", b"1", state("a"))
    assert len(rows) == 0


def processor(table: dict[bytes, bytes], cache: int = 100) -> Processor:
    made = Processor(
        table,
        Policy(),
        Recorder(),
        NoViews(),
        partition_of=lambda _: 1,
        owned=lambda: {1},
        state_cache=cache,
    )
    made.clock.pinned = ts(on_day(0))
    return made


async def test_when_a_customer_comes_back_then_her_written_row_is_not_decoded_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table: dict[bytes, bytes] = {}
    p = processor(table)
    await p.on_customer_event("c1", order("o1", 5_000, on_day(0)), 1)
    decoded: list[bytes] = []

    def counting(raw: bytes) -> tuple[CustomerState, int]:
        decoded.append(raw)
        return decode_state(raw)

    monkeypatch.setattr(processor_module, "decode_state", counting)

    await p.on_customer_event("c1", order("o2", 7_000, on_day(0)), 1)
    loaded = p.load("c1")

    assert decoded == []  # both loads served by what the first and second batch wrote
    assert loaded == decode_state(table[b"c1"])[0]
    assert set(loaded.facts.orders) == {"o1", "o2"}  # type: ignore[union-attr]


async def test_when_another_worker_wrote_the_row_then_it_is_decoded_afresh() -> None:
    table: dict[bytes, bytes] = {}
    p = processor(table)
    await p.on_customer_event("c1", order("o1", 5_000, on_day(0)), 1)
    elsewhere = processor({})
    await elsewhere.on_customer_event("c1", order("o9", 9_000, on_day(0)), 1)
    table[b"c1"] = encode_state(elsewhere.load("c1"), 1)  # type: ignore[arg-type]  # restored

    loaded = p.load("c1")

    assert loaded is not None
    assert set(loaded.facts.orders) == {"o9"}


async def test_when_the_cache_is_off_then_the_results_are_the_same() -> None:
    with_cache: dict[bytes, bytes] = {}
    without: dict[bytes, bytes] = {}
    events = [(f"c{n % 2}", order(f"o{n}", 1_000 * (n + 1), on_day(n))) for n in range(6)]
    for table, cache in ((with_cache, 100), (without, 0)):
        p = processor(table, cache)
        for customer, event in events:
            await p.on_customer_event(customer, event, 1)

    assert with_cache == without
