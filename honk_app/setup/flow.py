"""Setup mode: register Honk's GitHub App from app.yml through GitHub's manifest flow, like Probot.

On a fresh machine nothing of the App is configured. Honk's page at `/` shows a button whose form
the user's own browser POSTs to GitHub with the manifest; GitHub creates the App and sends the
browser back to `/setup/callback` with a one-hour code. Honk exchanges the code for the App's
credentials, writes them to `.env` (mode 0600, atomically) and hands them to the server, which
starts taking webhooks without a restart. This module holds the adapters: the code exchange and
the Starlette routes. The pure parts (manifest, pages, `.env` values) live in `setup_pages.py`;
quoting and writing the `.env` file itself in `env_file.py`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from honk_app.safety.secret_scan import redact
from honk_app.settings import Settings
from honk_app.setup.env_file import write_env
from honk_app.setup.pages import (
    CALLBACK_PATH,
    ConvertedApp,
    SetupError,
    check_org_name,
    env_lines_for,
    load_manifest,
    render_done_page,
    render_error_page,
    render_setup_page,
)

log = logging.getLogger(__name__)

STATE_TTL_S = 3600.0  # GitHub's manifest code lasts one hour; the state need not outlive it
MAX_OUTSTANDING_STATES = 100


# ---- adapter: the code exchange -------------------------------------------------------------
async def convert_code(api_url: str, code: str, *, http: httpx.AsyncClient) -> ConvertedApp:
    """Exchange the code GitHub sent back for the App's credentials (this call needs no auth)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", code):
        raise SetupError("The code in the link from GitHub is malformed.")
    url = f"{api_url.rstrip('/')}/app-manifests/{code}/conversions"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    try:
        response = await http.post(url, headers=headers)
    except httpx.HTTPError as exc:
        raise SetupError(
            f"Honk could not reach GitHub at {api_url} to finish the registration "
            f"({type(exc).__name__}).",
            status=502,
        ) from None
    if response.status_code in (404, 410, 422):
        raise SetupError(
            "GitHub did not accept the code: it is unknown, older than an hour or already used. "
            "Start again from the setup page.",
            status=400,
        )
    if not response.is_success:
        try:
            detail = str(response.json().get("message", ""))[:200]
        except (ValueError, AttributeError):
            detail = ""
        reason = f": {redact(detail)}" if detail else ""
        raise SetupError(
            f"GitHub answered {response.status_code} to the code exchange{reason}.", status=502
        )
    try:
        body = response.json()
    except ValueError:
        raise SetupError("GitHub's answer to the code exchange was not JSON.", status=502) from None
    return ConvertedApp.from_github(body)


# ---- adapter: the routes --------------------------------------------------------------------
def new_state() -> str:
    """An unguessable value that ties GitHub's redirect back to a page this server showed."""
    return secrets.token_urlsafe(32)


class _States:
    """States this server handed out: single use, expiring, at most `limit` outstanding."""

    def __init__(self, ttl_s: float, limit: int, clock: Callable[[], float]) -> None:
        self._expiry: dict[str, float] = {}
        self._ttl_s, self._limit, self._clock = ttl_s, limit, clock

    def issue(self) -> str:
        now = self._clock()
        self._expiry = {s: t for s, t in self._expiry.items() if t > now}
        while len(self._expiry) >= self._limit:
            del self._expiry[next(iter(self._expiry))]  # the oldest (dicts keep insertion order)
        state = new_state()
        self._expiry[state] = now + self._ttl_s
        return state

    def consume(self, state: str) -> float | None:
        """The state's expiry if it was issued and is still valid; it cannot be used again."""
        for known in list(self._expiry):
            if hmac.compare_digest(known.encode(), state.encode()):
                expiry = self._expiry.pop(known)
                return expiry if expiry > self._clock() else None
        return None

    def restore(self, state: str, expiry: float) -> None:
        self._expiry[state] = expiry

    def clear(self) -> None:
        self._expiry.clear()


_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # No scripts, no framing (the button must not be clickjacked), no foreign resources.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


