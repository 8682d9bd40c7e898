"""``make bench``: every bench against the local stack in one run, then one report.

    python bench/run.py [--only NAME ...]

Runs the raw consume baseline first, then each stage's bench, then the end-to-end
bench, each as its own process with its output shown as it comes; every bench appends
its figures to ``bench/results/latest.jsonl`` (``KIZUNA_BENCH_RESULTS``). Then writes
``bench/results/latest.md`` (one table) and ``latest.json``. Sizes are chosen so the
whole run stays around 15-20 minutes on a 2-core machine; the journey bench keeps its
1,000,000 pending timers (an acceptance figure). A failing bench is reported as such,
the others still run, and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from report import RESULTS, BenchRun, append_run, write_report

BENCH = Path(__file__).resolve().parent
# (name, arguments, extra environment)
PLAN: list[tuple[str, list[str], dict[str, str]]] = [
    ("baseline", ["--messages", "300000", "--faust-messages", "30000"], {}),
    ("codec", ["--events", "50000", "--rounds", "5"], {}),
    ("identity", [], {"KIZUNA_IDENTITY_INDEX_BUCKETS": "512"}),
    ("gateway", ["--seconds", "15", "--concurrency", "16", "--processes", "2"], {}),
    ("segmenter", ["--events", "30000"], {}),
    ("http_client", [], {}),
    ("notifier", [], {}),
    ("notifier_worker", [], {}),
    ("journey", ["--events", "30000"], {}),
    ("e2e", ["--events", "20000", "--samples", "40", "--background", "300"], {}),
]


def run_one(name: str, args: list[str], env: dict[str, str], results: Path) -> int:
    command = [sys.executable, str(BENCH / f"{name}.py"), *args]
    shown = " ".join(
        [*(f"{k}={v}" for k, v in env.items()), f"bench/{name}.py", *map(shlex.quote, args)]
    )
    print(f"\n=== {shown}", flush=True)
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=BENCH.parent, env={**os.environ, **env, "KIZUNA_BENCH_RESULTS": str(results)}
    )
    seconds = time.monotonic() - started
    append_run(results, BenchRun(name, shown, seconds, done.returncode))
    print(f"=== {name}: {seconds:.0f} s, exit {done.returncode}", flush=True)
    return done.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", help="bench names (default: all)")
    options = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    results = RESULTS / "latest.jsonl"
    results.unlink(missing_ok=True)
    failed = [
        name
        for name, args, env in PLAN
        if (not options.only or name in options.only) and run_one(name, args, env, results)
    ]
    report = write_report(results)
    print(f"\n{report.read_text()}")
    print(f"report: {report.relative_to(BENCH.parent)} (+ latest.json)")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
