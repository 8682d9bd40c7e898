"""Settings: the only place that reads the environment (``KIZUNA_*``).

Library code receives a :class:`Settings` instance; it never looks at ``os.environ``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import DEFAULT_NAMESPACE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIZUNA_", frozen=True, extra="ignore")

    kafka: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers")
    redis: str = Field(default="redis://127.0.0.1:16379/0", description="Redis URL")
    namespace: str = Field(
        default=DEFAULT_NAMESPACE,
        pattern=r"^[a-zA-Z0-9_-]{1,64}$",
        description="Topic name prefix and consumer group prefix",
    )
    partitions: int | None = Field(
        default=None, ge=1, le=1024, description="Override the catalogue's partition counts"
    )
    store: str = Field(default="memory://", description="faust table store (rocksdb:// in prod)")
    data_dir: str = Field(default=".local/faust", description="faust data directory")
    rocksdb_block_cache_mb: int = Field(
        default=64,
        ge=1,
        description="RocksDB block cache per table partition (faust's default is 2 GB, "
        "which a recovery's full scan fills with rows the worker keeps in RAM for nothing)",
    )
    rocksdb_write_buffer_mb: int = Field(
        default=16, ge=1, description="RocksDB memtable size per table partition (faust: 64)"
    )
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    max_message_bytes: int = Field(default=1_000_000, ge=1024)
    business_timezone: str = "Asia/Tokyo"
    session_timeout_seconds: float = Field(
        default=30.0,
        ge=6,
        le=300,
        description="consumer group session: how soon a dead worker's partitions move",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop", description="the workers' event loop (uvloop: ~15 % more per core)"
    )
    gc_thresholds: tuple[int, int, int] | None = Field(
        default=None,
        description="Python's cyclic GC thresholds (gc.set_threshold); unset: the "
        "service's own (runtime.app.FAST_GC; IDENTITY_GC for identity, CPython's (700, 10, "
        "10) for journey). "
        "CPython's collect every 700 net allocations and walk the caches and indexes "
        "that live as long as the worker: half of identity's CPU went there",
    )
    profile_path: str | None = Field(
        default=None, description="Write a cProfile of the worker here when it stops"
    )


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; ``overrides`` win (used by entrypoints)."""
    return Settings(**overrides)  # type: ignore[arg-type]


def table_options(settings: Settings) -> dict[str, int]:
    """RocksDB options for every faust table (ignored by the memory store)."""
    return {
        "block_cache_size": settings.rocksdb_block_cache_mb * 1024**2,
        "write_buffer_size": settings.rocksdb_write_buffer_mb * 1024**2,
        "max_write_buffer_number": 2,
    }
