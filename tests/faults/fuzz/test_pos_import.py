"""A hostile POS export through the real importer: bad receipts are reported by line and
dead-lettered, good ones arrive; a file that is not CSV at all ends with a clear message
(exit 2), never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer

from runtime.settings import Settings
from schemas.topics import DEADLETTER, RAW_POS
from tests.hostile import MOJIBAKE
from tests.integration.gateway.conftest import drain, events_of
from tests.integration.gateway.test_pos_import import HEADER, run_import

ROWS = [
    "S1,R1,2026/11/20 10:00,PC1,,tea-001,{{ 7*7 }}{% raw %},1,1080,,,",
    "S1,R2,2026/11/20 10:05,PC2,,tea-001,煎茶,1,-1080,,,",
    "S1,R3,9999/12/31 23:59:59,PC3,,tea-001,煎茶,1,1080,,,",
    "S1,R4,1970/01/01 00:00,PC4,,tea-001,煎茶,1,1080,,,",
    "S1,R5,2026/11/20 10:10,PC5,,tea-001,煎茶,1,1080,,,-300",
    f"S1,R6,2026/11/20 10:15,PC6,,tea-001,{MOJIBAKE[1]},2,1080,,,",
]


def test_when_an_export_is_hostile_then_bad_receipts_are_named_and_good_ones_arrive(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    tmp_path: Path,
) -> None:
    export = tmp_path / "pos.csv"
    export.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")

    result = run_import(settings, export)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    for line, column in ((3, "unit_price"), (4, "receipt"), (5, "receipt"), (6, "discount")):
        assert f"line {line}: {column}" in result.stderr
    receipts = events_of(drain(consumer_factory(RAW_POS.name(settings.namespace)), 2))
    assert sorted(r.event_id for r in receipts) == ["pos:S1:R1", "pos:S1:R6"]
    names = {r.event_id: r.payload.items[0].product.name for r in receipts}
    assert names["pos:S1:R1"] == "{{ 7*7 }}{% raw %}"
    assert len(drain(consumer_factory(DEADLETTER.name(settings.namespace)), 4)) == 4


def test_when_an_unclosed_quote_swallows_the_file_then_the_import_stops_with_a_message(
    settings: Settings, topics: list[str], tmp_path: Path
) -> None:
    export = tmp_path / "broken.csv"
    rows = "".join(f"S1,R{n},2026/11/20 10:00,PC1,,tea,x,1,100,,,\n" for n in range(12_000))
    export.write_text(HEADER + 'S1,R0,2026/11/20 10:00,PC1,,"tea,x,1,100,,,\n' + rows)

    result = run_import(settings, export)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "is not valid CSV" in result.stderr
