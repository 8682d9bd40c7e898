"""Who may be sent what, where: consent rules and the channel plan.

Consent rule (特定電子メール法, applied to every channel alike):

* marketing needs the customer's current state for (channel, marketing) to be an
  explicit, recorded opt-in; never granted -> ``no_consent``, revoked -> ``opted_out``;
* transactional messages need no opt-in, but a recorded opt-out of (channel,
  transactional) stops them on that channel; a marketing opt-out does not.

Reachability: email known and not bounced; LINE user id known and following (an
unfollow or block makes it unreachable); a push token that is enabled and not dead.

Safety cap: the journeys own frequency caps (they defer a capped message); the notifier
also refuses marketing beyond ``MarketingCap`` per customer over a rolling window, on
any channel, whatever asked for it (a broadcast, a misconfigured scenario) -> ``capped``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.channels import Channel, Purpose
from schemas.notifications import SendNotification
from services.notifier.domain.ledger import (
    EMAIL_OK,
    GRANTED,
    PUSH_ON,
    REVOKED,
    consent_field,
)

NO_CONSENT = "no_consent"
OPTED_OUT = "opted_out"
UNREACHABLE = "unreachable"
CAPPED = "capped"
MARKETING_SENT = "mk_sent"  # profile field: recent marketing send times (epoch s)
NO_PROVIDER = "no_provider"


@dataclass(frozen=True)
class Profile:
    """A customer's registers, current values only (sort keys stripped)."""

    values: Mapping[str, str] = field(default_factory=dict)
    keys: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, str]) -> Profile:
        values, keys = {}, {}
        for name, encoded in raw.items():
            key, _, value = encoded.partition("\t")
            values[name], keys[name] = value, key
        return cls(values, keys)

    def marketing_sent(self) -> list[float]:
        """When recent marketing went out (written by the notifier on each send)."""
        return [float(t) for t in self.values.get(MARKETING_SENT, "").split(",") if t]

    def consent(self, channel: Channel, purpose: Purpose) -> str | None:
        return self.values.get(consent_field(channel, purpose))

    def email(self) -> str | None:
        address, _, status = self.values.get("email", "").partition("\t")
        return address if address and status == EMAIL_OK else None

    def any_email(self) -> str | None:
        return self.values.get("email", "").partition("\t")[0] or None

    def line_user(self) -> str | None:
        uid = self.values.get("line_id")
        return uid if uid and self.values.get("line_follow") == "1" else None

    def push_token(self) -> str | None:
        """The most recently seen live token (the device the customer used last)."""
        live = [
            (self.keys[name], name.removeprefix("push:"))
            for name, value in self.values.items()
            if name.startswith("push:") and value == PUSH_ON
        ]
        return max(live)[1] if live else None

    def address(self, channel: Channel) -> str | None:
        match channel:
            case Channel.EMAIL:
                return self.email()
            case Channel.LINE:
                return self.line_user()
            case Channel.PUSH:
                return self.push_token()
            case _:
                return None


def consent_block(profile: Profile, channel: Channel, purpose: Purpose) -> str | None:
    """Why consent forbids this send (``no_consent`` / ``opted_out``), or None if allowed."""
    state = profile.consent(channel, purpose)
    if purpose is Purpose.MARKETING:
        if state == GRANTED:
            return None
        return OPTED_OUT if state == REVOKED else NO_CONSENT
    return OPTED_OUT if state == REVOKED else None


@dataclass(frozen=True)
class MarketingCap:
    """At most ``sends`` marketing messages per customer in any ``window_s``."""

    sends: int
    window_s: float = 86_400.0

    def reached(self, profile: Profile, now: float) -> bool:
        recent = [t for t in profile.marketing_sent() if t > now - self.window_s]
        return len(recent) >= self.sends


@dataclass(frozen=True)
class Target:
    channel: Channel
    address: str


@dataclass(frozen=True)
class Plan:
    """The channels to try in order, or why nothing may be sent."""

    targets: tuple[Target, ...]
    suppressed: str | None = None


def plan(
    request: SendNotification,
    profile: Profile,
    available: frozenset[Channel],
    failed: frozenset[Channel] = frozenset(),
    *,
    cap: MarketingCap | None = None,
    now: float = 0.0,
) -> Plan:
    """Usable channels in the request's preference order; without fallback only the first."""
    wanted = request.channels if request.allow_fallback else request.channels[:1]
    targets: list[Target] = []
    first_reason: str | None = None
    for channel in wanted:
        if channel in failed:
            continue
        reason = _blocked(request, profile, channel, available)
        if reason is None:
            targets.append(Target(channel, profile.address(channel) or ""))
        elif first_reason is None:
            first_reason = reason
    if not targets:
        return Plan((), first_reason or UNREACHABLE)
    if request.purpose is Purpose.MARKETING and cap is not None and cap.reached(profile, now):
        return Plan((), CAPPED)  # it could go, but this customer has had enough today
    return Plan(tuple(targets))


def _blocked(
    request: SendNotification, profile: Profile, channel: Channel, available: frozenset[Channel]
) -> str | None:
    if (reason := consent_block(profile, channel, request.purpose)) is not None:
        return reason
    if channel not in available:
        return NO_PROVIDER
    return None if profile.address(channel) else UNREACHABLE
