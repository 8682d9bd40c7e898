"""Codec throughput on a realistic mixed event stream.

    python bench/codec.py [--events 50000] [--rounds 5]

Prints events/s for decode+validate (bytes -> model, the edge of every consumer) and
for encode (model -> bytes), best of N rounds, plus the raw orjson parse rate on the
same bytes as a machine-local baseline: compare ratios, not absolute figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson
from common import record

from schemas.codec import decode, encode
from schemas.events import RAW_EVENT_ADAPTER
from schemas.examples import example_stream


def rate(n: int, work: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(best, median) events per second over ``rounds`` runs of ``work``."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        rates.append(n / (time.perf_counter() - start))
    return max(rates), statistics.median(rates)


def _each(work: Callable[[Any], object], items: list[Any]) -> None:
    # Results are dropped as a consumer drops them; keeping 50k models alive would make
    # the figure about the garbage collector, not the codec.
    for item in items:
        work(item)


def decode_raw(blob: bytes) -> object:
    return decode(RAW_EVENT_ADAPTER, blob)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    events = list(example_stream(args.events, seed=1))
    blobs = [encode(e) for e in events]
    size = sum(map(len, blobs)) / len(blobs)

    results = {
        "decode+validate": rate(len(blobs), lambda: _each(decode_raw, blobs), args.rounds),
        "encode": rate(len(events), lambda: _each(encode, events), args.rounds),
        "orjson.loads (baseline)": rate(
            len(blobs), lambda: _each(orjson.loads, blobs), args.rounds
        ),
    }
    baseline = results["orjson.loads (baseline)"][0]
    print(
        f"{len(events)} mixed events, {len({type(e) for e in events})} kinds, mean {size:.0f} bytes"
    )
    print(f"{'operation':32} {'best ev/s':>12} {'median ev/s':>12} {'vs orjson':>10}")
    for name, (best, median) in results.items():
        print(f"{name:32} {best:12,.0f} {median:12,.0f} {best / baseline:10.2f}")
        note = f"in-process, best of {args.rounds} (median {median:,.0f}), mean {size:.0f} B"
        record("codec", name, best, "events/s", note=note)


if __name__ == "__main__":
    main()
