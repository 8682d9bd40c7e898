"""Simulator settings (``KIZUNA_SIM_*``); Kafka and namespace come from the shared Settings,
write keys and the LINE channel secret from the gateway's own settings (one source of truth)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIZUNA_SIM_", frozen=True, extra="ignore")

    gateway_url: str = Field(default="http://127.0.0.1:8080", description="The gateway's HTTP API")
    stats_file: Path = Field(
        default=Path(".local/simulator/stats.json"), description="Counts the live view reads"
    )
    metrics_urls: dict[str, str] = Field(
        default_factory=lambda: {
            "gateway": "http://127.0.0.1:8080/metrics",
            "identity": "http://127.0.0.1:6066/metrics",
            "segmenter": "http://127.0.0.1:6067/metrics",
            "journey": "http://127.0.0.1:6068/metrics",
            "notifier": "http://127.0.0.1:6069/metrics",
        },
        description="Each worker's /metrics, scraped by the live view",
    )
