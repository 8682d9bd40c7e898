"""Journey settings (``KIZUNA_JOURNEY_*``): the only journey code that reads the env.

Shared settings (Kafka, Redis, namespace, partitions, store) come from
:mod:`runtime.settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.journey.domain.policy import Cap, Policy
from services.journey.domain.scenario import QuietHours

HERE = Path(__file__).resolve().parent


class JourneySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIZUNA_JOURNEY_", frozen=True, extra="ignore")

    scenarios_dir: Path = HERE / "scenarios"
    stores_file: Path = HERE / "stores.yaml"
    timezone: str = "Asia/Tokyo"
    global_cap_hours: float = Field(default=16.0, ge=0, description="0 = no global cap")
    global_cap_messages: int = Field(default=1, ge=1)
    email_cap_hours: float = Field(default=16.0, ge=0)
    push_cap_hours: float = Field(default=24.0, ge=0)
    line_cap_hours: float = Field(default=0.0, ge=0)
    quiet_start: str = "21:00"
    quiet_end: str = "08:00"
    quiet_action: Literal["defer", "drop"] = "defer"
    global_holdout: float = Field(default=0.05, ge=0, le=0.5)
    holdout_salt: str = "kizuna"
    shop_name: str = Field(default="絆ストア", description="store_name in every message's data")
    tick_interval_seconds: float = Field(default=0.2, gt=0)
    sweep_batch: int = Field(default=20_000, ge=1)
    input_batch: int = Field(
        default=2_000,
        ge=1,
        description="inputs per unit of work (one acknowledgement wait, ~2 ms: at 500 a"
        " worker waited ~15 % of its time; 2,000 is ~90 ms of work, as the segmenter's)",
    )
    input_batch_within_seconds: float = Field(
        default=0.02, gt=0, description="how long a unit of work waits to fill up"
    )
    intake: Literal["faust", "batch"] = Field(
        default="batch",
        description=(
            "batch: confluent-kafka batches and an in-memory changelog table; faust: faust"
            " agents and a faust table (rocksdb:// keeps rows on disk)"
        ),
    )
    clock_skew_seconds: float = Field(
        default=300.0,
        ge=0,
        description="event times this far ahead of the wall clock move the journey clock; "
        "simulations and tests with an accelerated shop clock set it high",
    )
    report_flush_seconds: float = Field(default=0.5, gt=0)
    report_flush_batch: int = Field(default=1_000, ge=1)
    why_keep: int = Field(default=50, ge=1, description="skip records kept per customer")

    def policy(self) -> Policy:
        caps = {
            channel: Cap(hours * 3600.0, 1)
            for channel, hours in (
                ("email", self.email_cap_hours),
                ("push", self.push_cap_hours),
                ("line", self.line_cap_hours),
            )
            if hours > 0
        }
        global_cap = (
            Cap(self.global_cap_hours * 3600.0, self.global_cap_messages)
            if self.global_cap_hours > 0
            else None
        )
        quiet = QuietHours.model_validate(
            {"start": self.quiet_start, "end": self.quiet_end, "action": self.quiet_action}
        )
        return Policy(
            timezone=self.timezone,
            global_cap=global_cap,
            channel_caps=caps,
            quiet_hours=quiet,
            global_holdout=self.global_holdout,
            salt=self.holdout_salt,
            template_defaults={"store_name": self.shop_name},
        )


def load_journey_settings() -> JourneySettings:
    return JourneySettings()
