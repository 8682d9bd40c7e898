"""Delivering one SendNotification, exactly once: claim, decide, render, send, record.

    request ─▶ claim id (Redis) ─▶ consent + reachability plan ─▶ render ─▶ rate limit
            ─▶ provider ─▶ sent | next channel | retry later (schedule) | failed
            ─▶ state final (Redis) ─▶ outcome (Kafka) ─▶ marked reported

The rules live in ``domain/``; this layer only sequences the adapters around them.

Throughput without weaker guarantees: a batch is claimed in one Redis call (the first
request of each customer, with that customer's profile); later requests of a customer
are claimed when their turn comes, so they see what earlier ones changed (a dead push
token, say). Claims, rate-limit tokens and final states of concurrent deliveries are
coalesced into shared round trips (``adapters/coalesce.py``). Crash safety is the same
as per-message calls: an id is claimed (lease taken) before anything is sent, its final
state is durable before its outcome is emitted, and it is marked reported only after
the sink flushed. Batch claims used late are refreshed first (see ``claims.py``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.channels import Channel, Purpose
from schemas.codec import DecodeError, decode, encode
from schemas.notifications import NotificationOutcome, OutcomeStatus, SendNotification
from schemas.topics import NOTIFICATIONS_OUTCOMES, NOTIFICATIONS_REQUESTED
from services.notifier.adapters.ledger import LedgerStore, parse_profile
from services.notifier.adapters.messages import Outbound, Provider, SendResult
from services.notifier.adapters.ratelimit import RateLimiter
from services.notifier.adapters.rendering import Renderer, RenderError
from services.notifier.adapters.state import Claim, ClaimResult, NotificationStore
from services.notifier.claims import Claimed, Claims
from services.notifier.domain.ledger import dead_address
from services.notifier.domain.reach import MarketingCap, Target, plan
from services.notifier.domain.receipts import Receipt
from services.notifier.domain.retry import RetryPolicy, Step, Verdict, next_step
from services.notifier.metrics import (
    RATE_DEFERRED,
    RETRIES,
    SUPPRESSED,
    latency_for,
    outcomes_for,
    requests_for,
    sends_for,
)
from services.notifier.outcomes import OutcomeSink, dead_letter_of, outcome_of

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    store: NotificationStore
    ledger: LedgerStore
    limiter: RateLimiter
    renderer: Renderer
    providers: dict[Channel, Provider]
    sink: OutcomeSink
    unsubscribe_url: Callable[[str, Channel], str]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    cap: MarketingCap | None = None  # the safety cap on marketing per customer
    concurrency: int = 64
    gate: asyncio.Semaphore | None = None  # shared by every Delivery of one worker
    clock: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._claims = Claims(self.store, self.ledger)

    async def handle_many(self, requests: Iterable[SendNotification], origin: str) -> None:
        """Customers in parallel (bounded), each customer's requests in order; then flush."""
        by_customer: dict[str, list[SendNotification]] = defaultdict(list)
        for request in requests:
            by_customer[request.customer_id].append(request)
        if self.gate is None:
            self.gate = asyncio.Semaphore(self.concurrency)
        gate = self.gate

        customers = list(by_customer.values())
        claimed = await self._claims.batch([b[0] for b in customers], origin, self.clock())
        work = iter(zip(customers, claimed, strict=True))
        done: list[str | None] = []

        async def lane() -> None:
            # Each lane takes the next customer off the shared iterator when it is free:
            # at most ``concurrency`` tasks per batch instead of one per customer.
            for batch, first in work:
                async with gate:
                    done.append(await self.handle(batch[0], origin, first))
                    for request in batch[1:]:
                        done.append(await self.handle(request, origin))

        lanes = min(self.concurrency, len(customers))
        # Every lane ends before this returns or raises: no send of this batch is still
        # running when the caller retries the batch (Redis outage) or gives up.
        ended = await asyncio.gather(*(lane() for _ in range(lanes)), return_exceptions=True)
        for error in ended:
            if isinstance(error, BaseException):
                raise error
        await self.sink.flush()
        await self.store.mark_reported([i for i in done if i])

    async def run_due(self, limit: int) -> int:
        """Handle retries (and crashed sends) whose time has come; returns how many."""
        due: list[SendNotification] = []
        ids = await self.store.due(self.clock(), limit)
        for notification_id, raw in zip(ids, await self.store.requests_of(ids), strict=True):
            if raw is None:
                continue
            try:
                due.append(decode(NOTIFICATIONS_REQUESTED.adapter, raw))
            except DecodeError:
                log.exception("unreadable scheduled request", extra={"id": notification_id})
                await self.store.unschedule(notification_id)
        if due:
            await self.handle_many(due, "retry")
        return len(due)

    async def handle(
        self, request: SendNotification, origin: str = "request", claimed: Claimed | None = None
    ) -> str | None:
        """Deliver (or suppress) one request; returns its id when an outcome was produced."""
        requests_for(request.purpose.value, origin).inc()
        now = self.clock()
        taken = await self._claims.take(request, origin, now, claimed)
        if taken is None:
            return None  # lost the lease to another worker: it sends and reports
        claim, raw_profile = taken
        if claim.claim is Claim.FINAL:
            return await self._repeat(request, claim, origin)
        if claim.claim in (Claim.IN_FLIGHT, Claim.SCHEDULED):
            return None
        if request.expires_at is not None and request.expires_at.timestamp() <= now:
            return await self._finish(request, claim, "expired", reason="expired before sending")
        failed = frozenset(Channel(c) for c in claim.failed)
        available = frozenset(self.providers)
        route = plan(request, parse_profile(raw_profile), available, failed, cap=self.cap, now=now)
        if route.suppressed:
            SUPPRESSED.labels(route.suppressed).inc()
            return await self._finish(request, claim, "suppressed", reason=route.suppressed)
        return await self._deliver(request, claim, route.targets, set(claim.failed))

    async def _deliver(
        self,
        request: SendNotification,
        claim: ClaimResult,
        targets: tuple[Target, ...],
        failed: set[str],
    ) -> str | None:
        for index, target in enumerate(targets):
            try:
                content = self.renderer.render(
                    request.template,
                    target.channel,
                    request.data,
                    self._unsubscribe(request, target),
                )
            except RenderError as err:
                await self._dead_letter(request, f"template: {err}")
                return await self._finish(
                    request, claim, "failed", target, reason=f"template_error: {err}"
                )
            result, latency = await self._send(
                Outbound(
                    request.notification_id,
                    request.customer_id,
                    target.channel,
                    target.address,
                    content,
                )
            )
            if result.verdict is Verdict.GONE:
                await self._forget_address(request.customer_id, target)
            step = next_step(result.verdict, claim.attempt, self.policy, index < len(targets) - 1)
            if step is Step.SENT:
                reason = "provider already had it" if result.verdict is Verdict.DUPLICATE else None
                return await self._finish(request, claim, "sent", target, result, latency, reason)
            if step is Step.RETRY:
                await self._retry(request, claim, target, result, failed)
                return None
            if step is Step.DEFER:
                await self._defer(request, target, result, failed)
                return None
            failed.add(target.channel.value)
            if step is Step.FAIL:
                if result.verdict is Verdict.RETRYABLE:
                    await self._dead_letter(request, f"retries exhausted: {result.detail}")
                return await self._finish(
                    request, claim, "failed", target, result, latency, result.detail
                )
        return None  # unreachable: the last target always ends in SENT, RETRY or FAIL

    async def _send(self, message: Outbound) -> tuple[SendResult, float]:
        slot = await self.limiter.slot(message.channel.value, self.clock())
        if not slot.reserved:  # no slot within the limiter's max wait: schedule, not sleep
            return SendResult(
                Verdict.THROTTLED,
                detail=f"{message.channel.value} rate limit: next slot in {slot.wait_s:.1f}s",
                retry_after_s=slot.wait_s,
            ), 0.0
        if slot.wait_s > 0:
            await asyncio.sleep(slot.wait_s)
        started = time.perf_counter()
        try:
            result = await self.providers[message.channel].send(message)
        except Exception as err:  # a provider bug must not stop the worker: retry, then fail
            log.exception("provider raised", extra={"id": message.notification_id})
            result = SendResult(Verdict.RETRYABLE, detail=f"{type(err).__name__}: {err}")
        latency = time.perf_counter() - started
        latency_for(message.channel.value).observe(latency)
        sends_for(message.channel.value, result.verdict.value).inc()
        return result, latency

    def _unsubscribe(self, request: SendNotification, target: Target) -> str | None:
        if request.purpose is not Purpose.MARKETING or target.channel is not Channel.EMAIL:
            return None
        return self.unsubscribe_url(request.customer_id, target.channel)

    async def _retry(
        self,
        request: SendNotification,
        claim: ClaimResult,
        target: Target,
        result: SendResult,
        failed: set[str],
    ) -> None:
        delay = self.policy.delay(claim.attempt, result.retry_after_s, self.rng)
        await self.store.reschedule(
            request.notification_id, self.clock() + delay, frozenset(failed)
        )
        RETRIES.labels(target.channel.value).inc()
        log.info(
            "retry scheduled",
            extra={"id": request.notification_id, "in_s": round(delay, 2), "detail": result.detail},
        )

    async def _defer(
        self, request: SendNotification, target: Target, result: SendResult, failed: set[str]
    ) -> None:
        """Put off by our own rate limit: the send was not tried, so no attempt is used."""
        due = self.clock() + (result.retry_after_s or 1.0)
        await self.store.reschedule(request.notification_id, due, frozenset(failed), refund=True)
        RATE_DEFERRED.labels(target.channel.value).inc()

    async def _forget_address(self, customer_id: str, target: Target) -> None:
        write = dead_address(target.channel, target.address, datetime.now(UTC), "gone")
        if write is not None:
            await self.ledger.apply(customer_id, [write])

    async def _repeat(
        self, request: SendNotification, claim: ClaimResult, origin: str
    ) -> str | None:
        """A request already decided: re-report a lost outcome, else say 'duplicate'."""
        if not claim.reported and claim.outcome:
            stored = decode(NOTIFICATIONS_OUTCOMES.adapter, claim.outcome)
            await self._emit(stored, claim.outcome)
            return request.notification_id
        if origin != "request":
            return None
        reason = f"already {claim.final_state}"
        duplicate = self._outcome(request, claim, "duplicate", reason=reason)
        await self._emit(duplicate, encode(duplicate))
        return None

    async def _finish(
        self,
        request: SendNotification,
        claim: ClaimResult,
        status: OutcomeStatus,
        target: Target | None = None,
        result: SendResult | None = None,
        latency: float | None = None,
        reason: str | None = None,
    ) -> str:
        outcome = self._outcome(request, claim, status, target, result, latency, reason)
        encoded = encode(outcome)
        receipt_at = await self.store.finish(
            request.notification_id,
            status,
            encoded,
            self.ledger.profile_key(request.customer_id),
            marketing=request.purpose is Purpose.MARKETING,
            now=outcome.occurred_at.timestamp(),
        )
        await self._emit(outcome, encoded)
        if receipt_at is not None:  # the app said it arrived before we had finished
            await self._delivered(outcome, receipt_at, "receipt during the send")
        return request.notification_id

    async def confirm(self, receipt: Receipt) -> bool:
        """A delivery receipt: publish ``delivered`` once for a sent notification."""
        at = receipt.at.timestamp()
        done = await self.store.confirm(receipt.notification_id, at)
        if done.verdict == "delivered":
            sent = decode(NOTIFICATIONS_OUTCOMES.adapter, done.detail)
            await self._delivered(sent, at, receipt.via)
        elif done.verdict == "arrived":  # it timed out here, yet the phone has it
            request = decode(NOTIFICATIONS_REQUESTED.adapter, done.detail)
            await self._arrived(request, done.attempts, at, receipt.via)
        else:
            log.info(
                "receipt not applied",
                extra={"id": receipt.notification_id, "verdict": done.verdict},
            )
            return False
        await self.sink.flush()
        await self.store.mark_reported([receipt.notification_id])
        return True

    async def _arrived(self, request: SendNotification, attempts: int, at: float, via: str) -> None:
        """A push whose send timed out (its retry now called off) did reach the phone."""
        target = Target(Channel.PUSH, "")
        reason = f"receipt: {via}"
        outcome = outcome_of(request, attempts, "delivered", at, target, reason=reason)
        encoded = encode(outcome)
        await self.store.record_outcome(request.notification_id, encoded)
        await self._emit(outcome, encoded)

    async def _delivered(self, sent: NotificationOutcome, at: float, via: str) -> None:
        delivered = sent.model_copy(
            update={
                "status": "delivered",
                "reason": f"receipt: {via}",
                "occurred_at": datetime.fromtimestamp(at, UTC),
            }
        )
        await self._emit(delivered, encode(delivered))

    def _outcome(
        self,
        request: SendNotification,
        claim: ClaimResult,
        status: OutcomeStatus,
        target: Target | None = None,
        result: SendResult | None = None,
        latency: float | None = None,
        reason: str | None = None,
    ) -> NotificationOutcome:
        at = self.clock()
        return outcome_of(request, claim.attempt, status, at, target, result, latency, reason)

    async def _emit(self, outcome: NotificationOutcome, encoded: bytes) -> None:
        outcomes_for(outcome.status).inc()
        await self.sink.outcome(outcome, encoded)

    async def _dead_letter(self, request: SendNotification, error: str) -> None:
        await self.sink.dead_letter(dead_letter_of(request, error))
