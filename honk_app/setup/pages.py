"""The pure half of setup: the manifest from app.yml, the pages, and the App GitHub hands back.

Nothing here does I/O, so every page and every refusal of a broken app.yml or public address can be
checked without a server or GitHub. `setup_flow.py` holds the adapters that use it: the code
exchange and the Starlette routes.
"""

from __future__ import annotations

import html
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

CALLBACK_PATH = "/setup/callback"
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


def _is_public_github(github_url: str) -> bool:
    """github.com itself, which can never reach a loopback or private address (an Enterprise
    Server on the same network may)."""
    return (urlsplit(github_url).hostname or "").lower() in ("github.com", "www.github.com")


# The line Honk logs in setup mode (server.py); the refusal page quotes it so people find it.
SETUP_LINK_LOG = "Setup mode: open %s/?token=%s to register Honk's GitHub App."


def _tunnel_steps(hook_url: str) -> str:
    parts = urlsplit(hook_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    esc = html.escape
    return (
        f'<div class="warn"><p><b>GitHub cannot reach <code>{esc(hook_url)}</code>.</b> That '
        "address exists only on this machine or your local network, so GitHub could not send "
        "the App's webhooks to Honk. To continue:</p><ol>"
        "<li>Make Honk reachable from the internet, for example with a tunnel: "
        f"<code>cloudflared tunnel --url http://localhost:{port}</code> or "
        f"<code>ngrok http {port}</code>. Either prints an https address.</li>"
        "<li>Put that address in <code>.env</code> as "
        "<code>HONK_PUBLIC_URL=https://…</code> and restart Honk.</li>"
        "<li>Open the new setup link that Honk writes to its log.</li></ol></div>"
    )


def render_setup_page(
    manifest: dict[str, Any],
    *,
    github_url: str,
    state: str,
    org: str | None = None,
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
    unreachable = _is_unreachable_host(hook_url)
    # github.com would create an App whose webhooks never arrive; an Enterprise Server may reach.
    blocked = unreachable and _is_public_github(github_url)
    button = (
        f'<button type="submit" disabled>Create the GitHub App on {esc(github_url)}</button>'
        "<p>The button works once GitHub can reach Honk (see above).</p>"
        if blocked
        else f'<button type="submit">Create the GitHub App on {esc(github_url)}</button>'
    )
    body = (
        "<p>Honk has no GitHub App yet. The button asks GitHub to create one from "
        f"<code>app.yml</code>, owned by {owner}. GitHub then sends you back here; Honk saves "
        "the App's credentials in <code>.env</code> and takes webhooks at once, no restart.</p>"
        f"{_tunnel_steps(hook_url) if unreachable else ''}"
        f"<ul><li>Name: <b>{esc(str(manifest.get('name', '')))}</b></li>"
        f"<li>Webhooks go to <code>{esc(hook_url)}</code></li>"
        f"<li>Permissions: {permissions or 'none'}</li><li>Events: {events or 'none'}</li></ul>"
        f'<form action="{esc(action)}" method="post">'
        f'<input type="hidden" name="manifest" value="{esc(json.dumps(manifest))}">'
        f"{button}</form>"
        '<form method="get"><p>Or create it for an organization: '
        f'<input name="org" placeholder="organization" value="{esc(org or "")}" '
        'aria-label="organization"> <button type="submit">Use this organization</button></p>'
        "</form>"
    )
    return _page("Set up Honk", body)


KEY_PATH = "/setup/anthropic-key"
ANTHROPIC_KEYS_URL = "https://console.anthropic.com/settings/keys"


@dataclass(frozen=True)
class KeyStep:
    """The Anthropic key step of the done page: whether the key is set, and how to set it."""

    is_set: bool
    form_key: str | None = None  # None: this browser may not post; say where the key goes
    problem: str | None = None  # why the last key sent was refused


def check_anthropic_key(pasted: str) -> tuple[str, str | None]:
    """The key to save from what was pasted, and why it cannot be saved (None: it can)."""
    key = pasted.strip().removeprefix("ANTHROPIC_API_KEY=").strip("'\"")
    if not key:
        return key, "Paste the key into the field first."
    if len(key) > 300 or "${" in key or any(c.isspace() or not c.isprintable() for c in key):
        return key, "That is not an API key: it is too long or has spaces or control characters."
    return key, None


def _key_step(step: KeyStep, env_name: str) -> str:
    esc = html.escape
    if step.is_set:
        return "<li><p>Anthropic API key: set, so runs can use it.</p></li>"
    intro = (
        "<li><p>Give Honk an Anthropic API key: the agent uses it for every run, and runs "
        f'fail without it. Create one at <a href="{ANTHROPIC_KEYS_URL}">{ANTHROPIC_KEYS_URL}</a>.'
        "</p>"
    )
    problem = f'<p class="warn">{esc(step.problem)}</p>' if step.problem else ""
    if step.form_key is None:
        return (
            f"{intro}<p>Add it to <code>{esc(env_name)}</code> as "
            "<code>ANTHROPIC_API_KEY=sk-ant-…</code> and restart Honk.</p></li>"
        )
    return (
        f"{intro}{problem}"
        f'<form action="{KEY_PATH}" method="post">'
        f'<input type="hidden" name="form_key" value="{esc(step.form_key)}">'
        '<p><input type="password" name="anthropic_api_key" autocomplete="off" required '
        'placeholder="sk-ant-…" aria-label="Anthropic API key"> '
        f'<button type="submit">Save the key</button></p></form><p>Honk writes it to '
        f"<code>{esc(env_name)}</code> beside the App's credentials, readable only by this "
        "user.</p></li>"
    )


def render_done_page(
    app: ConvertedApp, *, env_path: Path | None = None, key: KeyStep | None = None
) -> str:
    """After registration: webhooks are live; left are the Anthropic key and installing the App."""
    esc = html.escape
    env_name = str(env_path) if env_path is not None else ".env"
    key_step = _key_step(key, env_name) if key is not None else ""
    body = (
        f"<p>GitHub created <b>{esc(app.name)}</b> (App id {app.id}) and Honk takes its webhooks "
        f"now. The credentials are saved in <code>{esc(env_name)}</code>, readable only by this "
        "user. Keep that file out of version control; Honk reads it on every start.</p>"
        f"<ol>{key_step}"
        "<li><p>Install the App on the repositories Honk may work on:</p>"
        f'<p><a href="{esc(app.install_url)}"><b>Install {esc(app.name)}</b></a></p></li>'
        "<li><p>Label an issue <code>honk</code> or comment <code>/honk &lt;what to do&gt;</code>"
        " on it. Honk answers in the issue and opens a pull request.</p></li></ol>"
    )
    return _page("Honk is registered", body)


def render_error_page(message: str, *, back: bool = True) -> str:
    link = '<p><a href="/">Back to the setup page</a></p>' if back else ""
    return _page("Honk setup did not finish", f"<p>{html.escape(message)}</p>{link}")


def render_refused_page() -> str:
    """For a browser without the setup session: where the link is, and why it may not work."""
    line = SETUP_LINK_LOG % ("http://localhost:3000", "…")
    body = (
        "<p>This page needs the setup link that Honk wrote to its log (the terminal where you "
        "ran <code>make serve</code> or <code>honk serve</code>) when it started. The line "
        f"reads:</p><p><code>{html.escape(line)}</code></p><p>The link works once, in one "
        "browser: if it was opened already, go on in that browser, or restart Honk for a new "
        "link.</p>"
    )
    return _page("Open Honk's setup link", body)


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
