"""Honk's GitHub adapter: the App (JWT) and its installations (short-lived tokens), over githubkit.

Every call Honk makes to GitHub goes through `GitHubApp` and the `InstallationClient`s it hands
out. One installation token per installation serves both the REST calls and git (the workspace
asks `installation_token`), refreshed five minutes before it expires and never logged. Every
answer to an installation's call updates that installation's quota (github/ratelimit.py), which
runs read through `installation_quota` to pace themselves. Every call has a deadline and every
answer a size cap (github/bounds.py): githubkit gets Honk's own `CappedTransport`.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from githubkit import AppAuthStrategy, GitHub, UnauthAuthStrategy
from githubkit.auth import BaseAuthStrategy
from githubkit.cache import BaseCacheStrategy, MemCacheStrategy
from githubkit.config import get_config

from honk_app.github.bounds import DEFAULT_BOUNDS, Bounds, CappedTransport, bounded_call
from honk_app.github.errors import GitHubError, RetryPolicy
from honk_app.github.installation import InstallationClient
from honk_app.github.models import (
    AppInfo,
    bot_login,
    present,
)
from honk_app.github.ratelimit import Quota, QuotaBook
from honk_app.http_pool import SharedTransport, tls_context

if TYPE_CHECKING:
    from githubkit import GitHubCore


TOKEN_MARGIN = timedelta(minutes=5)
TOKEN_MEMORY_S = 2 * 3600  # twice a token's lifetime
MAX_REMEMBERED_TOKENS = 1024


class _InstallationTokenAuth(httpx.Auth):
    """Adds the installation's current token to each request, minting one when needed, and
    hands each answer's headers to `observe`: httpx gives an auth flow every response, retries
    included, which makes it the one public place that sees all of an installation's answers."""

    def __init__(
        self,
        token: Callable[[], Awaitable[str]],
        observe: Callable[[httpx.Headers], None],
    ) -> None:
        self._token = token
        self._observe = observe

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"token {await self._token()}"
        response = yield request
        self._observe(response.headers)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("Honk calls GitHub asynchronously only.")


@dataclass
class _InstallationTokenStrategy(BaseAuthStrategy):
    """githubkit's hook for our token source (its own would mint a second token each hour)."""

    token: Callable[[], Awaitable[str]]
    observe: Callable[[httpx.Headers], None]

    def get_auth_flow(self, github: GitHubCore[Any]) -> httpx.Auth:
        return _InstallationTokenAuth(self.token, self.observe)


# The quota source of each client `GitHubApp.installation` handed out: InstallationClient's
# interface stays GitHub's calls only, and a client made elsewhere (a test's fake) has none.
_quota_sources: weakref.WeakKeyDictionary[InstallationClient, Callable[[], Quota | None]] = (
    weakref.WeakKeyDictionary()
)
_quota_sources_lock = threading.Lock()


def installation_quota(client: object) -> Quota | None:
    """What GitHub last said about the quota of the installation `client` acts as; None before
    any answer, or for a client `GitHubApp` did not make."""
    with _quota_sources_lock:
        source = _quota_sources.get(client) if isinstance(client, InstallationClient) else None
    return source() if source is not None else None


