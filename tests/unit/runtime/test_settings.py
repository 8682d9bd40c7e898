"""Settings come from KIZUNA_* variables, are frozen, and refuse bad values."""

from __future__ import annotations

import pytest

from runtime.app import broker_url
from runtime.settings import Settings, load_settings


def test_when_env_is_set_then_settings_read_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIZUNA_KAFKA", "10.0.0.1:9092,10.0.0.2:9092")
    monkeypatch.setenv("KIZUNA_REDIS", "redis://cache:6379/2")
    monkeypatch.setenv("KIZUNA_PARTITIONS", "16")

    settings = load_settings()

    assert settings.kafka == "10.0.0.1:9092,10.0.0.2:9092"
    assert settings.redis == "redis://cache:6379/2"
    assert settings.partitions == 16
    assert broker_url(settings.kafka) == "kafka://10.0.0.1:9092;kafka://10.0.0.2:9092"


def test_when_nothing_is_set_then_defaults_point_at_the_local_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("KIZUNA_KAFKA", "KIZUNA_REDIS", "KIZUNA_NAMESPACE", "KIZUNA_PARTITIONS"):
        monkeypatch.delenv(name, raising=False)

    settings = Settings()

    assert settings.kafka == "127.0.0.1:19092"
    assert settings.namespace == "kizuna"
    assert settings.business_timezone == "Asia/Tokyo"


def test_when_settings_are_changed_after_load_then_it_fails() -> None:
    settings = Settings()

    with pytest.raises(ValueError, match="frozen"):
        settings.kafka = "elsewhere:9092"  # type: ignore[misc]


def test_when_a_namespace_has_illegal_characters_then_it_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIZUNA_NAMESPACE", "bad name!")

    with pytest.raises(ValueError, match="namespace"):
        load_settings()
