"""Setup mode: register Honk's GitHub App from app.yml through GitHub's manifest flow, like Probot.

On a fresh machine nothing of the App is configured. Honk's page at `/` shows a button whose form
the user's own browser POSTs to GitHub with the manifest; GitHub creates the App and sends the
browser back to `/setup/callback` with a one-hour code. Honk exchanges the code for the App's
credentials, writes them to `.env` (mode 0600, atomically) and hands them to the server, which
starts taking webhooks without a restart. The page that says so asks for the Anthropic API key
last, and saves it the same way. This module holds the adapters: app.yml, the code exchange and
the Starlette routes. The pure parts (manifest, pages, `.env` values) live in `pages.py`, who may
use the pages in `access.py`, quoting and writing the `.env` file itself in `env_file.py`.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.resources
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl, quote

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from honk_app.safety.secret_scan import redact
from honk_app.settings import Settings
from honk_app.setup.access import COOKIE, Admit, SetupAccess
from honk_app.setup.env_file import write_env
from honk_app.setup.pages import (
    CALLBACK_PATH,
    KEY_PATH,
    ConvertedApp,
    KeyStep,
    SetupError,
    check_anthropic_key,
    check_org_name,
    env_lines_for,
    load_manifest,
    render_done_page,
    render_error_page,
    render_refused_page,
    render_setup_page,
)

log = logging.getLogger(__name__)

STATE_TTL_S = 3600.0  # GitHub's manifest code lasts one hour; the state need not outlive it
MAX_OUTSTANDING_STATES = 100


# ---- adapter: app.yml ----------------------------------------------------------------------
def read_app_yml(beside: Path) -> tuple[str, str]:
    """The manifest's text and where it came from: an `app.yml` beside the `.env` file wins (as
    Probot reads the one in its directory), else the one shipped inside the package, so an
    installed wheel needs no source tree."""
    own = beside / "app.yml"
    if own.is_file():
        return own.read_text(encoding="utf-8"), str(own)
    shipped = importlib.resources.files("honk_app.setup").joinpath("app.yml")
    return shipped.read_text(encoding="utf-8"), "the app.yml shipped with Honk"


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
    """The setup page, GitHub's callback and the Anthropic key; `on_configured` switches the
    server to webhooks, `on_anthropic_key` lets its runs use the key just saved."""

    def __init__(
        self,
        *,
        settings: Settings,
        app_yml_text: str,
        env_path: Path,
        on_configured: Callable[[dict[str, str]], Awaitable[None]],
        on_anthropic_key: Callable[[], Awaitable[None]] | None = None,
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
        self._on_anthropic_key = on_anthropic_key
        self._http = http
        # When a token is set, the pages need the link from the log, once (see access.py).
        self.access = SetupAccess(setup_token)
        self._states = _States(state_ttl_s, max_states, clock)
        self._lock = asyncio.Lock()
        self.configured: ConvertedApp | None = None
        self._stuck: str | None = None  # credentials saved, but the switch to them failed
        key = settings.ANTHROPIC_API_KEY
        self._key_set = key is not None and bool(key.get_secret_value())
        # Fail at startup, not on the first page view, when app.yml or HONK_PUBLIC_URL is wrong.
        load_manifest(
            app_yml_text,
            public_url=settings.HONK_PUBLIC_URL or "http://localhost",
            webhook_path=settings.WEBHOOK_PATH,
        )
        self.routes = [
            Route("/", self.setup_page, methods=["GET"]),
            Route(CALLBACK_PATH, self.callback, methods=["GET"]),
            Route(KEY_PATH, self.save_anthropic_key, methods=["POST"]),
        ]

    def _html(self, content: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(content, status_code=status, headers=_HEADERS)

    def _public_url(self, request: Request) -> str:
        if self._settings.HONK_PUBLIC_URL:
            return self._settings.HONK_PUBLIC_URL
        return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"

    def _done(
        self, app: ConvertedApp, *, problem: str | None = None, status: int = 200
    ) -> Response:
        key = KeyStep(self._key_set, form_key=self.access.form_key, problem=problem)
        return self._html(render_done_page(app, env_path=self._env_path, key=key), status)

    def _clean_redirect(self, request: Request, session: str | None) -> Response:
        """Drop the token from the address bar (and history); keep a chosen organization."""
        org = request.query_params.get("org", "").strip()
        response = RedirectResponse(
            "/" + (f"?org={quote(org, safe='')}" if org else ""), 303, headers=_HEADERS
        )
        if session is not None:
            response.set_cookie(
                COOKIE,
                session,
                httponly=True,
                samesite="strict",
                secure=self._public_url(request).startswith("https://"),
            )
        return response

    async def setup_page(self, request: Request) -> Response:
        admit = self.access.admit(
            cookie=request.cookies.get(COOKIE), token=request.query_params.get("token")
        )
        if admit is Admit.REFUSE:
            return self._html(render_refused_page(), 403)
        if admit is not Admit.SERVE:
            new = self.access.session if admit is Admit.NEW_SESSION else None
            return self._clean_redirect(request, new)
        if self.configured is not None:
            return self._done(self.configured)
        if self._stuck is not None:
            return self._html(render_error_page(self._stuck), 500)
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
            manifest, github_url=self._settings.web_url, state=self._states.issue(), org=org
        )
        return self._html(page)

    async def callback(self, request: Request) -> Response:
        # No cookie check: the browser comes from GitHub, so the Strict cookie is not sent; the
        # state, handed only to the session's browser and good once, stands in for it.
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

    async def save_anthropic_key(self, request: Request) -> Response:
        """The done page's last step: the key goes to .env like the App's, then to the runs."""
        form = await _read_form(request)
        if form is None:
            return self._html(render_error_page(_BAD_FORM), 400)
        if not self.access.may_post(
            cookie=request.cookies.get(COOKIE), form_key=form.get("form_key", "")
        ):
            return self._html(render_refused_page(), 403)
        if self.configured is None:
            return self._html(render_error_page(_NOT_YET), 409)
        key, problem = check_anthropic_key(form.get("anthropic_api_key", ""))
        if problem is not None:
            return self._done(self.configured, problem=problem, status=400)
        async with self._lock:
            try:
                write_env(self._env_path, {"ANTHROPIC_API_KEY": key}, header=_KEY_HEADER)
            except OSError as exc:
                log.error("setup: cannot write %s: %s", self._env_path, exc.strerror)
                reason = exc.strerror or type(exc).__name__
                message = f"Honk could not save the key to {self._env_path} ({reason})."
                return self._html(render_error_page(message), 500)
            self._key_set = True
            log.info("setup: saved ANTHROPIC_API_KEY in %s", self._env_path)
            if self._on_anthropic_key is not None:
                try:
                    await self._on_anthropic_key()
                except Exception as exc:
                    log.error("setup: using the new key failed: %s", redact(str(exc), [key]))
                    message = (
                        f"Honk saved the key to {self._env_path} but could not hand it to its "
                        "runs. Restart Honk to use it."
                    )
                    return self._html(render_error_page(message, back=False), 500)
        return RedirectResponse("/", 303, headers=_HEADERS)  # a reload does not post again

    async def _convert(self, code: str) -> ConvertedApp:
        if self._http is not None:
            return await convert_code(self._settings.api_url, code, http=self._http)
        async with httpx.AsyncClient(timeout=30.0) as http:
            return await convert_code(self._settings.api_url, code, http=http)

    async def _finish(self, app: ConvertedApp) -> Response:
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
        return self._done(app)


MAX_FORM_BYTES = 8192


async def _read_form(request: Request) -> dict[str, str] | None:
    """A small urlencoded form (what the key form sends); None when it is anything else."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        return dict(parse_qsl(body.decode("utf-8"), max_num_fields=10))
    except (UnicodeDecodeError, ValueError):
        return None


_KEY_HEADER = "# Anthropic API key saved by Honk's setup page\n"
_BAD_FORM = "Honk did not understand that form; send it again from the setup page."
_NOT_YET = "Register the GitHub App first; then this page asks for the Anthropic key."
_BAD_STATE = (
    "This link back from GitHub is unknown, expired or already used, so Honk changed nothing. "
    "If GitHub just created an App, delete it under Settings → Developer settings → GitHub Apps, "
    "then start again from the setup page."
)
