"""Export the contract as JSON Schema files for upstream producers (``make schemas``).

python -m schemas.export           write schemas/json/*.schema.json
python -m schemas.export --check   exit 1 if the files on disk are stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from schemas.topics import CATALOGUE

OUT_DIR = Path(__file__).parent / "json"


def generated() -> dict[str, bytes]:
    """File name -> content, one schema per distinct topic value type."""
    files: dict[str, bytes] = {}
    for spec in CATALOGUE:
        name = f"{spec.value}.schema.json"
        if name in files:
            continue
        schema: dict[str, Any] = spec.adapter.json_schema(mode="validation")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": spec.value,
            **schema,
        }
        files[name] = (
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    return files


def stale(out_dir: Path = OUT_DIR) -> list[str]:
    """Names of files that are missing, different, or no longer generated."""
    wanted = generated()
    problems = [
        n
        for n, c in wanted.items()
        if not (out_dir / n).is_file() or (out_dir / n).read_bytes() != c
    ]
    extra = (
        [p.name for p in out_dir.glob("*.schema.json") if p.name not in wanted]
        if out_dir.is_dir()
        else []
    )
    return sorted(problems + extra)


def write(out_dir: Path = OUT_DIR) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = generated()
    for old in out_dir.glob("*.schema.json"):
        if old.name not in wanted:
            old.unlink()
    for name, content in wanted.items():
        (out_dir / name).write_bytes(content)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m schemas.export")
    parser.add_argument("--check", action="store_true", help="fail if files are stale")
    args = parser.parse_args(argv)
    if args.check:
        if problems := stale():
            sys.exit(f"stale JSON Schema files (run `make schemas`): {', '.join(problems)}")
        print("JSON Schema files are up to date")
        return
    write()
    print(f"wrote {len(generated())} JSON Schema files to {OUT_DIR}")


if __name__ == "__main__":
    main()
