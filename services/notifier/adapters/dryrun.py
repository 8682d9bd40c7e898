"""The dry-run provider for ``make run``: every message lands in files, nothing leaves.

``<outbox>/<channel>.jsonl`` gets one JSON line per message; emails are also written
as ``<outbox>/email/<notification_id>.eml`` so they open in any mail client.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from pathlib import Path

import orjson

from runtime.deadletter import utcnow
from schemas.channels import Channel
from services.notifier.adapters.messages import EmailContent, Outbound, SendResult
from services.notifier.adapters.smtp import build_email
from services.notifier.domain.retry import Verdict

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class DryRunProvider:
    def __init__(self, channel: Channel, outbox: Path, sender_name: str, sender_email: str) -> None:
        self.channel = channel
        self._outbox = outbox
        self._sender = (sender_name, sender_email)
        outbox.mkdir(parents=True, exist_ok=True)

    async def send(self, message: Outbound) -> SendResult:
        now = utcnow()
        line = {
            "at": now.isoformat(),
            "notification_id": message.notification_id,
            "customer_id": message.customer_id,
            "channel": message.channel.value,
            "address": message.address,
            "content": dataclasses.asdict(message.content),
        }
        with (self._outbox / f"{self.channel.value}.jsonl").open("ab") as out:
            out.write(orjson.dumps(line) + b"\n")
        if isinstance(message.content, EmailContent):
            self._write_eml(message, now)
        return SendResult(
            Verdict.ACCEPTED, provider_message_id=f"dry-run:{message.notification_id}"
        )

    def _write_eml(self, message: Outbound, now: datetime) -> None:
        folder = self._outbox / "email"
        folder.mkdir(exist_ok=True)
        mail = build_email(message, *self._sender, now)
        (folder / f"{_UNSAFE.sub('_', message.notification_id)}.eml").write_bytes(bytes(mail))
