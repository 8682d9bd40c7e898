"""Given the shop's time zone, when epoch seconds are rendered for the profile view,
then they read as that zone's local time with its offset, DST included."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.segmenter.domain.calendar import BusinessCalendar

YEAR_2000, YEAR_2100 = 946_684_800, 4_102_444_800


def test_when_tokyo_time_is_rendered_then_it_carries_plus_nine_hours() -> None:
    assert BusinessCalendar("Asia/Tokyo").iso(1_790_000_000) == "2026-09-21T23:13:20+09:00"


@pytest.mark.parametrize(
    "zone", ["Asia/Tokyo", "Asia/Kolkata", "Europe/Berlin", "America/New_York", "UTC"]
)
@settings(max_examples=200, deadline=None)
@given(st.integers(YEAR_2000, YEAR_2100))
def test_when_any_moment_is_rendered_then_it_reads_as_the_zone_itself_would_render_it(
    zone: str, ts: int
) -> None:
    expected = datetime.fromtimestamp(ts, ZoneInfo(zone)).isoformat()

    assert BusinessCalendar(zone).iso(ts) == expected
