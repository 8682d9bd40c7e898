"""identity's own settings (``KIZUNA_IDENTITY_*``); the shared ones live in runtime.settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.identifiers import IdentifierKind
from services.identity.domain.rules import (
    DEFAULT_BLOCKED_PATTERNS,
    DEFAULT_BLOCKED_VALUES,
    Cap,
    Rules,
)


class IdentitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIZUNA_IDENTITY_", frozen=True, extra="ignore")

    unique_kinds: list[IdentifierKind] = [IdentifierKind.MEMBER_ID]
    anonymous_id_cap: int = Field(default=5, ge=1)
    anonymous_id_cap_days: int = Field(default=7, ge=1)
    email_cap: int = Field(default=10, ge=1)
    max_identifiers: int = Field(default=1000, ge=2)
    max_merges: int = Field(default=100, ge=1)
    blocked_values: list[str] = Field(default_factory=list, description="Added to the defaults")
    blocked_patterns: list[str] = Field(default_factory=list, description="Added to the defaults")
    shared_devices: list[str] = Field(default_factory=list)
    shared_device_patterns: list[str] = [r"^store-tablet-"]
    line_provider: str | None = Field(default=None, description="Namespace of bare LINE user ids")
    default_country_code: str = "81"
    batch_size: int = Field(default=500, ge=1, le=10_000)
    batch_within_seconds: float = Field(default=0.05, gt=0)
    outbox_ttl_seconds: int = Field(default=86_400, ge=60)
    index_buckets: int = Field(
        default=4096,
        ge=1,
        description="Hashes the identifier index is spread over; about identifiers / 100 "
        "keeps each one a compact listpack (10M customers: 262144). Changing it needs a rebuild.",
    )
    remembered_identifiers: int = Field(
        default=200_000,
        ge=0,
        description="Index entries a worker keeps in memory (~230-290 bytes each), read again "
        "only once another worker has written the graph; 0: none kept",
    )
    graph_namespace: str | None = Field(
        default=None, description="Redis key prefix of the graph (default: KIZUNA_NAMESPACE)"
    )
    consumer_group: str | None = Field(
        default=None, description="Run a second, independent resolver (e.g. a replay check)"
    )

    def rules(self) -> Rules:
        return Rules(
            unique_kinds=frozenset(self.unique_kinds),
            caps={
                IdentifierKind.ANONYMOUS_ID: Cap(self.anonymous_id_cap, self.anonymous_id_cap_days),
                IdentifierKind.EMAIL: Cap(self.email_cap),
            },
            max_identifiers=self.max_identifiers,
            max_merges=self.max_merges,
            blocked_values=DEFAULT_BLOCKED_VALUES | {v.lower() for v in self.blocked_values},
            blocked_patterns=DEFAULT_BLOCKED_PATTERNS + tuple(self.blocked_patterns),
            shared_devices=frozenset(self.shared_devices),
            shared_device_patterns=tuple(self.shared_device_patterns),
            default_country_code=self.default_country_code,
            line_provider=self.line_provider,
        )
