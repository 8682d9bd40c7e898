"""The bench report: figures every bench recorded (JSON lines) -> latest.md + latest.json.

    python bench/report.py [bench/results/latest.jsonl]

Each events/s figure is also shown as a ratio to the confluent-kafka consume rate that
bench/baseline.py measured in the same run: on a shared, noisy machine the ratios are
the comparable part. ``bench/run.py`` (``make bench``) runs the benches, appends a
``{"run": ...}`` line per bench (command, seconds, exit code), then calls
:func:`write_report`; running this file rebuilds the report from those lines.
"""

from __future__ import annotations

import json
import math
import operator
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = ("baseline", "confluent-kafka consume()")
RATE_UNITS = {"events/s", "notifications/s"}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class BenchRun:
    """One bench process of the run: its command, wall time and exit code."""

    name: str
    command: str
    seconds: float
    returncode: int


def read_results(path: Path) -> tuple[list[dict[str, Any]], list[BenchRun]]:
    """(figure records, bench runs) from the run's JSON lines."""
    if not path.exists():
        return [], []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    runs = [BenchRun(**line["run"]) for line in lines if "run" in line]
    return [line for line in lines if "run" not in line], runs


def append_run(path: Path, run: BenchRun) -> None:
    with path.open("a", encoding="utf-8") as results:
        results.write(json.dumps({"run": asdict(run)}) + "\n")


def baseline_rate(records: list[dict[str, Any]]) -> float | None:
    for r in records:
        if (r["bench"], r["figure"]) == BASELINE and r["value"]:
            return float(r["value"])
    return None


def met(value: float | None, target: str | None) -> bool | None:
    """``">= 20000"`` against ``value``; None when there is no target or no value."""
    if not target or value is None:
        return None
    op, _, number = target.partition(" ")
    return COMPARE[op](value, float(number))


def enrich(records: list[dict[str, Any]], baseline: float | None) -> list[dict[str, Any]]:
    out = []
    for r in records:
        value = r["value"]
        ratio = value / baseline if baseline and value and r["unit"] in RATE_UNITS else None
        out.append({**r, "ratio_to_baseline": ratio, "met": met(value, r["target"])})
    return out


def number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def ratio_text(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.3g}"


def markdown(figures: list[dict[str, Any]], runs: list[BenchRun], meta: dict[str, Any]) -> str:
    baseline = meta["baseline_events_per_s"]
    lines = [
        "# kizuna bench report",
        "",
        f"Generated {meta['generated_at']} by `make bench` on {meta['cpus']} CPU(s), "
        f"git {meta['git']}; the whole run took {meta['seconds'] / 60:.1f} min.",
        "",
        "Ratio = the figure / confluent-kafka consuming the same kind of messages from the "
        f"same broker in this run ({number(baseline)} events/s). Other work shares this "
        "machine: compare ratios, not absolute figures.",
        "",
        "| stage | figure | value | unit | ratio to baseline | target | met? |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for f in figures:
        verdict = {True: "yes", False: "**no**", None: ""}[f["met"]]
        lines.append(
            f"| {f['bench']} | {f['figure']} | {number(f['value'])} | {f['unit']} | "
            f"{ratio_text(f['ratio_to_baseline'])} | {f['target'] or ''} | {verdict} |"
        )
    lines += ["", "## Notes", ""]
    noted: set[tuple[str, str]] = set()
    for f in figures:
        if f["note"] and (f["bench"], f["note"]) not in noted:
            noted.add((f["bench"], f["note"]))
            lines.append(f"- {f['bench']} / {f['figure']}: {f['note']}")
    lines += ["", "## Runs", "", "| bench | seconds | exit | command |", "|---|---:|---:|---|"]
    lines += [f"| {r.name} | {r.seconds:.0f} | {r.returncode} | `{r.command}` |" for r in runs]
    failed = [r.name for r in runs if r.returncode != 0]
    if failed:
        lines += ["", f"**Failed:** {', '.join(failed)} (their figures are missing above)."]
    return "\n".join(lines) + "\n"


def git_revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD") or "unknown"
    return revision + (" (uncommitted changes)" if git("status", "--porcelain") else "")


def write_report(results: Path) -> Path:
    records, runs = read_results(results)
    seconds = sum(r.seconds for r in runs)
    baseline = baseline_rate(records)
    figures = enrich(records, baseline)
    meta = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_revision(),
        "cpus": os.cpu_count(),
        "seconds": seconds,
        "baseline_events_per_s": baseline,
    }
    document = {**meta, "runs": [asdict(r) for r in runs], "figures": figures}
    results.parent.mkdir(parents=True, exist_ok=True)
    (results.parent / "latest.json").write_text(
        json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    report = results.parent / "latest.md"
    report.write_text(markdown(figures, runs, meta), encoding="utf-8")
    return report


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "latest.jsonl"
    print(write_report(source))
