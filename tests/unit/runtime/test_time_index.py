"""Given customers waiting for their next boundary, when the sweep runs, then exactly the
due ones come out, once, per partition — without looking at anyone else."""

from __future__ import annotations

from runtime.time_index import TimeIndex
from services.segmenter.adapters.state_codec import decode_state, encode_state
from services.segmenter.domain.handlers import on_event
from services.segmenter.domain.standing import Policy
from tests.unit.segmenter.builders import on_day, order, profile, refund, ts


def test_when_the_sweep_pops_then_only_due_customers_of_that_partition_come_out_once() -> None:
    index = TimeIndex()
    index.schedule(0, "a", 100)
    index.schedule(0, "b", 200)
    index.schedule(1, "c", 50)
    index.schedule(0, "a", 300)  # rescheduled later: the old entry is dead
    index.schedule(0, "d", 150)
    index.schedule(0, "d", None)  # unscheduled

    assert index.pop_due(0, 250) == ["b"]
    assert index.pop_due(0, 250) == []
    assert index.pop_due(1, 1_000) == ["c"]
    assert index.size() == 1


def test_when_state_is_stored_and_read_back_then_it_is_the_same_state_on_its_partition() -> None:
    outcome = on_event(None, "c1", order("o1", 1_000, on_day(0)), ts(on_day(0)), Policy())
    assert outcome.state is not None
    state = outcome.state
    for event in (
        refund("o1", 100, on_day(1)),
        refund("o2", 50, on_day(1)),
        profile(on_day(2), channel="line"),
    ):
        state = on_event(state, "c1", event, ts(on_day(2)), Policy()).state or state

    assert decode_state(encode_state(state, 3)) == (state, 3)
