"""Given a heap left full of freed blocks (a bulk rebuild's garbage under one survivor),
when the worker releases free memory, then its RSS drops back instead of staying at the
peak."""

from __future__ import annotations

import pytest

from runtime.memory import _malloc_trim, release_free_memory, rss_bytes

MB = 1 << 20


@pytest.mark.skipif(_malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_when_garbage_is_freed_under_a_survivor_then_release_gives_it_back() -> None:
    blocks = [bytes(1000) + bytes([i % 256]) for i in range(200_000)]  # ~200 MB, malloc'd
    survivor = blocks[-1]  # allocated last: it pins the heap's top, as a kept entry does
    del blocks
    before = rss_bytes()

    released = release_free_memory("test")

    assert released > 100 * MB
    assert rss_bytes() < before - 100 * MB
    assert survivor[-1] == 199_999 % 256