def _expiry(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class GitHubApp:
    """The App: its identity, its installation tokens, and a client per installation."""

    def __init__(
        self,
        *,
        app_id: int,
        private_key_pem: str,
        api_url: str,
        user_agent: str = "honk",
        cache_strategy: BaseCacheStrategy | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        bounds: Bounds = DEFAULT_BOUNDS,
    ) -> None:
        self.app_id = app_id
        self._private_key = private_key_pem
        # githubkit's default cache is one per process; a fresh one keeps Apps (and tests) apart
        self._cache = cache_strategy if cache_strategy is not None else MemCacheStrategy()
        self._bounds = bounds
        self._transport = SharedTransport()  # keep-alive across githubkit's per-call clients
        self._config = get_config(
            base_url=api_url,
            user_agent=user_agent,
            timeout=timeout_s,
            ssl_verify=tls_context(),
            async_transport=CappedTransport(self._transport, max_bytes=bounds.max_bytes),
            cache_strategy=self._cache,
            http_cache=False,  # every read must see GitHub's current state (find before create)
            auto_retry=retry if retry is not None else RetryPolicy(),
        )
        self._as_app = GitHub(AppAuthStrategy(app_id, private_key_pem), config=self._config)
        self._info: AppInfo | None = None
        self._bot_id_settled = False
        # Every token this process saw, with when it last saw it: an earlier token stays valid
        # for up to an hour after a new one is minted, and must stay redacted until it expires.
        self._tokens: dict[str, float] = {}
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}
        self.quotas = QuotaBook()  # shared by all repositories of each installation

    async def aclose(self) -> None:
        """Close the keep-alive connections this event loop holds."""
        await self._transport.close_current_loop()

    def known_secrets(self) -> list[str]:
        """Values to redact from anything Honk shows: the key and every token that may still
        be valid (a token lives an hour; each is kept two hours after it was last seen)."""
        horizon = time.monotonic() - TOKEN_MEMORY_S
        for token, seen in list(self._tokens.items()):
            if seen < horizon:
                self._tokens.pop(token, None)
        return [self._private_key, *self._tokens]

    def _remember(self, token: str) -> None:
        self._tokens.pop(token, None)  # re-inserted: the dict stays ordered by last sight
        self._tokens[token] = time.monotonic()
        while len(self._tokens) > MAX_REMEMBERED_TOKENS:  # the oldest first
            self._tokens.pop(next(iter(self._tokens)))

    def _call(self, op: str, endpoint: str) -> AbstractAsyncContextManager[None]:
        bounds = self._bounds
        return bounded_call(
            op, endpoint, self.known_secrets(), seconds=bounds.call_s, max_bytes=bounds.max_bytes
        )

    async def app_info(self) -> AppInfo:
        return await self._load_info(None)

    async def _load_info(self, installation_id: int | None) -> AppInfo:
        """GET /app once per process; the bot's user id comes from GET /users/{slug}[bot].

        That lookup uses the installation's token when one is at hand, and no credentials
        otherwise. When GitHub does not answer it (404, or a server that refuses anonymous calls)
        the id is 0; an anonymous miss is retried once with the first installation, then kept.
        """
        if self._info is not None and (self._bot_id_settled or installation_id is None):
            return self._info
        info = self._info
        if info is None:
            async with self._call("app_info", "GET /app"):
                resp = await self._as_app.rest.apps.async_get_authenticated()
                app = resp.parsed_data
            if app is None:
                raise GitHubError("GitHub answered GET /app without an App; check APP_ID.")
            slug = present(app.slug, "")
            info = AppInfo(app.id, slug, app.name, bot_login(slug), 0)
        bot_user_id = await self._bot_id(info, installation_id)
        self._bot_id_settled = bot_user_id != 0 or installation_id is not None
        self._info = AppInfo(info.id, info.slug, info.name, info.bot_login, bot_user_id)
        return self._info

    async def _bot_id(self, info: AppInfo, installation_id: int | None) -> int:
        client = (
            self._installation_github(installation_id)
            if installation_id is not None
            else GitHub(UnauthAuthStrategy(), config=self._config)
        )
        try:
            async with self._call("app_info", f"GET /users/{info.bot_login}"):
                resp = await client.rest.users.async_get_by_username(info.bot_login)
                return resp.parsed_data.id
        except GitHubError:
            return 0

    async def installation_token(self, installation_id: int) -> str:
        """A token valid for at least five more minutes, minted once and shared per installation."""
        cache = await self._cache.get_async_cache_storage()
        key = f"honk:github:app:{self.app_id}:installation:{installation_id}:token"
        if token := await cache.aget(key):
            self._remember(token)  # a shared cache may hold another process's
            return token
        loop_key = (id(asyncio.get_running_loop()), installation_id)
        lock = self._locks.setdefault(loop_key, asyncio.Lock())
        async with lock:
            if token := await cache.aget(key):
                return token
            endpoint = f"POST /app/installations/{installation_id}/access_tokens"
            async with self._call("installation_token", endpoint):
                resp = await self._as_app.rest.apps.async_create_installation_access_token(
                    installation_id
                )
                minted = resp.parsed_data
            self._remember(minted.token)
            lifetime = _expiry(minted.expires_at) - datetime.now(UTC) - TOKEN_MARGIN
            if lifetime > timedelta(0):
                await cache.aset(key, minted.token, lifetime)
            return minted.token

    def _installation_github(self, installation_id: int) -> GitHub[Any]:
        async def token() -> str:
            return await self.installation_token(installation_id)

        def observe(headers: httpx.Headers) -> None:
            self.quotas.observe(installation_id, headers)

        return GitHub(_InstallationTokenStrategy(token, observe), config=self._config)

    async def installation(self, installation_id: int) -> InstallationClient:
        info = await self._load_info(installation_id)
        client = InstallationClient(
            self._installation_github(installation_id), info, self.known_secrets, self._bounds
        )
        with _quota_sources_lock:
            _quota_sources[client] = functools.partial(self.quotas.get, installation_id)
        return client
