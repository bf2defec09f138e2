"""Setup mode: register Honk's GitHub App from app.yml through GitHub's manifest flow, like Probot.

On a fresh machine nothing of the App is configured. Honk's page at `/` shows a button whose form
the user's own browser POSTs to GitHub with the manifest; GitHub creates the App and sends the
browser back to `/setup/callback` with a one-hour code. Honk exchanges the code for the App's
credentials, writes them to `.env` (mode 0600, atomically) and hands them to the server, which
starts taking webhooks without a restart. The pure parts (manifest, pages, `.env` values) are
separate from the adapters: the code exchange and the Starlette routes. Quoting and writing the
`.env` file itself lives in `env_file.py`.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import ipaddress
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

# Re-exported (`x as x`): callers and tests import these from here.
from honk_app.env_file import merge_env_text as merge_env_text
from honk_app.env_file import quote_env_value as quote_env_value
from honk_app.env_file import write_env as write_env
from honk_app.secret_scan import redact
from honk_app.settings import Settings

log = logging.getLogger(__name__)

CALLBACK_PATH = "/setup/callback"
STATE_TTL_S = 3600.0  # GitHub's manifest code lasts one hour; the state need not outlive it
MAX_OUTSTANDING_STATES = 100
# Every parameter GitHub documents for a manifest; anything else in app.yml is most likely a typo.
MANIFEST_KEYS = frozenset(
    {
        "name", "url", "description", "public", "hook_attributes", "redirect_url",
        "callback_urls", "setup_url", "setup_on_update", "request_oauth_on_install",
        "default_events", "default_permissions",
    }
)  # fmt: skip
_ORG_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")


class SetupError(Exception):
    """Setup cannot go on; the message is one readable sentence without any secret."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ConvertedApp:
    """The App GitHub created, with the credentials it hands out exactly once."""

    id: int
    slug: str
    name: str
    html_url: str
    owner: str
    client_id: str
    client_secret: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    pem: str = field(repr=False)

    @classmethod
    def from_github(cls, body: Any) -> ConvertedApp:
        """Parse the answer of the conversion endpoint; a missing field is a readable error."""
        if not isinstance(body, dict):
            raise SetupError(
                "GitHub's answer to the code exchange was not a JSON object.", status=502
            )
        wanted = ("id", "slug", "name", "html_url", "client_id", "client_secret", "pem")
        missing = [key for key in wanted if not body.get(key)]
        if not body.get("webhook_secret"):
            missing.append("webhook_secret")
        if missing:
            raise SetupError(f"GitHub's answer lacks {', '.join(missing)}.", status=502)
        owner = body.get("owner")
        return cls(
            id=int(body["id"]),
            slug=str(body["slug"]),
            name=str(body["name"]),
            html_url=str(body["html_url"]).rstrip("/"),
            owner=str(owner.get("login", "")) if isinstance(owner, dict) else "",
            client_id=str(body["client_id"]),
            client_secret=str(body["client_secret"]),
            webhook_secret=str(body["webhook_secret"]),
            pem=str(body["pem"]),
        )

    @property
    def install_url(self) -> str:
        return f"{self.html_url}/installations/new"


# ---- pure: the manifest ---------------------------------------------------------------------
def _app_yml_error(problem: str) -> SetupError:
    return SetupError(f"app.yml {problem}.", status=500)


