"""The time index: per partition, when each customer next needs attention (a segment
boundary, a journey timer).

A heap of ``(due, customer_id)`` with lazy deletion plus a dict of the live due time per
customer, so scheduling is O(log n) and a sweep pops only what is due — it never scans
the table. It lives in the worker's memory and is rebuilt from the table (each row
carries ``next_due`` and its partition) after every recovery.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping


class TimeIndex:
    def __init__(self) -> None:
        self._due: dict[int, dict[str, float]] = {}
        self._heaps: dict[int, list[tuple[float, str]]] = {}

    def schedule(self, partition: int, customer_id: str, due: float | None) -> None:
        live = self._due.setdefault(partition, {})
        if due is None:
            live.pop(customer_id, None)
            return
        if live.get(customer_id) == due:
            return
        live[customer_id] = due
        heap = self._heaps.setdefault(partition, [])
        heapq.heappush(heap, (due, customer_id))
        if len(heap) > 2 * len(live) + 1024:  # drop stale entries now and then
            self.load(partition, live)

    def load(self, partition: int, entries: Mapping[str, float]) -> None:
        """Replace one partition's index in bulk (after recovery): O(n) heapify."""
        self._due[partition] = dict(entries)
        heap = [(due, customer) for customer, due in entries.items()]
        heapq.heapify(heap)
        self._heaps[partition] = heap

    def pop_due(self, partition: int, now: float, limit: int = 10_000) -> list[str]:
        """Customers of ``partition`` due at or before ``now`` (removed from the index)."""
        heap, live = self._heaps.get(partition), self._due.get(partition)
        due: list[str] = []
        while heap and live is not None and heap[0][0] <= now and len(due) < limit:
            at, customer = heapq.heappop(heap)
            if live.get(customer) == at:
                del live[customer]
                due.append(customer)
        return due

    def clear(self) -> None:
        self._due.clear()
        self._heaps.clear()

    def size(self) -> int:
        return sum(len(live) for live in self._due.values())
