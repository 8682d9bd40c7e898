"""Turn settings into a ready notifier: Redis stores, providers, renderer, delivery.

Clients are made here, inside the running worker, never at import time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from runtime.redis import create_redis
from runtime.settings import Settings
from schemas.channels import Channel
from schemas.customer import CustomerEvent
from services.notifier.adapters.dryrun import DryRunProvider
from services.notifier.adapters.fcm import FcmProvider
from services.notifier.adapters.http import HttpClient
from services.notifier.adapters.ledger import LedgerStore
from services.notifier.adapters.line import LinePushProvider
from services.notifier.adapters.messages import Provider
from services.notifier.adapters.oauth import ServiceAccountToken, StaticToken, TokenProvider
from services.notifier.adapters.ratelimit import RateLimiter
from services.notifier.adapters.rendering import Renderer, Sender
from services.notifier.adapters.smtp import SmtpProvider
from services.notifier.adapters.state import NotificationStore
from services.notifier.delivery import Delivery
from services.notifier.domain.ledger import ledger_updates
from services.notifier.domain.reach import MarketingCap
from services.notifier.domain.retry import RetryPolicy
from services.notifier.metrics import CONSENT_CHANGES
from services.notifier.outcomes import OutcomeSink
from services.notifier.settings import NotifierSettings
from services.notifier.unsubscribe import Publish, Unsubscriber


def build_providers(config: NotifierSettings, http: HttpClient) -> dict[Channel, Provider]:
    """Dry run: files for every channel. Otherwise SMTP, plus LINE / FCM when configured."""
    if config.dry_run:
        outbox = Path(config.outbox_dir)
        return {
            channel: DryRunProvider(channel, outbox, config.sender_name, config.sender_email)
            for channel in (Channel.EMAIL, Channel.LINE, Channel.PUSH)
        }
    providers: dict[Channel, Provider] = {
        Channel.EMAIL: SmtpProvider(
            host=config.smtp_host,
            port=config.smtp_port,
            sender_name=config.sender_name,
            sender_email=config.sender_email,
            use_tls=config.smtp_use_tls,
            start_tls=config.smtp_start_tls,
            username=config.smtp_username,
            password=config.smtp_password.get_secret_value() if config.smtp_password else None,
            timeout_s=config.http_timeout_s,
        )
    }
    if config.line_channel_token.get_secret_value():
        providers[Channel.LINE] = LinePushProvider(
            http,
            config.line_base_url,
            config.line_channel_token.get_secret_value(),
            config.http_timeout_s,
        )
    tokens = fcm_tokens(config, http)
    if tokens is not None:
        providers[Channel.PUSH] = FcmProvider(
            http,
            config.fcm_base_url,
            config.fcm_project,
            tokens,
            config.http_timeout_s,
            config.push_ttl_s,
        )
    return providers


def fcm_tokens(config: NotifierSettings, http: HttpClient) -> TokenProvider | None:
    """From the service account key when configured (a bad key stops the worker at
    start, with the reason), else the static token, else no FCM."""
    if config.fcm_service_account_file:
        return ServiceAccountToken.from_file(
            config.fcm_service_account_file, http, config.http_timeout_s
        )
    if config.fcm_token.get_secret_value():
        return StaticToken(config.fcm_token.get_secret_value())
    return None


def build_renderer(config: NotifierSettings) -> Renderer:
    sender = Sender(
        config.sender_name, config.sender_email, config.sender_address, config.sender_contact
    )
    return Renderer(
        sender, push_title_max=config.push_title_max_chars, push_body_max=config.push_body_max_chars
    )


@dataclass
class Notifier:
    """Everything a worker needs, built once per process."""

    redis: aioredis.Redis
    http: HttpClient
    ledger: LedgerStore
    store: NotificationStore
    limiter: RateLimiter
    renderer: Renderer
    providers: dict[Channel, Provider]
    unsubscriber: Unsubscriber
    config: NotifierSettings
    gate: asyncio.Semaphore

    def delivery(self, sink: OutcomeSink) -> Delivery:
        """A delivery pipeline reporting to ``sink`` (one per consumer: agent, retry timer)."""
        return Delivery(
            store=self.store,
            ledger=self.ledger,
            limiter=self.limiter,
            renderer=self.renderer,
            providers=self.providers,
            sink=sink,
            unsubscribe_url=self.unsubscriber.url,
            policy=RetryPolicy(
                self.config.max_attempts, self.config.retry_base_s, self.config.retry_max_s
            ),
            concurrency=self.config.concurrency,
            gate=self.gate,
            cap=MarketingCap(self.config.marketing_cap_per_day)
            if self.config.marketing_cap_per_day
            else None,
        )

    async def apply_customer_event(self, item: CustomerEvent) -> None:
        writes, record = ledger_updates(item)
        await self.ledger.apply(item.customer_id, writes, record)
        if record is not None:
            CONSENT_CHANGES.labels(
                record.channel.value, record.purpose.value, record.state, record.method
            ).inc()

    async def aclose(self) -> None:
        """Close the HTTP connections and the Redis pool (the worker calls it when it stops)."""
        await self.http.aclose()
        await self.redis.aclose()


def build_notifier(settings: Settings, config: NotifierSettings, publish: Publish) -> Notifier:
    redis = create_redis(settings)
    http = HttpClient(max_connections=max(config.concurrency, 16))  # per provider host
    ledger = LedgerStore(redis, settings.namespace)
    rates = {
        Channel.LINE.value: config.line_rate_per_s,
        Channel.PUSH.value: config.fcm_rate_per_s,
        Channel.EMAIL.value: config.smtp_rate_per_s,
    }
    return Notifier(
        redis=redis,
        http=http,
        ledger=ledger,
        store=NotificationStore(redis, settings.namespace, config.lease_s, config.state_ttl_s),
        limiter=RateLimiter(redis, settings.namespace, rates, config.rate_max_wait_s),
        renderer=build_renderer(config),
        providers=build_providers(config, http),
        unsubscriber=Unsubscriber(
            ledger,
            config.unsubscribe_secret.get_secret_value().encode(),
            config.unsubscribe_base_url,
            publish,
        ),
        config=config,
        gate=asyncio.Semaphore(config.concurrency),
    )
