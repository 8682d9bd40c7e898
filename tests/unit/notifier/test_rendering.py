"""Every template renders on every channel; the sandbox, autoescape and strictness hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.channels import Channel
from services.notifier.adapters.messages import EmailContent, LineContent, PushContent
from services.notifier.adapters.rendering import TEMPLATES_DIR, Renderer, RenderError, Sender

SENDER = Sender("絆茶舗", "news@example.jp", "東京都渋谷区1-2-3", "03-1234-5678")
DATA = {
    "store_name": "絆茶舗",
    "store_id": "s-1",
    "order_id": "A-1",
    "coupon_code": "KIZUNA10",
    "items": [{"name": "静岡煎茶 100g", "quantity": 1, "price": 1080}],
    "total": 1080,
    "cart_url": "https://kizuna.example/cart/1",
}
TEMPLATES = sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir())
renderer = Renderer(SENDER, push_title_max=20, push_body_max=40)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.LINE, Channel.PUSH])
def test_when_any_template_renders_on_any_channel_then_it_fits_the_channel(
    template: str, channel: Channel
) -> None:
    content = renderer.render(template, channel, DATA, "https://u.example/unsub/t")
    if isinstance(content, EmailContent):
        assert content.subject
        assert "\n" not in content.subject
        assert "東京都渋谷区1-2-3" in content.text
        assert "https://u.example/unsub/t" in content.html
    elif isinstance(content, LineContent):
        assert 1 <= len(content.messages) <= 5
    else:
        assert isinstance(content, PushContent)
        assert len(content.title) <= 20
        assert len(content.body) <= 40


def test_when_data_holds_html_then_the_html_part_escapes_it() -> None:
    content = renderer.render(
        "cart_abandoned", Channel.EMAIL, {**DATA, "store_name": "<script>x</script>"}, None
    )
    assert isinstance(content, EmailContent)
    assert "<script>" not in content.html
    assert "&lt;script&gt;" in content.html


def test_when_a_variable_is_missing_then_rendering_fails_with_a_reason() -> None:
    with pytest.raises(RenderError, match="cart_url"):
        renderer.render(
            "cart_abandoned",
            Channel.EMAIL,
            {k: v for k, v in DATA.items() if k != "cart_url"},
            None,
        )


def test_when_the_template_does_not_exist_then_rendering_fails() -> None:
    with pytest.raises(RenderError):
        renderer.render("no_such_template", Channel.EMAIL, DATA, None)
    with pytest.raises(RenderError):
        renderer.render("../etc", Channel.EMAIL, DATA, None)


def test_when_the_cart_goes_to_line_then_a_flex_bubble_and_text_are_sent() -> None:
    content = renderer.render("cart_abandoned", Channel.LINE, DATA, None)
    assert isinstance(content, LineContent)
    assert [m["type"] for m in content.messages] == ["flex", "text"]
    assert content.messages[0]["altText"].startswith("カートに商品が残っています")


def test_when_data_has_the_wrong_type_then_rendering_fails_with_a_reason() -> None:
    with pytest.raises(RenderError, match="ValueError"):
        renderer.render("cart_abandoned", Channel.LINE, {**DATA, "total": "1,080円"}, None)


def test_when_a_template_reaches_for_python_internals_then_the_sandbox_stops_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "push.title.j2").write_text("{{ items.__class__.__mro__ }}")
    (tmp_path / "evil" / "push.body.j2").write_text("本文")

    with pytest.raises(RenderError, match="SecurityError"):
        Renderer(SENDER, directory=tmp_path).render("evil", Channel.PUSH, DATA, None)


def test_when_a_variant_is_absent_then_it_stays_absent_on_every_render() -> None:
    for _ in range(2):  # the second render answers from the template cache
        content = renderer.render("birthday_coupon", Channel.LINE, DATA, None)
        assert isinstance(content, LineContent)
        assert [m["type"] for m in content.messages] == ["text"]
