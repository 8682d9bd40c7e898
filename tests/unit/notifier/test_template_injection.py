"""A customer or product named like a template ('{{ 7*7 }}', '{% raw %}') is shown as
written: the data is never evaluated as Jinja, on any channel of any template."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.channels import Channel
from services.notifier.adapters.messages import EmailContent, LineContent, PushContent
from services.notifier.adapters.rendering import TEMPLATES_DIR, Renderer, Sender
from tests.hostile import TEMPLATE_INJECTIONS

SENDER = Sender("絆茶舗", "news@example.jp", "東京都渋谷区1-2-3", "03-1234-5678")
TEMPLATES = sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir())
renderer = Renderer(SENDER, push_title_max=500, push_body_max=500)


def data(name: str) -> dict[str, object]:
    return {
        "customer_name": name,
        "store_name": name,
        "store_id": "s-1",
        "order_id": "A-1",
        "coupon_code": "KIZUNA10",
        "items": [{"name": name, "quantity": 1, "price": 1080}],
        "total": 1080,
        "cart_url": "https://kizuna.example/cart/1",
        "expires_on": "2026-12-31",
    }


def texts(content: object) -> str:
    if isinstance(content, EmailContent):
        return content.subject + "\n" + content.text
    if isinstance(content, LineContent):
        return repr(content.messages)
    assert isinstance(content, PushContent)
    return content.title + "\n" + content.body


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.LINE, Channel.PUSH])
def test_when_a_name_is_jinja_syntax_then_every_template_shows_it_unevaluated(
    template: str, channel: Channel
) -> None:
    name = "{{ 7*7 }}{% raw %}"

    shown = texts(renderer.render(template, channel, data(name), "https://u.example/unsub/t"))

    assert "49" not in shown
    if "7*7" in shown:  # a few push variants name no one at all
        assert "{{ 7*7 }}" in shown
    else:
        assert channel is Channel.PUSH


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(TEMPLATE_INJECTIONS[:4]), st.text(alphabet="{}%#7*x ", max_size=20))
def test_when_a_name_mixes_template_delimiters_then_the_email_text_holds_it_verbatim(
    injection: str, noise: str
) -> None:
    name = (injection + noise).strip() or injection

    content = renderer.render("cart_abandoned", Channel.EMAIL, data(name), None)

    assert isinstance(content, EmailContent)
    assert " ".join(name.split()) in " ".join(content.text.split())
