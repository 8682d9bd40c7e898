"""Given a real SMTP server (aiosmtpd), when a marketing mail is rendered and sent, then
it arrives as multipart/alternative (text, then HTML) in proper Japanese encoding, with
the legal footer and the RFC 8058 one-click unsubscribe headers."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from schemas.channels import Channel
from services.notifier.adapters.messages import Outbound
from services.notifier.adapters.rendering import Renderer, Sender
from services.notifier.adapters.smtp import SmtpProvider, message_id
from services.notifier.domain.retry import Verdict
from tests.integration.conftest import free_port

SENDER = Sender(
    "絆茶舗", "news@kizuna-cha.jp", "〒150-0001 東京都渋谷区神宮前1-2-3", "03-1234-5678"
)
UNSUBSCRIBE = "https://kizuna.example/unsubscribe/abc.def"
CART = {
    "store_name": "絆茶舗 渋谷店",
    "customer_name": "山田 花子",
    "items": [{"name": "宇治抹茶 30g", "quantity": 2, "price": 2160}],
    "total": 4320,
    "coupon_code": "KIZUNA10",
    "cart_url": "https://kizuna.example/cart/c-1",
}


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse: int | None = None

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse:
            return f"{self.refuse} mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.received.append(
            (str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.content or b""))
        )
        return "250 Message accepted"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def provider(port: int) -> SmtpProvider:
    return SmtpProvider(
        host="127.0.0.1", port=port, sender_name=SENDER.name, sender_email=SENDER.email
    )


async def test_when_a_marketing_mail_is_sent_then_it_arrives_multipart_japanese_with_footer(
    inbox: tuple[Inbox, int],
) -> None:
    server, port = inbox
    content = Renderer(SENDER).render("cart_abandoned", Channel.EMAIL, CART, UNSUBSCRIBE)

    result = await provider(port).send(
        Outbound("n-42", "c-1", Channel.EMAIL, "hanako@example.jp", content)
    )

    assert result.verdict is Verdict.ACCEPTED
    (mail_from, rcpt, raw) = server.received[0]
    assert (mail_from, rcpt) == ("news@kizuna-cha.jp", ["hanako@example.jp"])
    mail = email.message_from_bytes(raw, policy=default)
    assert isinstance(mail, EmailMessage)
    assert raw.isascii(), "headers and bodies must be transfer-encoded, not raw UTF-8"
    assert mail["Subject"] == "【絆茶舗 渋谷店】カートに商品が残っています"
    assert "=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert mail["From"].addresses[0].display_name == "絆茶舗"
    assert mail["Message-ID"] == message_id("n-42", SENDER.email)
    assert mail["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.get_payload()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    for part in (text.get_content(), html.get_content()):
        for expected in ("山田 花子 様", "宇治抹茶 30g", "KIZUNA10", UNSUBSCRIBE):
            assert expected in part
        for legal in (SENDER.name, SENDER.address, SENDER.contact):
            assert legal in part
    assert "¥4,320" in text.get_content()


async def test_when_a_transactional_mail_is_sent_then_it_has_no_unsubscribe_headers(
    inbox: tuple[Inbox, int],
) -> None:
    server, port = inbox
    data = {**CART, "order_id": "A-1001"}
    content = Renderer(SENDER).render("order_confirmation", Channel.EMAIL, data, None)

    await provider(port).send(Outbound("n-43", "c-1", Channel.EMAIL, "hanako@example.jp", content))

    mail = email.message_from_bytes(server.received[0][2], policy=default)
    assert mail["List-Unsubscribe"] is None
    assert "A-1001" in mail["Subject"]


@pytest.mark.parametrize(("code", "verdict"), [(550, Verdict.GONE), (451, Verdict.RETRYABLE)])
async def test_when_the_server_refuses_the_recipient_then_5xx_is_gone_and_4xx_retried(
    inbox: tuple[Inbox, int], code: int, verdict: Verdict
) -> None:
    server, port = inbox
    server.refuse = code
    content = Renderer(SENDER).render(
        "order_confirmation", Channel.EMAIL, {**CART, "order_id": "A"}, None
    )

    result = await provider(port).send(
        Outbound("n-44", "c-1", Channel.EMAIL, "x@example.jp", content)
    )

    assert result.verdict is verdict
    assert server.received == []


async def test_when_no_server_listens_then_the_send_is_retryable() -> None:
    content = Renderer(SENDER).render(
        "order_confirmation", Channel.EMAIL, {**CART, "order_id": "A"}, None
    )

    result = await provider(free_port()).send(
        Outbound("n-45", "c-1", Channel.EMAIL, "x@example.jp", content)
    )

    assert result.verdict is Verdict.RETRYABLE
