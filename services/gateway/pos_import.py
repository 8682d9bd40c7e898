"""Import a POS receipt export: ``python -m services.gateway.pos_import FILE``.

    python -m services.gateway.pos_import receipts.csv [--encoding auto|utf-8|shift_jis|cp932]

Streams the CSV (columns: see :mod:`services.gateway.domain.pos_csv`), turns each receipt
into a ``pos_purchased`` event on the raw POS topic, and reports every bad row as
'line N: field: problem' (the receipt is dead-lettered, the others go on). Idempotent on
(store, receipt): event_id ``pos:<store>:<receipt>``, and receipts already imported are
skipped. Exit status: 0 all imported, 1 some receipts rejected, 2 nothing could be done.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from runtime.logging import configure_logging
from runtime.redis import create_redis
from runtime.settings import Settings, load_settings
from services.gateway.adapters.dedupe import RedisSeen
from services.gateway.adapters.kafka_sink import KafkaSink
from services.gateway.domain import pos_csv
from services.gateway.ingest import (
    Candidate,
    Ingest,
    Invalid,
    KafkaUnavailable,
    original_bytes,
    utcnow,
)
from services.gateway.metrics import POS_ROWS
from services.gateway.settings import GatewaySettings

SERVICE = "gateway-pos-import"
CHUNK_RECEIPTS = 500


@dataclass
class Summary:
    receipts: int = 0
    lines: int = 0
    duplicates: int = 0
    anonymous: int = 0
    problems: list[pos_csv.Problem] = field(default_factory=list)
    rejected: int = 0


def detect_encoding(path: Path, chunk: int = 1 << 20) -> str:
    """utf-8-sig when the whole file decodes as UTF-8, else cp932 (Windows' Shift_JIS)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as handle:
        try:
            while block := handle.read(chunk):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp932"
    return "utf-8-sig"


class _Counting(io.RawIOBase):
    """A binary reader that counts bytes read, for the progress bar."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        self.read_bytes += n or 0
        return int(n or 0)


def rows(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, str]]]:
    for row in reader:
        POS_ROWS.labels("read").inc()
        yield reader.line_num, row


async def import_file(
    raw: BinaryIO,
    name: str,
    size: int,
    encoding: str,
    settings: Settings,
    gateway: GatewaySettings,
    console: Console,
) -> Summary:
    summary = Summary()
    redis = create_redis(settings)
    sink = KafkaSink(settings.kafka, gateway.request_timeout_s)
    ingest = Ingest(sink, RedisSeen(redis, settings.namespace, gateway.dedupe_ttl_s),
                    settings.namespace, service=SERVICE)  # fmt: skip
    tz = ZoneInfo(settings.business_timezone)
    try:
        with _progress(console) as progress:
            counting = _Counting(raw)
            text = io.TextIOWrapper(io.BufferedReader(counting), encoding=encoding, newline="")
            reader = csv.DictReader(text)
            missing = pos_csv.missing_columns(reader.fieldnames or [])
            if missing:
                raise SystemExit(f"{name}: missing columns {', '.join(missing)}")
            task = progress.add_task(name, total=size)
            chunk: list[pos_csv.Receipt] = []
            for receipt in pos_csv.receipts(rows(reader)):
                chunk.append(receipt)
                if len(chunk) >= CHUNK_RECEIPTS:
                    await _submit(ingest, chunk, tz, summary)
                    chunk.clear()
                    progress.update(task, completed=counting.read_bytes)
            await _submit(ingest, chunk, tz, summary)
            progress.update(task, completed=counting.read_bytes)
    finally:
        sink.close()
        await redis.aclose()
    return summary


async def _submit(
    ingest: Ingest, chunk: list[pos_csv.Receipt], tz: ZoneInfo, summary: Summary
) -> None:
    candidates: list[Candidate] = []
    invalid: list[Invalid] = []
    now = utcnow()
    for receipt in chunk:
        event = pos_csv.to_event(receipt, tz, now)
        if receipt.problems:
            invalid.append(_rejected(receipt))
            summary.problems.extend(receipt.problems)
        elif event is None:
            summary.anonymous += 1
        else:
            candidates.append(ingest.candidate(receipt.first_line, event))
    report = await ingest.submit(candidates, invalid, "pos")
    summary.lines += sum(len(r.rows) for r in chunk if r.first_line in report.produced)
    summary.receipts += report.accepted
    summary.duplicates += report.duplicates
    summary.rejected += len(report.rejected)
    POS_ROWS.labels("rejected").inc(sum(len(r.rows) for r in chunk if r.problems))


def _rejected(receipt: pos_csv.Receipt) -> Invalid:
    return Invalid(
        index=receipt.first_line,
        message_id=receipt.event_id,
        reason="invalid",
        error="\n".join(str(problem) for problem in receipt.problems),
        original=original_bytes([{"line": line, "row": row} for line, row in receipt.rows]),
    )


def _progress(console: Console) -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def report(summary: Summary, console: Console) -> int:
    for problem in summary.problems:
        console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"imported {summary.receipts} receipts ({summary.lines} lines); "
        f"{summary.duplicates} already imported; {summary.anonymous} anonymous receipts "
        f"(no member_card) skipped; {summary.rejected} receipts rejected "
        f"({len(summary.problems)} problems)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return 1 if summary.rejected else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.gateway.pos_import")
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--encoding", default="auto", choices=["auto", "utf-8", "utf-8-sig", "shift_jis", "cp932"]
    )
    args = parser.parse_args(argv)
    settings, gateway = load_settings(), GatewaySettings()
    configure_logging(SERVICE, "WARNING", settings.log_format)
    console = Console(stderr=True)
    encoding = detect_encoding(args.file) if args.encoding == "auto" else args.encoding
    size = args.file.stat().st_size
    try:
        with args.file.open("rb") as raw:
            summary = asyncio.run(
                import_file(raw, args.file.name, size, encoding, settings, gateway, console)
            )
    except KafkaUnavailable as err:
        console.print(f"Kafka unavailable, nothing more imported (re-run is safe): {err}")
        sys.exit(2)
    except UnicodeDecodeError as err:
        console.print(f"{args.file} is not {encoding}: {err}; try --encoding")
        sys.exit(2)
    except csv.Error as err:  # e.g. an unclosed quote swallowing the rest of the file
        console.print(
            f"{args.file} is not valid CSV: {err} (an unclosed quote?); "
            "receipts before it may be imported, re-run is safe once fixed",
            markup=False,
            soft_wrap=True,
        )
        sys.exit(2)
    sys.exit(report(summary, console))


if __name__ == "__main__":
    main()
