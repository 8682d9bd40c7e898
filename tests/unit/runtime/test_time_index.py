"""Given customers waiting for their next boundary, when the sweep runs, then exactly the
due ones come out, once, per partition — without looking at anyone else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("schedule"),
            st.sampled_from("abcdefgh"),
            st.none() | st.integers(0, 400).map(lambda n: n / 2),
        ),
        st.tuples(st.just("pop"), st.integers(0, 40), st.integers(1, 4)),
        st.tuples(st.just("load"), st.just(""), st.none()),
    ),
    max_size=60,
)


@pytest.mark.parametrize("bucket", [0.5, 7.0, 60.0])
@settings(max_examples=300, deadline=None)
@given(ops=OPS)
def test_when_customers_are_scheduled_moved_and_popped_then_it_answers_as_a_plain_dict(
    bucket: float, ops: list[tuple[str, str, float | None]]
) -> None:
    """Against a model (a dict of due times, scanned whole): every pop returns exactly
    the earliest due customers, in due order, whatever was rescheduled, removed, popped
    or bulk-loaded before, and wherever the bucket edges fall."""
    index, model, now = TimeIndex(bucket=bucket), {}, 0.0
    for op, customer, value in ops:
        if op == "schedule":
            index.schedule(0, customer, value)
            if value is None:
                model.pop(customer, None)
            else:
                model[customer] = value
        elif op == "load":
            index.load(0, dict(model))
        else:
            now += float(customer)  # the clock only moves forward
            limit = int(value or 1)
            expected = sorted((due, c) for c, due in model.items() if due <= now)[:limit]
            assert index.pop_due(0, now, limit) == [c for _, c in expected]
            for _, c in expected:
                del model[c]
        assert index.size() == len(model)
        part = index._partitions.get(0)
        if part is not None:  # what it counts is what it holds (stale entries included)
            assert part.entries == len(part.near) + sum(map(len, part.far.values()))


def test_when_due_exactly_at_a_bucket_edge_then_it_pops_at_that_instant() -> None:
    index = TimeIndex(bucket=60.0)
    index.schedule(0, "edge", 120.0)
    index.schedule(0, "inside", 119.5)

    assert index.pop_due(0, 119.9) == ["inside"]
    assert index.pop_due(0, 120.0) == ["edge"]


def test_when_many_are_rescheduled_then_stale_entries_do_not_pile_up() -> None:
    index = TimeIndex()
    for round_ in range(20):
        for n in range(5_000):
            index.schedule(0, f"c{n}", 1_000.0 + round_ * 97 + n)
    part = index._partitions[0]

    assert index.size() == 5_000
    assert part.entries <= 2 * 5_000 + 1024


def test_when_the_bucket_is_not_positive_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        TimeIndex(bucket=0)


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
