"""Instructions per event, counted by valgrind: a figure this machine's noise can't move.

    python bench/instructions.py [--customers 3000] [--events 10000]

Timings here vary by ±20 % from one minute to the next (shared cores), so an A/B of a
change worth 2 % needs many alternating rounds. Instructions don't vary: this runs
``bench/identity.py --in-process`` (the resolver in this process on the real Redis; only
the client's instructions are counted) under cachegrind twice, with no timed events and
with ``--events``, and prints the difference per event. Run it on both sides of a change
(a worktree's side with ``PYTHONPATH=<worktree>``); the ratio of the two is the change's
effect on the resolver's CPU, Kafka and Redis left out. Needs ``valgrind`` (Debian:
``apt-get install valgrind``); ~40 s a side for the defaults. PYTHONHASHSEED is fixed
so both runs see the same set and dict orders.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from common import record

BENCH = Path(__file__).resolve().parent
REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(customers: int, events: int) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(BENCH / "identity.py"),
        "--in-process",
        "--customers",
        str(customers),
        "--events",
        str(events),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0", KIZUNA_BENCH_RESULTS="")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=3_000)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    base = instructions(args.customers, 0)
    total = instructions(args.customers, args.events)
    per_event = (total - base) / args.events
    print(f"identity in-process: {args.customers:,} warm customers, {args.events:,} timed events")
    print(f"{'instructions per event (resolver)':40} {per_event:12,.0f}")
    note = f"{args.events:,} events after {args.customers:,} warm customers, valgrind"
    record("identity", "in-process instructions per event", per_event, "", note=note)


if __name__ == "__main__":
    main()
