"""Email over SMTP: ``multipart/alternative`` (text then HTML), UTF-8, one-click unsubscribe.

SMTP has no idempotency key, so the choice is explicit: **at-least-once across a crash,
with a deterministic Message-ID**. The state machine marks the notification ``sent``
right after the server's 250 reply; only a crash in that sub-millisecond window makes a
restarted worker send again, and the second copy carries the same Message-ID
(``<uuid5(notification_id)@sender-domain>``) so receiving systems can collapse it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from runtime.deadletter import utcnow
from schemas.channels import Channel
from services.notifier.adapters.messages import EmailContent, Outbound, SendResult
from services.notifier.domain.retry import Verdict

MESSAGE_ID_NAMESPACE = uuid.UUID("0b8f8a3e-2f5e-5d0c-8d7e-6b697a756e61")
GONE_CODES = frozenset({550, 551, 553})


def message_id(notification_id: str, sender_email: str) -> str:
    domain = sender_email.rpartition("@")[2] or "kizuna.local"
    return f"<{uuid.uuid5(MESSAGE_ID_NAMESPACE, notification_id)}@{domain}>"


def build_email(
    message: Outbound, sender_name: str, sender_email: str, now: datetime
) -> EmailMessage:
    assert isinstance(message.content, EmailContent)
    content = message.content
    mail = EmailMessage()
    local, _, domain = sender_email.partition("@")
    mail["From"] = Address(sender_name, local, domain)
    mail["To"] = message.address
    mail["Subject"] = content.subject
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = message_id(message.notification_id, sender_email)
    mail["X-Kizuna-Notification-Id"] = message.notification_id
    if content.unsubscribe_url:
        mail["List-Unsubscribe"] = f"<{content.unsubscribe_url}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mail.set_content(content.text, charset="utf-8")
    mail.add_alternative(content.html, subtype="html", charset="utf-8")
    return mail


def classify_code(code: int) -> Verdict:
    if 400 <= code < 500:
        return Verdict.RETRYABLE
    return Verdict.GONE if code in GONE_CODES else Verdict.PERMANENT


class SmtpProvider:
    channel = Channel.EMAIL

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender_name: str,
        sender_email: str,
        use_tls: bool = False,
        start_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._host, self._port = host, port
        self._sender_name, self._sender_email = sender_name, sender_email
        self._tls, self._start_tls = use_tls, start_tls
        self._username, self._password = username, password
        self._timeout = timeout_s

    async def send(self, message: Outbound) -> SendResult:
        mail = build_email(message, self._sender_name, self._sender_email, utcnow())
        try:
            await aiosmtplib.send(
                mail,
                sender=self._sender_email,
                hostname=self._host,
                port=self._port,
                use_tls=self._tls,
                start_tls=self._start_tls or None,
                username=self._username,
                password=self._password,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as err:
            code = min((r.code for r in err.recipients), default=550)
            return SendResult(classify_code(code), detail=f"smtp recipient refused {code}")
        except aiosmtplib.SMTPResponseException as err:
            return SendResult(classify_code(err.code), detail=f"smtp {err.code} {err.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as err:
            return SendResult(Verdict.RETRYABLE, detail=f"smtp {type(err).__name__}: {err}")
        return SendResult(Verdict.ACCEPTED, provider_message_id=str(mail["Message-ID"]))
