"""Give memory freed by a bulk rebuild back to the operating system.

A worker rebuilding its due index (or recovering a table) allocates and frees a great
deal at once. glibc keeps freed heap for reuse instead of returning it, so the worker's
RSS stays at the rebuild's peak. ``malloc_trim(0)`` returns the free pages; on other C
libraries (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def rss_bytes() -> int:
    """This process's resident set size (Linux), else 0."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def release_free_memory(what: str) -> int:
    """Collect garbage, then hand free heap pages back to the OS; bytes of RSS released."""
    before = rss_bytes()
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    released = before - rss_bytes()
    log.info("memory returned after %s", what, extra={"released_mb": released >> 20})
    return released
