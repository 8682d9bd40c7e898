"""Segmenter settings (``KIZUNA_SEGMENTER_*``): the only segmenter code that reads the env.

Shared settings (Kafka, Redis, namespace, partitions, store, business time zone) come
from :mod:`runtime.settings`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.settings import Settings
from services.segmenter.domain.calendar import BusinessCalendar
from services.segmenter.domain.scoring import CpmRules, Thresholds
from services.segmenter.domain.standing import Policy


class SegmenterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIZUNA_SEGMENTER_", frozen=True, extra="ignore")

    window_days: int = Field(default=365, ge=1)
    recency_edges_days: tuple[int, int, int, int] = (30, 90, 180, 365)
    frequency_cuts: tuple[int, int, int, int] = (2, 3, 5, 10)
    monetary_cuts_yen: tuple[int, int, int, int] = (5_000, 20_000, 50_000, 100_000)
    thresholds: Literal["fixed", "quantile"] = "fixed"
    quantile_dimensions: tuple[str, ...] = ("recency", "monetary")
    hysteresis: float = Field(default=0.05, ge=0, le=0.5)
    thresholds_refresh_seconds: float = Field(default=300.0, gt=0)
    churn_days: int = 240
    young_tenure_days: int = 90
    mature_tenure_days: int = 210
    big_spender_yen: int = 70_000
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    sweep_batch: int = Field(
        default=10_000,
        ge=1,
        description="due customers a partition sends per sweep round; with more due, the "
        "next round goes once this worker handled the last one's ticks",
    )
    input_batch: int = Field(
        default=2_000,
        ge=1,
        description="customer events per unit of work (one acknowledgement wait)",
    )
    input_batch_within_seconds: float = Field(
        default=0.02, gt=0, description="how long a unit of work waits to fill up"
    )
    state_cache: int = Field(
        default=50_000,
        ge=0,
        description="decoded customer states kept per worker (~1.4 KB each; 0: none)",
    )
    view_flush_seconds: float = Field(default=1.0, gt=0)
    view_flush_batch: int = Field(default=5_000, ge=1)
    partitioner: Literal["murmur2", "crc32"] = "murmur2"
    intake: Literal["faust", "batch"] = Field(
        default="batch",
        description=(
            "batch: confluent-kafka batches and an in-memory changelog table (~3.5x the"
            " events/s); faust: faust agents and a faust table (rocksdb:// keeps rows on disk)"
        ),
    )
    f2_within_days: int = 90

    def policy(self, settings: Settings) -> Policy:
        return Policy(
            calendar=BusinessCalendar(settings.business_timezone),
            window_days=self.window_days,
            thresholds=Thresholds(
                version=0,
                recency_edges=tuple(self.recency_edges_days),
                frequency_cuts=tuple(self.frequency_cuts),
                monetary_cuts=tuple(self.monetary_cuts_yen),
                # fixed bands do not flap: R only ages, F and M move with real orders
                hysteresis=self.hysteresis if self.thresholds == "quantile" else 0.0,
            ),
            cpm=CpmRules(
                self.churn_days,
                self.young_tenure_days,
                self.mature_tenure_days,
                self.big_spender_yen,
            ),
        )


def load_segmenter_settings() -> SegmenterSettings:
    return SegmenterSettings()
