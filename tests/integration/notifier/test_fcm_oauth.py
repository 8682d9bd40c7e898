"""Given a Google service account key whose token endpoint is a local server that checks
the signed JWT, when the FCM provider sends, then it fetches an access token once,
reuses it until shortly before it expires, renews it after, drops it when FCM answers
401, and a token endpoint that refuses makes the send retryable without calling FCM."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from schemas.channels import Channel
from services.notifier.adapters.fcm import FcmProvider
from services.notifier.adapters.http import HttpClient
from services.notifier.adapters.messages import Outbound, PushContent
from services.notifier.adapters.oauth import (
    FCM_SCOPE,
    JWT_BEARER,
    ServiceAccountToken,
    StaticToken,
)
from services.notifier.bootstrap import fcm_tokens
from services.notifier.domain.retry import Verdict
from services.notifier.settings import NotifierSettings
from tests.integration.notifier.fakes import FakeProvider

PUSH = Outbound("n-1", "c-1", Channel.PUSH, "device-1", PushContent("タイトル", "本文", None))
EMAIL = "kizuna-push@shop-prod.iam.gserviceaccount.com"


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class TokenEndpoint:
    """Checks each JWT bearer grant (signature, claims) and hands out numbered tokens."""

    public_key: rsa.RSAPublicKey
    url: str = ""
    claims: list[dict[str, Any]] = field(default_factory=list)
    refuse: bool = False
    lifetime_s: int = 3600

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == JWT_BEARER
        header, payload, signature = str(form["assertion"]).split(".")
        self.public_key.verify(  # raises when not signed by the account's key
            _b64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        assert json.loads(_b64(header))["alg"] == "RS256"
        self.claims.append(json.loads(_b64(payload)))
        await asyncio.sleep(0.05)  # so concurrent callers overlap with one refresh
        if self.refuse:
            return web.json_response({"error": "invalid_grant"}, status=400)
        number = len(self.claims)
        return web.json_response(
            {"access_token": f"ya29.token-{number}", "expires_in": self.lifetime_s}
        )


@pytest.fixture
def key_pair() -> tuple[rsa.RSAPrivateKey, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return private, pem


@pytest.fixture
async def endpoint(key_pair: tuple[rsa.RSAPrivateKey, str]) -> AsyncIterator[TokenEndpoint]:
    served = TokenEndpoint(key_pair[0].public_key())
    app = web.Application()
    app.router.add_post("/token", served.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    served.url = f"http://127.0.0.1:{port}/token"
    yield served
    await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def account_key(pem: str, token_uri: str) -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": "shop-prod",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": EMAIL,
        "token_uri": token_uri,
    }


async def test_when_sends_follow_each_other_then_one_token_serves_until_it_nearly_expires(
    key_pair: tuple[rsa.RSAPrivateKey, str],
    endpoint: TokenEndpoint,
    fake: tuple[FakeProvider, str],
    http: HttpClient,
) -> None:
    clock = Clock()
    tokens = ServiceAccountToken(account_key(key_pair[1], endpoint.url), http, 5.0, clock)
    provider = FcmProvider(http, fake[1], "shop-prod", tokens, timeout_s=5.0)

    results = await asyncio.gather(*(provider.send(PUSH) for _ in range(5)))  # cold start
    clock.now += 3600 - 301  # still fresh
    results.append(await provider.send(PUSH))
    clock.now += 2  # within five minutes of expiry: renewed
    results.append(await provider.send(PUSH))

    assert {r.verdict for r in results} == {Verdict.ACCEPTED}
    bearer = [s.headers["Authorization"] for s in fake[0].seen]
    assert bearer == ["Bearer ya29.token-1"] * 6 + ["Bearer ya29.token-2"]
    first = endpoint.claims[0]
    assert (first["iss"], first["scope"], first["aud"]) == (EMAIL, FCM_SCOPE, endpoint.url)
    assert first["exp"] - first["iat"] == 3600
    assert len(endpoint.claims) == 2


async def test_when_fcm_answers_401_then_the_token_is_dropped_and_the_retry_gets_a_new_one(
    key_pair: tuple[rsa.RSAPrivateKey, str],
    endpoint: TokenEndpoint,
    fake: tuple[FakeProvider, str],
    http: HttpClient,
) -> None:
    tokens = ServiceAccountToken(account_key(key_pair[1], endpoint.url), http, 5.0)
    provider = FcmProvider(http, fake[1], "shop-prod", tokens, timeout_s=5.0)
    fake[0].script.append("401")

    refused, retried = await provider.send(PUSH), await provider.send(PUSH)

    assert (refused.verdict, retried.verdict) == (Verdict.RETRYABLE, Verdict.ACCEPTED)
    bearer = [s.headers["Authorization"] for s in fake[0].seen]
    assert bearer == ["Bearer ya29.token-1", "Bearer ya29.token-2"]


async def test_when_the_token_endpoint_refuses_then_the_send_is_retryable_and_fcm_untouched(
    key_pair: tuple[rsa.RSAPrivateKey, str],
    endpoint: TokenEndpoint,
    fake: tuple[FakeProvider, str],
    http: HttpClient,
) -> None:
    endpoint.refuse = True
    tokens = ServiceAccountToken(account_key(key_pair[1], endpoint.url), http, 5.0)
    provider = FcmProvider(http, fake[1], "shop-prod", tokens, timeout_s=5.0)

    result = await provider.send(PUSH)

    assert result.verdict is Verdict.RETRYABLE
    assert "token endpoint answered 400" in result.detail
    assert "invalid_grant" in result.detail
    assert fake[0].seen == []


def test_when_the_key_file_is_broken_then_the_worker_is_told_why(tmp_path: Path) -> None:
    http = HttpClient()
    missing = tmp_path / "missing.json"
    with pytest.raises(ValueError, match=r"missing\.json"):
        ServiceAccountToken.from_file(str(missing), http, 5.0)
    no_key = tmp_path / "no-key.json"
    no_key.write_text(json.dumps({"client_email": EMAIL}))
    with pytest.raises(ValueError, match="lacks private_key"):
        ServiceAccountToken.from_file(str(no_key), http, 5.0)
    bad_key = tmp_path / "bad-key.json"
    bad_key.write_text(json.dumps({"client_email": EMAIL, "private_key": "not a key"}))
    with pytest.raises(ValueError, match="unreadable private key"):
        ServiceAccountToken.from_file(str(bad_key), http, 5.0)


def test_when_a_key_file_is_configured_then_it_wins_over_a_static_token(
    key_pair: tuple[rsa.RSAPrivateKey, str], tmp_path: Path
) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(account_key(key_pair[1], "http://127.0.0.1:1/token")))
    http = HttpClient()
    both = NotifierSettings(fcm_service_account_file=str(key_file), fcm_token="static")

    assert isinstance(fcm_tokens(both, http), ServiceAccountToken)
    assert isinstance(fcm_tokens(NotifierSettings(fcm_token="static"), http), StaticToken)
    assert fcm_tokens(NotifierSettings(), http) is None
