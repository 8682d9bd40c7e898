"""Which partition a customer id lives on: the producer's partitioner, made explicit.

Internal messages (fold requests) must reach the partition that owns a customer's
state. Every kizuna producer partitions keyed messages with murmur2 (runtime.kafka sets
librdkafka's ``murmur2_random``; Java clients and aiokafka/faust do the same), so
``murmur2`` is the default; ``crc32`` matches librdkafka's own default for foreign
producers. The choice is a setting (``KIZUNA_SEGMENTER_PARTITIONER``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Literal

from aiokafka.partitioner import murmur2

Partitioner = Literal["murmur2", "crc32"]


def partition_for(key: str, partitions: int, partitioner: Partitioner = "murmur2") -> int:
    raw = key.encode()
    if partitioner == "crc32":
        return zlib.crc32(raw) % partitions
    return int(murmur2(raw) & 0x7FFFFFFF) % partitions


def partition_function(partitioner: Partitioner, partitions: int) -> Callable[[str], int]:
    def choose(key: str) -> int:
        return partition_for(key, partitions, partitioner)

    return choose