class SetupFlow:
    """The setup page and GitHub's callback; `on_configured` switches the server to webhooks."""

    def __init__(
        self,
        *,
        settings: Settings,
        app_yml_text: str,
        env_path: Path,
        on_configured: Callable[[dict[str, str]], Awaitable[None]],
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        state_ttl_s: float = STATE_TTL_S,
        max_states: int = MAX_OUTSTANDING_STATES,
        setup_token: str | None = None,
    ) -> None:
        self._settings = settings
        self._app_yml_text = app_yml_text
        self._env_path = env_path
        self._on_configured = on_configured
        self._http = http
        self._setup_token = setup_token  # when set, `/` needs `?token=` (a link from the log)
        self._states = _States(state_ttl_s, max_states, clock)
        self._lock = asyncio.Lock()
        self.configured: ConvertedApp | None = None
        self._stuck: str | None = None  # credentials saved, but the switch to them failed
        # Fail at startup, not on the first page view, when app.yml or HONK_PUBLIC_URL is wrong.
        load_manifest(
            app_yml_text,
            public_url=settings.HONK_PUBLIC_URL or "http://localhost",
            webhook_path=settings.WEBHOOK_PATH,
        )
        self.routes = [
            Route("/", self.setup_page, methods=["GET"]),
            Route(CALLBACK_PATH, self.callback, methods=["GET"]),
        ]

    def _html(self, content: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(content, status_code=status, headers=_HEADERS)

    def _public_url(self, request: Request) -> str:
        if self._settings.HONK_PUBLIC_URL:
            return self._settings.HONK_PUBLIC_URL
        return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"

    async def setup_page(self, request: Request) -> HTMLResponse:
        if self.configured is not None:
            return self._html(render_done_page(self.configured, env_path=self._env_path))
        if self._stuck is not None:
            return self._html(render_error_page(self._stuck), 500)
        given = request.query_params.get("token", "")
        if self._setup_token and not hmac.compare_digest(
            given.encode(), self._setup_token.encode()
        ):
            return self._html(render_error_page(_OPEN_LOGGED_LINK), 403)
        org = request.query_params.get("org", "").strip() or None
        try:
            manifest = load_manifest(
                self._app_yml_text,
                public_url=self._public_url(request),
                webhook_path=self._settings.WEBHOOK_PATH,
            )
            check_org_name(org)
        except SetupError as exc:
            return self._html(render_error_page(str(exc)), exc.status)
        page = render_setup_page(
            manifest,
            github_url=self._settings.web_url,
            state=self._states.issue(),
            org=org,
            setup_token=self._setup_token,
        )
        return self._html(page)

    async def callback(self, request: Request) -> HTMLResponse:
        code = request.query_params.get("code", "")
        state = request.query_params.get("state", "")
        async with self._lock:  # two tabs finishing at once must not write .env twice
            expiry = self._states.consume(state) if state else None
            if expiry is None or not code:
                return self._html(render_error_page(_BAD_STATE), 400)
            try:
                app = await self._convert(code)
            except SetupError as exc:
                if exc.status >= 500:  # GitHub may not have used the code: a reload may retry
                    self._states.restore(state, expiry)
                return self._html(render_error_page(str(exc)), exc.status)
            return await self._finish(app)

    async def _convert(self, code: str) -> ConvertedApp:
        if self._http is not None:
            return await convert_code(self._settings.api_url, code, http=self._http)
        async with httpx.AsyncClient(timeout=30.0) as http:
            return await convert_code(self._settings.api_url, code, http=http)

    async def _finish(self, app: ConvertedApp) -> HTMLResponse:
        values = env_lines_for(app)
        try:
            write_env(self._env_path, values)
        except OSError as exc:
            log.error("setup: cannot write %s: %s", self._env_path, exc.strerror)
            message = (
                f"GitHub created {app.name}, but Honk could not save its credentials to "
                f"{self._env_path} ({exc.strerror or type(exc).__name__}). Fix that, delete the "
                f"App at {app.html_url}/advanced and start again."
            )
            return self._html(render_error_page(message), 500)
        log.info("setup: registered GitHub App %s (id %s) in %s", app.slug, app.id, self._env_path)
        try:
            await self._on_configured(values)
        except Exception as exc:
            log.error(
                "setup: switching to the new App failed: %s", redact(str(exc), values.values())
            )
            self._states.clear()
            self._stuck = (
                f"Honk saved the credentials of {app.name} to {self._env_path} but could not "
                "start taking webhooks with them. Restart Honk to use them."
            )
            return self._html(render_error_page(self._stuck), 500)
        self.configured = app
        self._states.clear()
        return self._html(render_done_page(app, env_path=self._env_path))


_OPEN_LOGGED_LINK = "Open the setup link that Honk wrote to its log when it started in setup mode."
_BAD_STATE = (
    "This link back from GitHub is unknown, expired or already used, so Honk changed nothing. "
    "If GitHub just created an App, delete it under Settings → Developer settings → GitHub Apps, "
    "then start again from the setup page."
)
