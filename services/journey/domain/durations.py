"""Durations as marketers write them: ``15s``, ``30m``, ``1h``, ``3d``, ``2w``, ``1d12h``."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"^(?:\d+[smhdw])+$")


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``; a bare number is seconds. Raises ValueError with the reason."""
    if isinstance(text, bool):
        raise ValueError("a duration is text like '1h' or '3d', not true/false")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"duration {text} is negative")
        return float(text)
    compact = text.replace(" ", "").lower()
    if not _WHOLE.match(compact):
        raise ValueError(f"{text!r} is not a duration: write e.g. '90s', '30m', '1h', '3d', '2w'")
    return float(sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(compact)))
