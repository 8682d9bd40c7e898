"""Instructions per event, counted by valgrind: a figure this machine's noise can't move.

    python bench/instructions.py [identity|segmenter|journey] [--customers N] [--events N]

Timings here vary by ±20 % from one minute to the next (shared cores), so an A/B of a
change worth 2 % needs many alternating rounds. Instructions don't vary. This runs a
bench's in-process mode under cachegrind twice: once making the timed events without
handling them, once handling them, and prints the difference per event: what handling
one event costs, Kafka left out (and Redis's own work: only the client is counted).

- ``identity``: ``bench/identity.py --in-process``, the resolver on the real Redis.
- ``segmenter``: ``bench/segmenter.py --in-process``, the customer-events handler (rows
  in a dict, the profile view on the real Redis).
- ``journey``: ``bench/journey.py --in-process``, the customer-events handler (rows in a
  dict, the reports on the real Redis, the clock on the events' own time).

Run it on both sides of a change (a worktree's side with ``PYTHONPATH=<worktree>``): the
ratio is the change's effect. Needs ``valgrind`` (Debian: ``apt-get install valgrind``);
~1 minute a side for the defaults. PYTHONHASHSEED is fixed so both runs see the same set
and dict orders.
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
DEFAULTS = {"identity": (3_000, 10_000), "segmenter": (20_000, 20_000), "journey": (5_000, 40_000)}


def instructions(target: str, customers: int, events: int, *, build_only: bool) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(BENCH / f"{target}.py"),
        "--in-process",
        "--customers",
        str(customers),
        "--events",
        str(events),
    ] + (["--build-only"] if build_only else [])
    env = dict(os.environ, PYTHONHASHSEED="0", KIZUNA_BENCH_RESULTS="")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target", nargs="?", choices=sorted(DEFAULTS), default="identity")
    parser.add_argument("--customers", type=int)
    parser.add_argument("--events", type=int)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    customers = args.customers or DEFAULTS[args.target][0]
    events = args.events or DEFAULTS[args.target][1]
    made = instructions(args.target, customers, events, build_only=True)
    handled = instructions(args.target, customers, events, build_only=False)
    per_event = (handled - made) / events
    print(f"{args.target} in-process: {customers:,} customers, {events:,} events")
    print(f"{'instructions per event handled':40} {per_event:12,.0f}")
    note = f"{events:,} events, {customers:,} customers, valgrind (cachegrind)"
    record(args.target, "in-process instructions per event", per_event, "", note=note)


if __name__ == "__main__":
    main()
