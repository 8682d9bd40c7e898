"""The workers' garbage collector: collected in larger batches, start-up objects frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from runtime.app import FAST_GC, tune_gc
from runtime.settings import load_settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_when_a_worker_starts_then_gc_runs_less_often_and_skips_what_startup_made() -> None:
    tune_gc(load_settings().gc_thresholds or FAST_GC)

    assert gc.get_threshold() == (50_000, 20, 100)
    assert gc.get_freeze_count() > 10_000  # modules, schemas: never walked again


def test_when_the_operator_wants_cpythons_thresholds_back_then_the_environment_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIZUNA_GC_THRESHOLDS", "[700, 10, 10]")

    assert load_settings().gc_thresholds == (700, 10, 10)
