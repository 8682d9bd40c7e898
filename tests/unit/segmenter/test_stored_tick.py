"""A sweep re-scores a customer nobody decoded from her stored row's purchases and
standing alone (on_stored_tick, read_stored, restored, timely_fields): it must come to
exactly what the full path (decode, on_tick, encode, the whole view) comes to."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import RawEvent
from services.segmenter.adapters.state_codec import (
    decode_state,
    encode_state,
    facts_to_json,
    read_stored,
    restored,
)
from services.segmenter.domain.calendar import BusinessCalendar
from services.segmenter.domain.figures import Purchase, figures_of
from services.segmenter.domain.handlers import on_event, on_stored_tick, on_tick
from services.segmenter.domain.profile import profile_of, timely_fields
from services.segmenter.domain.scoring import Thresholds
from services.segmenter.domain.standing import CustomerState, Policy
from tests.unit.segmenter.builders import on_day, ts
from tests.unit.segmenter.test_merge import events

POLICIES = st.sampled_from([Policy(), Policy(thresholds=Thresholds(hysteresis=0.1))])


def lived(history: list[RawEvent], policy: Policy) -> tuple[CustomerState | None, int]:
    """The state after each event was applied at its own time, and the last of them."""
    state, clock = None, ts(on_day(0))
    for event in sorted(history, key=lambda e: e.occurred_at):
        clock = max(clock, ts(event.occurred_at))
        outcome = on_event(state, "c1", event, clock, policy)
        state = outcome.state or state
    return state, clock


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), min_size=1, max_size=10), st.integers(0, 2_000), POLICIES)
def test_when_a_stored_row_is_ticked_then_it_comes_to_what_the_full_path_does(
    history: list[RawEvent], days_later: int, policy: Policy
) -> None:
    before, clock = lived(history, policy)
    if before is None:
        return  # nothing stored: nothing to tick
    now = clock + days_later * 86_400
    raw = encode_state(before, 3)
    full = on_tick(decode_state(raw)[0], now, policy)
    row = read_stored(raw)
    if not row.bought:
        return  # the worker ticks these by the full path

    ticked = on_stored_tick(row.customer_id, row.bought, row.standing, row.last_seen, now, policy)

    assert full.state is not None
    assert ticked.changes == full.changes
    assert ticked.standing == full.state.standing
    assert restored(row, ticked.standing, 3) == encode_state(full.state, 3)  # byte for byte
    old_view = profile_of(before, clock, policy)
    updated = old_view | timely_fields(ticked.standing, ticked.figures, ticked.at, policy.calendar)
    assert updated == profile_of(full.state, now, policy)


ZONES = st.sampled_from(["Asia/Tokyo", "Europe/Berlin", "America/New_York", "UTC"])
DAYS = st.integers(739_000, 740_000)  # business days (ordinals) of 2024-2026
SECONDS = st.one_of(st.sampled_from([-1, 0, 1]), st.integers(0, 86_399))  # into a day
AGE = st.one_of(st.sampled_from([364, 365]), st.integers(-30, 800))  # of the first one


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(DAYS, SECONDS), min_size=1, max_size=6), AGE, ZONES)
def test_when_the_window_is_checked_by_its_first_second_then_it_agrees_day_by_day(
    moments: list[tuple[int, int]], today_offset: int, zone: str
) -> None:
    calendar = BusinessCalendar(zone)
    stamps = [calendar.start(day) + second for day, second in moments]
    bought = sorted(Purchase(at, 1_000 + n, "online") for n, at in enumerate(stamps))
    today = calendar.day(bought[0].at) + today_offset  # 364: the first on the window's edge
    inside = [p for p in bought if today - calendar.day(p.at) < 365]

    figures = figures_of(bought, today, calendar, 365)

    assert figures is not None
    assert figures.window_frequency == len(inside)
    assert figures.window_monetary == sum(p.net for p in inside)


@settings(max_examples=200, deadline=None)
@given(st.lists(events(), min_size=1, max_size=10), POLICIES)
def test_when_a_state_is_encoded_then_its_facts_are_the_hand_offs_and_it_decodes_back(
    history: list[RawEvent], policy: Policy
) -> None:
    """A row writes its orders as they are (named tuples, through orjson's default); the
    bytes are those of the JSON form a hand-off carries, and decode to the same state."""
    state, _ = lived(history, policy)
    assert state is not None
    row = encode_state(state, 3)
    as_handed_off = {
        "p": 3,
        "c": "c1",
        "f": facts_to_json(state.facts),
        "s": orjson.loads(row)["s"],
        "a": None,
        "sp": None,
    }
    assert row == orjson.dumps(as_handed_off)
    assert decode_state(row) == (state, 3)
