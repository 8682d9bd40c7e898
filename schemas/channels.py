"""Messaging channels and message purposes: shared by consent, journeys and delivery."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    """Messaging channels a customer can consent to and be reached on."""

    EMAIL = "email"
    LINE = "line"
    PUSH = "push"
    SMS = "sms"


class Purpose(StrEnum):
    MARKETING = "marketing"
    TRANSACTIONAL = "transactional"
