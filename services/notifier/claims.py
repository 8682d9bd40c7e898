"""Claiming ids for a batch: the first request of each customer in one Redis call.

Why only the first: a customer's requests run in order, and a later one must see what
an earlier one changed (a dead push token is forgotten; a retry is scheduled), so later
requests are claimed when their turn comes (still coalesced with other customers').

A batch claim is taken at batch start but used when the customer's turn comes. If
that is more than ``FRESH_S`` (or half the lease, if shorter) later (slow providers,
rate-limit waits), it is refreshed before use: the lease is renewed only if the id is
still ours (same attempt, still pending) and consent/contacts are re-read, so neither
a stale lease nor a stale consent is ever acted on. If another worker took the id
over after our lease ran out, the refresh fails and this worker does not send.

A crash after the batch claim leaves the ids not yet sent ``pending``, exactly like a
crash mid-send: the redelivered request finds them in flight, puts them on the retry
schedule for when the lease ends, and the timer then sends each once (up to one lease
later than before batching, never twice, never lost).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.codec import encode
from schemas.notifications import SendNotification
from services.notifier.adapters.ledger import LedgerStore
from services.notifier.adapters.state import (
    Claim,
    ClaimRequest,
    ClaimResult,
    NotificationStore,
    Profile,
)

FRESH_S = 1.0  # a batch claim older than this is refreshed before use


@dataclass(frozen=True)
class Claimed:
    """A claim taken for a whole batch, with the profile read alongside and when."""

    claim: ClaimResult
    profile: Profile
    at: float


@dataclass(frozen=True)
class Claims:
    store: NotificationStore
    ledger: LedgerStore

    async def batch(
        self, requests: list[SendNotification], origin: str, now: float
    ) -> list[Claimed]:
        """Claim every request (in order, one atomic script) with its customer's profile."""
        if not requests:
            return []
        items = [
            ClaimRequest(
                r.notification_id, encode(r), now, origin, self.ledger.profile_key(r.customer_id)
            )
            for r in requests
        ]
        return [Claimed(c, p, now) for c, p in await self.store.claim_batch(items)]

    async def take(
        self, request: SendNotification, origin: str, now: float, claimed: Claimed | None
    ) -> tuple[ClaimResult, Profile] | None:
        """This request's claim and profile (claimed now unless given); None = not ours."""
        key = self.ledger.profile_key(request.customer_id)
        if claimed is None:
            return await self.store.claim_and_read(
                request.notification_id, encode(request), now, origin, key
            )
        claim, fresh_s = claimed.claim, min(FRESH_S, self.store.lease_s / 2)
        if claim.claim not in (Claim.CLAIMED, Claim.RECLAIMED) or now - claimed.at <= fresh_s:
            return claim, claimed.profile
        profile = await self.store.refresh(request.notification_id, claim.attempt, now, key)
        return None if profile is None else (claim, profile)
