"""Which partition owns a customer id: murmur2, as every kizuna producer partitions
keyed messages (runtime.kafka sets librdkafka's ``murmur2_random``; aiokafka/faust and
the Java clients default to murmur2)."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka.partitioner import murmur2


def partition_function(partitions: int) -> Callable[[str], int]:
    def choose(key: str) -> int:
        return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions

    return choose
