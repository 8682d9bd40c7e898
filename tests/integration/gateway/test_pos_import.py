"""The POS importer as a store's back office runs it: a Shift_JIS export with one bad row.
The bad receipt is reported by line and dead-lettered, the others arrive; importing the
same file again adds nothing downstream."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer

from runtime.settings import Settings
from schemas.codec import decode
from schemas.deadletter import DeadLetter
from schemas.events import PosPurchased
from schemas.topics import DEADLETTER, RAW_POS
from tests.integration.gateway.conftest import drain, events_of

ROOT = Path(__file__).resolve().parents[3]
HEADER = (
    "store_id,receipt_id,purchased_at,member_card,register_id,"
    "product_id,name,quantity,unit_price,amount,receipt_total,discount\n"
)
EXPORT = (
    HEADER
    + """S012,R0001,2026/11/20 10:15:00,ＰＣ０００１,2,tea-001,静岡煎茶 100g,2,"1,080",,2160,
S012,R0002,2026/11/20 10:20:00,PC0002,2,cup-203,有田焼 湯呑み,一,3300,,,
S012,R0003,2026/11/20 10:25:00,PC0003,1,tea-014,宇治抹茶 30g,1,2160,,7360,200
S012,R0003,2026/11/20 10:25:00,PC0003,1,set-900,贈答セット 松,1,5400,5400,,
"""
)


def run_import(settings: Settings, path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(
        KIZUNA_KAFKA=settings.kafka,
        KIZUNA_REDIS=settings.redis,
        KIZUNA_NAMESPACE=settings.namespace,
    )
    return subprocess.run(
        [sys.executable, "-m", "services.gateway.pos_import", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_when_a_shift_jis_export_has_a_bad_row_then_it_is_reported_and_the_rest_imported(
    settings: Settings,
    topics: list[str],
    consumer_factory: Callable[..., Consumer],
    tmp_path: Path,
) -> None:
    export = tmp_path / "pos.csv"
    export.write_bytes(EXPORT.encode("cp932"))

    first = run_import(settings, export)
    again = run_import(settings, export)

    assert first.returncode == 1, first.stderr
    assert "line 3: quantity: not a whole number: '一'" in first.stderr
    assert "imported 2 receipts (3 lines)" in first.stderr
    assert "1 receipts rejected" in first.stderr
    assert "0 receipts (0 lines); 2 already imported" in again.stderr, again.stderr
    receipts = events_of(drain(consumer_factory(RAW_POS.name(settings.namespace)), 2))
    assert all(isinstance(r, PosPurchased) for r in receipts)
    assert sorted(r.event_id for r in receipts) == ["pos:S012:R0001", "pos:S012:R0003"]
    card = next(r for r in receipts if r.event_id == "pos:S012:R0001").identifiers.pos_card
    assert card == "PC0001"
    letters = drain(consumer_factory(DEADLETTER.name(settings.namespace)), 2)
    decoded = [decode(DEADLETTER.adapter, m.value()) for m in letters]
    assert all(isinstance(letter, DeadLetter) for letter in decoded)
    assert {letter.key for letter in decoded} == {b"pos:S012:R0002"}