def _check_manifest(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _app_yml_error("must be a mapping of manifest keys (name, url, ...)")
    unknown = sorted(str(key) for key in raw if key not in MANIFEST_KEYS)
    if unknown:
        raise _app_yml_error(f"has keys GitHub does not know: {', '.join(unknown)}")
    for key in ("name", "url"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise _app_yml_error(f"needs a `{key}` (text)")
    if not isinstance(raw.get("public", False), bool):
        raise _app_yml_error("`public` must be true or false")
    events = raw.get("default_events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise _app_yml_error("`default_events` must be a list of event names")
    permissions = raw.get("default_permissions", {})
    levels = ("read", "write", "admin")
    if not isinstance(permissions, dict) or any(v not in levels for v in permissions.values()):
        raise _app_yml_error("`default_permissions` must map each permission to read or write")
    if not isinstance(raw.get("hook_attributes") or {}, dict):
        raise _app_yml_error("`hook_attributes` must be a mapping")
    return raw


def _check_public_url(public_url: str) -> str:
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SetupError(
            f"Honk's public address {public_url!r} is not an http(s) URL; set HONK_PUBLIC_URL "
            "to one such as https://honk.example.com."
        )
    return public_url.rstrip("/")


def load_manifest(app_yml_text: str, *, public_url: str, webhook_path: str) -> dict[str, Any]:
    """app.yml as GitHub wants it, pointed at this server's webhook and callback URLs."""
    try:
        raw = yaml.safe_load(app_yml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _app_yml_error(
            "is not valid YAML" + (f" near line {mark.line + 1}" if mark is not None else "")
        ) from None
    manifest = dict(_check_manifest(raw))
    base = _check_public_url(public_url)
    path = webhook_path if webhook_path.startswith("/") else "/" + webhook_path
    hook = manifest.get("hook_attributes") or {}
    manifest["hook_attributes"] = {**hook, "url": base + path, "active": hook.get("active", True)}
    manifest["redirect_url"] = base + CALLBACK_PATH
    return manifest


def new_state() -> str:
    """An unguessable value that ties GitHub's redirect back to a page this server showed."""
    return secrets.token_urlsafe(32)


# ---- pure: the pages ------------------------------------------------------------------------
_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}"
    "button,input{font:inherit;padding:.4rem .8rem}code{overflow-wrap:anywhere}"
    ".warn{background:#fff4ce;padding:.5rem 1rem;border-left:4px solid #d4a72c}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _is_unreachable_host(url: str) -> bool:
    """True for addresses GitHub cannot deliver webhooks to (loopback, private networks)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def check_org_name(org: str | None) -> str | None:
    """The organization to register the App under, if its name is one GitHub allows."""
    if org is not None and not _ORG_NAME.fullmatch(org):
        raise SetupError(f"{org!r} is not a GitHub organization name.")
    return org


def registration_url(github_url: str, state: str, org: str | None = None) -> str:
    """GitHub's page that creates an App from a POSTed manifest, for a user or an organization."""
    owner = f"/organizations/{org}" if check_org_name(org) else ""
    return f"{github_url.rstrip('/')}{owner}/settings/apps/new?state={quote(state, safe='')}"


def render_setup_page(
    manifest: dict[str, Any],
    *,
    github_url: str,
    state: str,
    org: str | None = None,
    setup_token: str | None = None,
) -> str:
    """The setup page: what will be created, and a form the user's browser POSTs to GitHub."""
    action = registration_url(github_url, state, org)
    hook_url = str(manifest.get("hook_attributes", {}).get("url", ""))
    esc = html.escape
    permissions = ", ".join(
        f"{esc(k)}: {esc(str(v))}" for k, v in manifest.get("default_permissions", {}).items()
    )
    events = ", ".join(esc(e) for e in manifest.get("default_events", []))
    owner = f"the organization <b>{esc(org)}</b>" if org else "your GitHub account"
    warning = (
        f'<p class="warn">GitHub cannot reach <code>{esc(hook_url)}</code>. Set HONK_PUBLIC_URL '
        "to an address GitHub can reach (a tunnel will do) and restart Honk first.</p>"
        if _is_unreachable_host(hook_url)
        else ""
    )
    body = (
        "<p>Honk has no GitHub App yet. The button asks GitHub to create one from "
        f"<code>app.yml</code>, owned by {owner}. GitHub then sends you back here; Honk saves "
        "the App's credentials in <code>.env</code> and takes webhooks at once, no restart.</p>"
        f"{warning}<ul><li>Name: <b>{esc(str(manifest.get('name', '')))}</b></li>"
        f"<li>Webhooks go to <code>{esc(hook_url)}</code></li>"
        f"<li>Permissions: {permissions or 'none'}</li><li>Events: {events or 'none'}</li></ul>"
        f'<form action="{esc(action)}" method="post">'
        f'<input type="hidden" name="manifest" value="{esc(json.dumps(manifest))}">'
        f'<button type="submit">Create the GitHub App on {esc(github_url)}</button></form>'
        '<form method="get"><p>Or create it for an organization: '
        f'<input name="org" placeholder="organization" value="{esc(org or "")}" '
        'aria-label="organization"> <button type="submit">Use this organization</button></p>'
        + (f'<input type="hidden" name="token" value="{esc(setup_token)}">' if setup_token else "")
        + "</form>"
    )
    return _page("Set up Honk", body)


def render_done_page(app: ConvertedApp, *, env_path: Path | None = None) -> str:
    """After registration: webhooks are live; the one step left is installing the App."""
    esc = html.escape
    saved = f" in <code>{esc(str(env_path))}</code>" if env_path is not None else ""
    body = (
        f"<p>GitHub created <b>{esc(app.name)}</b> (App id {app.id}) and Honk takes its webhooks "
        "now.</p><p>Next, install it on the repositories Honk may work on:</p>"
        f'<p><a href="{esc(app.install_url)}"><b>Install {esc(app.name)}</b></a></p>'
        f"<p>The credentials are saved{saved}, readable only by this user. Keep that file out "
        "of version control; Honk reads it on every start.</p>"
    )
    return _page("Honk is registered", body)


def render_error_page(message: str) -> str:
    body = f'<p>{html.escape(message)}</p><p><a href="/">Back to the setup page</a></p>'
    return _page("Honk setup did not finish", body)


# ---- pure: .env values ----------------------------------------------------------------------
def env_lines_for(app: ConvertedApp) -> dict[str, str]:
    """The App's settings as .env values; the PEM becomes one line with literal `\\n` escapes."""
    one_line_pem = app.pem.strip().replace("\r\n", "\n").replace("\n", "\\n")
    return {
        "APP_ID": str(app.id),
        "PRIVATE_KEY": one_line_pem,
        "WEBHOOK_SECRET": app.webhook_secret,
        "GITHUB_CLIENT_ID": app.client_id,
        "GITHUB_CLIENT_SECRET": app.client_secret,
    }


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
