"""After a rebalance the time index is read again from every owned row, and only the
profile views of partitions new to the worker are written again, a flush at a time,
each from her row as it is when her turn comes."""

from __future__ import annotations

from typing import Any

from services.segmenter.adapters.state_codec import decode_state, encode_state, indexed_parts
from services.segmenter.domain.facts import EMPTY
from services.segmenter.domain.standing import CustomerState, Policy, Standing
from services.segmenter.processor import Processor
from tests.unit.segmenter.builders import on_day, order, page, ts
from tests.unit.segmenter.test_sweep import Recorder


class CountingViews:
    """Profile views as Redis would hold them, and how many each flush wrote."""

    def __init__(self) -> None:
        self.views: dict[str, dict[str, Any]] = {}
        self.staged = 0
        self.flushes: list[int] = []

    def stage(self, customer_id: str, view: dict[str, Any]) -> None:
        self.views[customer_id] = dict(view)
        self.staged += 1

    def stage_fields(self, customer_id: str, fields: dict[str, Any]) -> None:
        self.views.setdefault(customer_id, {}).update(fields)
        self.staged += 1

    def stage_absorbed(self, customer_id: str, survivor: str) -> None:
        self.views[customer_id] = {"customer_id": customer_id, "absorbed_into": survivor}
        self.staged += 1

    async def flush(self) -> int:
        self.flushes.append(self.staged)
        self.staged = 0
        return self.flushes[-1]


PARTITION = {"a1": 1, "a2": 1, "b1": 2, "b2": 2, "b3": 2, "b4": 2, "b5": 2}


def worker(table: dict[bytes, bytes], owned: set[int], views: CountingViews) -> Processor:
    made = Processor(
        table,
        Policy(),
        Recorder(),
        views,
        partition_of=PARTITION.__getitem__,
        owned=lambda: owned,
        flush_batch=2,
    )
    made.clock.pinned = ts(on_day(30))
    return made


async def a_shop() -> dict[bytes, bytes]:
    """Rows of seven buyers on partitions 1 and 2, as their last owner left them."""
    table: dict[bytes, bytes] = {}
    before = worker(table, {1, 2}, CountingViews())
    for n, (customer, partition) in enumerate(PARTITION.items()):
        bought = order(f"o{n}", 1_000 * (n + 1), on_day(n))
        await before.on_customer_event(customer, bought, partition)
    return table


async def test_when_a_rebalance_keeps_the_partitions_then_no_view_is_written_again() -> None:
    table, views = await a_shop(), CountingViews()
    owned = {1, 2}
    w = worker(table, owned, views)
    w.rebuild()
    await w.project_all()
    written = sum(views.flushes)
    views.flushes.clear()

    assert w.rebuild() == 7  # a rebalance that gave this worker the same partitions
    await w.project_all()
    await w.flush_views()

    assert written == 7
    assert sum(views.flushes) == 0
    assert w.index.size() == 7  # the index is read again all the same


async def test_when_a_partition_is_new_here_then_its_views_are_written_a_flush_at_a_time() -> None:
    table, views = await a_shop(), CountingViews()
    owned = {1}
    w = worker(table, owned, views)
    w.rebuild()
    await w.project_all()
    views.flushes.clear()

    owned.add(2)  # partition 2 arrives with five customers
    w.rebuild()
    await w.project_all()

    assert views.flushes == [2, 2, 1]  # flush_batch at a time: never all held at once
    assert set(views.views) == set(PARTITION)
    assert not w.dirty
    assert not w.to_project


async def test_when_a_customer_moves_before_her_turn_then_her_view_is_her_row_as_it_is_now() -> (
    None
):
    table, views = await a_shop(), CountingViews()
    w = worker(table, {1, 2}, views)
    w.rebuild()
    await w.on_customer_event("b1", order("late", 99_000, on_day(29)), 2)  # after the rebuild
    await w.on_customer_event("b1", page(on_day(29)), 2)

    await w.project_all()

    assert views.views["b1"]["lifetime_orders"] == 2
    assert len(views.views) == 7


async def test_when_a_row_is_read_for_the_index_then_it_says_what_its_decoded_state_says() -> None:
    table = await a_shop()
    tombstone = CustomerState("a9", EMPTY, Standing(), absorbed_into="b1", survivor_partition=2)
    table[b"a9"] = encode_state(tombstone, 1)
    for raw in table.values():
        state, partition = decode_state(raw)
        due = None if state.absorbed_into is not None else state.standing.next_due

        assert indexed_parts(raw) == (state.customer_id, partition, due)
    assert indexed_parts(table[b"a9"]) == ("a9", 1, None)
    assert {indexed_parts(raw)[2] is not None for raw in table.values()} == {True, False}
