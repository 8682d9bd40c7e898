"""OAuth2 access tokens for FCM HTTP v1.

FCM accepts only short-lived access tokens (an hour). A static token (``StaticToken``)
serves tests and a quick trial; production uses a Google service account key
(``ServiceAccountToken``): a JWT naming the account and the FCM scope, signed with the
account's private key (RS256, by google-auth), is exchanged at the key's ``token_uri``
for an access token (the JWT bearer grant, RFC 7523). The token is reused until five
minutes before it expires; callers arriving during a refresh wait for that one refresh.
When FCM answers 401 the token is dropped and the next send fetches a new one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

import orjson
from google.auth import crypt, jwt

from services.notifier.adapters.http import HttpClient, HttpError

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH_EARLY_S = 300.0
ASSERTION_LIFETIME_S = 3600


class TokenError(Exception):
    """No access token could be had (token endpoint unreachable or refusing)."""


class TokenProvider(Protocol):
    """Hands out an OAuth2 access token."""

    async def token(self) -> str: ...

    def invalidate(self) -> bool:
        """Drop the token (the provider refused it); True if a new one can be fetched."""
        ...


class StaticToken:
    def __init__(self, value: str) -> None:
        self._value = value

    async def token(self) -> str:
        return self._value

    def invalidate(self) -> bool:
        return False  # the same token again: refused again


class ServiceAccountToken:
    def __init__(
        self,
        key: Mapping[str, str],
        http: HttpClient,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``key``: a service account key as Google issues it (JSON: ``client_email``,
        ``private_key``, ``private_key_id``, ``token_uri``)."""
        missing = {"client_email", "private_key"} - set(key)
        if missing:
            raise ValueError(f"service account key lacks {', '.join(sorted(missing))}")
        try:
            self._signer = crypt.RSASigner.from_service_account_info(key)
        except ValueError as err:
            raise ValueError(f"service account key: unreadable private key ({err})") from err
        self._email = key["client_email"]
        self._token_uri = key.get("token_uri") or GOOGLE_TOKEN_URI
        self._http = http
        self._timeout_s = timeout_s
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def from_file(cls, path: str, http: HttpClient, timeout_s: float) -> ServiceAccountToken:
        try:
            key = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as err:
            raise ValueError(f"service account key {path}: {err}") from err
        return cls(key, http, timeout_s)

    async def token(self) -> str:
        if (token := self._fresh()) is not None:
            return token
        async with self._lock:  # one refresh; the others wait for it
            if (token := self._fresh()) is not None:
                return token
            return await self._refresh()

    def invalidate(self) -> bool:
        self._token = None
        return True

    def _fresh(self) -> str | None:
        if self._token is not None and self._clock() < self._expires_at - REFRESH_EARLY_S:
            return self._token
        return None

    async def _refresh(self) -> str:
        now = int(self._clock())
        claims = {
            "iss": self._email,
            "scope": FCM_SCOPE,
            "aud": self._token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        assertion = jwt.encode(self._signer, claims).decode()
        form = urlencode({"grant_type": JWT_BEARER, "assertion": assertion}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            answer = await self._http.post(self._token_uri, form, headers, self._timeout_s)
        except (HttpError, TimeoutError) as err:
            raise TokenError(f"token endpoint {self._token_uri}: {err or 'timeout'}") from err
        if answer.status != 200:
            shown = answer.body[:200].decode(errors="replace")
            raise TokenError(f"token endpoint answered {answer.status}: {shown}")
        try:
            granted = orjson.loads(answer.body)
            token, lifetime = str(granted["access_token"]), float(granted.get("expires_in", 3600))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise TokenError(f"token endpoint: unreadable answer ({err})") from err
        self._token, self._expires_at = token, now + lifetime
        return token
