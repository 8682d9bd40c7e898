"""The dry-run provider (``make run``): every message lands in the outbox, nothing leaves."""

from __future__ import annotations

import email
from email.policy import default
from pathlib import Path

import orjson

from schemas.channels import Channel
from services.notifier.adapters.dryrun import DryRunProvider
from services.notifier.adapters.messages import EmailContent, LineContent, Outbound
from services.notifier.domain.retry import Verdict


async def test_when_a_mail_is_sent_dry_then_it_is_a_json_line_and_an_eml_file(
    tmp_path: Path,
) -> None:
    provider = DryRunProvider(Channel.EMAIL, tmp_path, "絆茶舗", "news@example.jp")
    content = EmailContent("件名", "本文\n", "<p>本文</p>", "https://u.example/unsub/t")

    result = await provider.send(Outbound("n/1", "c-1", Channel.EMAIL, "a@example.jp", content))

    assert (result.verdict, result.provider_message_id) == (Verdict.ACCEPTED, "dry-run:n/1")
    (line,) = (tmp_path / "email.jsonl").read_bytes().splitlines()
    assert orjson.loads(line)["address"] == "a@example.jp"
    mail = email.message_from_bytes((tmp_path / "email" / "n_1.eml").read_bytes(), policy=default)
    assert mail["Subject"] == "件名"
    assert mail["List-Unsubscribe"] == "<https://u.example/unsub/t>"


async def test_when_line_is_sent_dry_then_only_a_json_line_is_written(tmp_path: Path) -> None:
    provider = DryRunProvider(Channel.LINE, tmp_path, "絆茶舗", "news@example.jp")
    content = LineContent(({"type": "text", "text": "こんにちは"},))

    await provider.send(Outbound("n-2", "c-1", Channel.LINE, "U1", content))

    (line,) = (tmp_path / "line.jsonl").read_bytes().splitlines()
    assert orjson.loads(line)["content"]["messages"] == [{"type": "text", "text": "こんにちは"}]
    assert not (tmp_path / "email").exists()
