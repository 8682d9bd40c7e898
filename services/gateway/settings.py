"""Gateway settings (``KIZUNA_GATEWAY_*``): write keys, LINE secret, limits.

Kafka, Redis, namespace and the web port come from the shared runtime Settings.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import Source

DEFAULT_PORT = 8080


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIZUNA_GATEWAY_", frozen=True, extra="ignore")

    write_keys: dict[str, Source] = Field(
        default_factory=dict,
        repr=False,
        description='Per-source write keys as JSON, e.g. {"wk_web_123": "web", "wk_app_9": "app"}',
    )
    line_channel_secret: SecretStr | None = Field(
        default=None, description="LINE channel secret: verifies x-line-signature"
    )
    line_provider: str = Field(
        default="line",
        pattern=r"^[a-z0-9_-]{1,32}$",
        description="Namespace of LINE user ids (one LINE provider = one id space)",
    )
    line_nonce_ttl_s: int = Field(default=24 * 3600, ge=60)
    max_request_bytes: int = Field(default=500 * 1024, ge=1024, description="As Segment: 500 KB")
    max_event_bytes: int = Field(default=32 * 1024, ge=256, description="As Segment: 32 KB")
    max_batch_events: int = Field(default=2_500, ge=1)
    request_timeout_s: float = Field(
        default=10.0, gt=0, description="Kafka must acknowledge a request's events within this"
    )
    dedupe_ttl_s: int = Field(
        default=24 * 3600,
        ge=60,
        description="messageId memory: Segment's own look-back (~24 h) covers SDK retries; a"
        " key is ~150 B, so a week at 1,000 events/s would be ~90 GB (a later retry still"
        " counts an order once, by its order id, and sends a message once, by its id)",
    )
    processes: int = Field(default=1, ge=1, le=64, description="HTTP processes (SO_REUSEPORT)")
