"""Notifier settings (``KIZUNA_NOTIFIER_*``): providers, legal sender info, retry policy.

Only this module (and runtime/settings.py) reads the environment; everything else gets
a :class:`NotifierSettings` instance handed in.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIZUNA_NOTIFIER_", frozen=True, extra="ignore")

    # Dry run (the default for `make run`): every message goes to files in outbox_dir.
    dry_run: bool = True
    outbox_dir: str = ".local/outbox"

    # LINE Messaging API
    line_base_url: str = "https://api.line.me"
    line_channel_token: SecretStr = SecretStr("")
    # FCM HTTP v1. Production: a service account key file (JSON, as Google issues it);
    # access tokens are fetched and renewed from it. A static access token (expires in an
    # hour) serves tests and a quick trial. The key file wins when both are set.
    fcm_base_url: str = "https://fcm.googleapis.com"
    fcm_project: str = "kizuna"
    fcm_service_account_file: str | None = None
    fcm_token: SecretStr = SecretStr("")
    push_title_max_chars: int = Field(default=50, ge=1)
    push_body_max_chars: int = Field(default=150, ge=1)
    push_ttl_s: int = Field(default=86_400, ge=0, le=2_419_200)
    # SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_use_tls: bool = False
    smtp_start_tls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    http_timeout_s: float = Field(default=10.0, gt=0)

    # 特定電子メール法: who sends the mail, shown in every marketing mail.
    sender_name: str = "kizuna 茶舗"
    sender_email: str = "news@example.jp"
    sender_address: str = "〒150-0001 東京都渋谷区神宮前1-2-3"
    sender_contact: str = "support@example.jp / 03-1234-5678"
    unsubscribe_base_url: str = "http://127.0.0.1:6069/unsubscribe"
    unsubscribe_secret: SecretStr = SecretStr("change-me-in-production")

    # Exactly-once and retries
    state_ttl_s: int = Field(default=35 * 86_400, ge=60, description="How long ids are kept")
    lease_s: float = Field(default=30.0, gt=0, description="A pending send older than this crashed")
    max_attempts: int = Field(default=6, ge=1)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=600.0, gt=0)
    retry_poll_s: float = Field(default=0.5, gt=0)
    # A batch ends when its slowest send does; several rounds of ``concurrency`` sends per
    # batch keep that wait small against the batch (bench/notifier_worker.py).
    batch_size: int = Field(default=1024, ge=1)
    batch_within_s: float = Field(default=0.05, gt=0)
    # Sends in flight bound a worker by provider latency (Little's law): 256 in flight at
    # LINE's ~50 ms is ~5,000/s, above what one worker's CPU does. Redis calls of
    # concurrent sends are coalesced, and the Redis pool makes a caller wait for a
    # connection (runtime.redis), so this is not bounded by the pool; each provider host
    # gets up to this many HTTP connections.
    concurrency: int = Field(default=256, ge=1, le=1024, description="Sends in flight per worker")

    # Per-provider token buckets (requests/s; 0 = unlimited). LINE allows 2,000 req/s.
    line_rate_per_s: float = Field(default=1_500.0, ge=0)
    fcm_rate_per_s: float = Field(default=1_000.0, ge=0)
    smtp_rate_per_s: float = Field(default=50.0, ge=0)
    marketing_cap_per_day: int = Field(
        default=3,
        ge=0,
        description="Safety cap: marketing per customer in any 24 h, any channel (0 = off); "
        "journeys keep their own, stricter caps",
    )
    rate_max_wait_s: float = Field(
        default=5.0, ge=0, description="A send further out in its rate limit is scheduled"
    )

    # Consumer group liveness (a killed worker's partitions move after this long).
    session_timeout_s: float = Field(default=30.0, ge=6)


def load_notifier_settings(**overrides: object) -> NotifierSettings:
    return NotifierSettings(**overrides)  # type: ignore[arg-type]
