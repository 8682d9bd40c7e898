"""Business days: epoch seconds <-> day ordinals in the shop's time zone (Asia/Tokyo)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY = 86_400


class BusinessCalendar:
    """Day arithmetic in one time zone; a fixed-offset zone (Asia/Tokyo) takes a fast path."""

    def __init__(self, timezone: str = "Asia/Tokyo") -> None:
        self.tz = ZoneInfo(timezone)
        self._offset = _fixed_offset(self.tz)
        # what isoformat() puts after the seconds in this zone, e.g. "+09:00"
        self._suffix = "" if self._offset is None else _suffix(self._offset)

    def day(self, ts: int) -> int:
        """The business day (a ``date.toordinal()``) an epoch second falls on."""
        if self._offset is not None:
            return (ts + self._offset) // _DAY + _EPOCH_ORDINAL
        return datetime.fromtimestamp(ts, self.tz).date().toordinal()

    def start(self, day: int) -> int:
        """Epoch second of local midnight that starts ``day``."""
        if self._offset is not None:
            return (day - _EPOCH_ORDINAL) * _DAY - self._offset
        local = datetime.combine(date.fromordinal(day), datetime.min.time(), self.tz)
        return int(local.timestamp())

    def end(self, day: int) -> int:
        """Last epoch second of ``day``."""
        return self.start(day + 1) - 1

    def day_of_date(self, value: date) -> int:
        return value.toordinal()

    def iso(self, ts: int) -> str:
        """``datetime.fromtimestamp(ts, tz).isoformat()``; for a fixed-offset zone put
        together from a cached date (~1.1 µs instead of ~2.4: a worker renders one per
        seen customer per view flush)."""
        if self._offset is None or type(ts) is not int:
            return datetime.fromtimestamp(ts, self.tz).isoformat()
        day, second = divmod(ts + self._offset, _DAY)
        hour, second = divmod(second, 3600)
        minute, second = divmod(second, 60)
        return f"{_date_iso(day)}T{hour:02d}:{minute:02d}:{second:02d}{self._suffix}"


def _fixed_offset(tz: ZoneInfo) -> int | None:
    """The zone's UTC offset in seconds when it never changes (no DST), else None."""
    probes = [datetime(year, month, 1, tzinfo=UTC) for year in (2000, 2020) for month in (1, 7)]
    offsets = {tz.utcoffset(probe.astimezone(tz)) or timedelta(0) for probe in probes}
    if len(offsets) != 1:
        return None
    return int(offsets.pop().total_seconds())


@lru_cache(maxsize=4096)
def _date_iso(days_since_epoch: int) -> str:
    return date.fromordinal(days_since_epoch + _EPOCH_ORDINAL).isoformat()


def _suffix(offset: int) -> str:
    return datetime(2000, 1, 1, tzinfo=timezone(timedelta(seconds=offset))).isoformat()[19:]


def epoch(value: datetime) -> int:
    """Epoch seconds of a tz-aware datetime."""
    return int(value.timestamp())


def from_epoch(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
