"""App endpoints: `/app`, installations, installation tokens, and the App manifest flow.

The manifest flow has a browser half (`POST /settings/apps/new` with a `manifest` form field,
answered at once with the redirect GitHub sends after the user confirms) and an API half
(`POST /app-manifests/{code}/conversions`, which works once per code).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from tests.fakes.github_auth import (
    generate_private_key_pem,
    has_permission,
    new_installation_token,
    random_token,
)
from tests.fakes.github_http import ApiError, Call, Reply, RouteSpec
from tests.fakes.github_json import app_json, installation_json, repo_json, user_json
from tests.fakes.github_state import AppState, ManifestRecord, iso, next_id

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

DOC_APPS = "https://docs.github.com/rest/apps/apps"
DOC_TOKEN = f"{DOC_APPS}#create-an-installation-access-token-for-an-app"
DOC_MANIFEST = f"{DOC_APPS}#create-a-github-app-from-a-manifest"


def get_app(fake: FakeGitHub, call: Call) -> Reply:
    return Reply(app_json(call.site, call.actor_app))


def list_installations(fake: FakeGitHub, call: Call) -> Reply:
    app = call.actor_app
    items = [
        installation_json(call.site, inst, app)
        for inst in fake.installations.values()
        if inst.app_id == app.id
    ]
    return Reply(items)


def _own_installation(fake: FakeGitHub, call: Call) -> int:
    installation_id = call.int_param("installation_id")
    inst = fake.installations.get(installation_id)
    if inst is None or inst.app_id != call.actor_app.id:
        raise ApiError(404)
    return installation_id


def get_installation(fake: FakeGitHub, call: Call) -> Reply:
    inst = fake.installations[_own_installation(fake, call)]
    return Reply(installation_json(call.site, inst, call.actor_app))


def create_access_token(fake: FakeGitHub, call: Call) -> Reply:
    inst = fake.installations[_own_installation(fake, call)]
    body = call.body if isinstance(call.body, dict) else {}
    owned = {r.full_name.lower(): r for r in fake.repos.values() if r.installation_id == inst.id}
    by_id = {r.id: name for name, r in owned.items()}
    wanted: list[str] | None = None
    if body.get("repositories") or body.get("repository_ids"):
        names = [f"{inst.account}/{name}".lower() for name in body.get("repositories") or []]
        ids = list(body.get("repository_ids") or [])
        if any(name not in owned for name in names) or any(i not in by_id for i in ids):
            raise ApiError(
                422,
                "There is at least one repository that does not exist or is not accessible to "
                "the parent installation.",
                doc=DOC_TOKEN,
            )
        wanted = sorted(set(names) | {by_id[i] for i in ids})
    permissions = dict(inst.permissions)
    if body.get("permissions"):
        asked = {str(k): str(v) for k, v in body["permissions"].items()}
        if not all(has_permission(inst.permissions, k, v) for k, v in asked.items()):
            raise ApiError(
                422,
                "The permissions requested are not granted to this installation.",
                doc=DOC_TOKEN,
            )
        permissions = asked
    issued = new_installation_token(inst.id, permissions, wanted)
    fake.tokens.append(issued)
    fake.tokens_by_value[issued.token] = issued
    data: dict[str, Any] = {
        "token": issued.token,
        "expires_at": iso(issued.expires_at),
        "permissions": permissions,
        "repository_selection": "selected" if wanted is not None else inst.repository_selection,
    }
    if wanted is not None:
        data["repositories"] = [repo_json(call.site, owned[name]) for name in wanted]
    return Reply(data, status=201)


def get_repo_installation(fake: FakeGitHub, call: Call) -> Reply:
    repo = call.the_repo
    inst = fake.installations.get(repo.installation_id)
    if inst is None or inst.app_id != call.actor_app.id:
        raise ApiError(404)
    return Reply(installation_json(call.site, inst, call.actor_app))


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "app"


def _new_manifest(fake: FakeGitHub, call: Call, organization: str | None) -> Reply:
    raw = call.form.get("manifest")
    try:
        manifest = json.loads(raw) if raw else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or not manifest.get("url"):
        raise ApiError(422, "Invalid GitHub App configuration: the manifest needs a url.")
    redirect = manifest.get("redirect_url")
    if not isinstance(redirect, str) or not redirect.startswith(("http://", "https://")):
        raise ApiError(422, "Invalid GitHub App configuration: the manifest needs a redirect_url.")
    code = secrets.token_hex(10)
    state = call.query.get("state")
    fake.manifests.append(ManifestRecord(manifest, state, code, organization))
    parts = urlsplit(redirect)
    extra = urlencode({"code": code, **({"state": state} if state is not None else {})})
    query = f"{parts.query}&{extra}" if parts.query else extra
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
    return Reply(None, status=302, headers={"Location": location})


def new_user_app(fake: FakeGitHub, call: Call) -> Reply:
    return _new_manifest(fake, call, None)


def new_org_app(fake: FakeGitHub, call: Call) -> Reply:
    return _new_manifest(fake, call, call.params["org"])


def convert_manifest(fake: FakeGitHub, call: Call) -> Reply:
    code = call.params["code"]
    record = next((m for m in fake.manifests if m.code == code), None)
    if record is None or record.converted_app_id is not None:
        raise ApiError(404, doc=DOC_MANIFEST)
    manifest = record.manifest
    name = str(manifest.get("name") or "my-app")
    hook = manifest.get("hook_attributes") or {}
    app = AppState(
        id=next_id(),
        slug=_slugify(name),
        name=name,
        private_key_pem=generate_private_key_pem(),
        owner=record.organization or "octocat",
        client_id=random_token("Iv23li", 20),
        client_secret=secrets.token_hex(20),
        webhook_secret=secrets.token_hex(20) if hook.get("url") else None,
        description=manifest.get("description"),
        external_url=str(manifest.get("url")),
        permissions=dict(manifest.get("default_permissions") or {"metadata": "read"}),
        events=list(manifest.get("default_events") or []),
    )
    fake.apps[app.id] = app
    record.converted_app_id = app.id
    data = app_json(call.site, app)
    data.update(
        {
            "client_secret": app.client_secret,
            "webhook_secret": app.webhook_secret,
            "pem": app.private_key_pem,
        }
    )
    return Reply(data, status=201)


def get_user(fake: FakeGitHub, call: Call) -> Reply:
    """`GET /users/{login}`: a public profile (how Honk learns its bot user's id for commits)."""
    data = user_json(call.site, call.params["login"])
    data.update(
        {
            "name": None, "company": None, "blog": "", "location": None, "email": None,
            "hireable": None, "bio": None, "twitter_username": None, "public_repos": 0,
            "public_gists": 0, "followers": 0, "following": 0,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
        }
    )  # fmt: skip
    return Reply(data)


ROUTES = [
    RouteSpec("GET", "/users/{login}", "none", get_user),
    RouteSpec("GET", "/app", "app", get_app, doc=f"{DOC_APPS}#get-the-authenticated-app"),
    RouteSpec("GET", "/app/installations", "app", list_installations),
    RouteSpec("GET", "/app/installations/{installation_id}", "app", get_installation),
    RouteSpec(
        "POST",
        "/app/installations/{installation_id}/access_tokens",
        "app",
        create_access_token,
        doc=DOC_TOKEN,
    ),
    RouteSpec("GET", "/repos/{owner}/{repo}/installation", "app", get_repo_installation),
    RouteSpec(
        "POST", "/app-manifests/{code}/conversions", "none", convert_manifest, doc=DOC_MANIFEST
    ),
    RouteSpec("POST", "/settings/apps/new", "none", new_user_app),
    RouteSpec("POST", "/organizations/{org}/settings/apps/new", "none", new_org_app),
]
