"""The fake GitHub's HTTP plumbing: routing specs, authentication, errors, pagination, headers.

Handlers are plain functions `(fake, call) -> Reply` that run under the fake's lock and raise
`ApiError` for GitHub's error answers. A front middleware records every request, answers planned
failures, adds GitHub's response headers and hands `/{owner}/{repo}.git/...` to the git app.
API calls count down a quota per caller and resource (github_ratelimit.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.fakes.github_auth import (
    AuthFailure,
    credentials,
    has_permission,
    live_token,
    token_covers,
    verify_app_jwt,
)
from tests.fakes.github_hostile import endless_link, flood_response
from tests.fakes.github_json import Json, Site, error_json
from tests.fakes.github_ratelimit import exhausted, rate_bucket, spend
from tests.fakes.github_state import AppState, Injection, IssuedToken, RecordedRequest, RepoState

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

DOCS = "https://docs.github.com/rest"
GIT_PATH = re.compile(r"^/[^/]+/[^/]+\.git(/.*)?$")
RECORD_KEY = "fake_github_record"
AuthKind = Literal["app", "installation", "none"]
STATUS_MESSAGES = {
    400: "Bad Request",
    401: "Bad credentials",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Validation Failed",
    500: "Server Error",
    502: "Server Error",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answer in GitHub's JSON shape."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        errors: list[Json] | None = None,
        doc: str | None = None,
    ) -> None:
        super().__init__(message or STATUS_MESSAGES.get(status, "Error"))
        self.status = status
        self.message = message or STATUS_MESSAGES.get(status, "Error")
        self.errors = errors
        self.doc = doc


def validation_failed(
    resource: str, *, field: str | None = None, code: str = "custom", message: str | None = None
) -> ApiError:
    error: Json = {"resource": resource, "code": code}
    if field is not None:
        error["field"] = field
    if message is not None:
        error["message"] = message
    return ApiError(422, "Validation Failed", errors=[error])


@dataclass
class Reply:
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One authenticated API call, as a handler sees it."""

    request: Request
    site: Site
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    form: dict[str, str]
    app: AppState | None = None
    token: IssuedToken | None = None
    repo: RepoState | None = None

    @property
    def json(self) -> Json:
        if not isinstance(self.body, dict):
            raise ApiError(400, "Problems parsing JSON")
        return self.body

    def int_param(self, name: str) -> int:
        try:
            return int(self.params[name])
        except ValueError as error:
            raise ApiError(404) from error

    @property
    def actor_app(self) -> AppState:
        if self.app is None:
            raise ApiError(401, "Bad credentials")
        return self.app

    @property
    def the_repo(self) -> RepoState:
        if self.repo is None:
            raise ApiError(404)
        return self.repo


Handler = Callable[["FakeGitHub", Call], Reply]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    auth: AuthKind
    handler: Handler
    permission: tuple[str, str] | None = None
    doc: str = DOCS


def error_response(error: ApiError, doc: str) -> JSONResponse:
    return JSONResponse(
        error_json(error.status, error.message, error.doc or doc, error.errors),
        status_code=error.status,
    )


def paginate(call: Call, items: list[Any]) -> Reply:
    """One page of `items` per `per_page`/`page`, with GitHub's `Link` header."""
    try:
        per_page = min(max(int(call.query.get("per_page", "30")), 1), 100)
        page = max(int(call.query.get("page", "1")), 1)
    except ValueError as error:
        raise ApiError(422, "Invalid value for per_page or page") from error
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []
    rels = [("prev", page - 1), ("next", page + 1), ("last", last), ("first", 1)]
    for rel, number in rels:
        if (rel in ("prev", "first") and page > 1) or (rel in ("next", "last") and page < last):
            query = {**call.query, "per_page": str(per_page), "page": str(number)}
            url = f"{call.site.base}{call.request.url.path}?{urlencode(query)}"
            links.append(f'<{url}>; rel="{rel}"')
    return Reply(chunk, headers={"Link": ", ".join(links)} if links else {})


async def _read_body(request: Request) -> tuple[Any, dict[str, str]]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        return None, {key: str(value) for key, value in form.items()}
    raw = await request.body()
    if not raw.strip():
        return None, {}
    try:
        return json.loads(raw), {}
    except ValueError as error:
        raise ApiError(400, "Problems parsing JSON") from error


def _authenticate(fake: FakeGitHub, spec: RouteSpec, call: Call) -> None:
    secret = credentials(call.request.headers.get("authorization"))
    now = fake.now()
    if spec.auth == "app":
        call.app = verify_app_jwt(secret, fake.apps, now)
    elif spec.auth == "installation":
        call.token = live_token(secret, fake.tokens_by_value, now)
        installation = fake.installations[call.token.installation_id]
        call.app = fake.apps[installation.app_id]
    if "owner" in call.params and "repo" in call.params:
        full_name = f"{call.params['owner']}/{call.params['repo']}"
        repo = fake.repos.get(full_name.lower())
        if repo is None:
            raise ApiError(404)
        if call.token is not None and not token_covers(call.token, repo.installation_id, full_name):
            raise ApiError(404)
        call.repo = repo
    if spec.permission is not None and call.token is not None:
        name, level = spec.permission
        if not has_permission(call.token.permissions, name, level):
            raise ApiError(403, "Resource not accessible by integration")


def _finish(request: Request, reply: Reply, cache_control: str) -> Response:
    if reply.body is None:
        return Response(status_code=reply.status, headers=reply.headers)
    payload = json.dumps(reply.body, separators=(",", ":"), ensure_ascii=False).encode()
    headers = dict(reply.headers)
    if request.method == "GET" and reply.status == 200:
        etag = 'W/"' + hashlib.sha256(payload).hexdigest() + '"'
        headers["ETag"] = etag
        headers["Cache-Control"] = cache_control
        headers["Vary"] = "Accept, Authorization, Cookie, X-GitHub-OTP"
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
    return Response(
        payload,
        status_code=reply.status,
        headers=headers,
        media_type="application/json; charset=utf-8",
    )


def endpoint(fake: FakeGitHub, spec: RouteSpec) -> Callable[[Request], Any]:
    """A Starlette endpoint that parses, authenticates and runs `spec.handler` under the lock."""

    async def handle(request: Request) -> Response:
        try:
            body, form = await _read_body(request)
        except ApiError as error:
            return error_response(error, spec.doc)
        record = request.scope.get("state", {}).get(RECORD_KEY)
        if isinstance(record, RecordedRequest):
            record.json = body
        with fake.lock:
            call = Call(
                request=request,
                site=fake.site(str(request.base_url).rstrip("/")),
                params={key: str(value) for key, value in request.path_params.items()},
                query=dict(request.query_params),
                body=body,
                form=form,
            )
            try:
                _authenticate(fake, spec, call)
                reply = spec.handler(fake, call)
            except AuthFailure as failure:
                return error_response(ApiError(401, str(failure)), spec.doc)
            except ApiError as error:
                return error_response(error, spec.doc)
            return _finish(request, reply, fake.cache_control)

    return handle


async def not_found(request: Request, exc: Exception) -> Response:
    """GitHub's JSON 404 (and 404 for a known path with an unsupported method, as GitHub does)."""
    return error_response(ApiError(404), DOCS)


class FrontMiddleware:
    """Records requests, answers injected failures, adds GitHub headers, routes git traffic."""

    def __init__(self, app: ASGIApp, fake: FakeGitHub) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fake = self.fake
        method, path = scope["method"], scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode()
        client = scope.get("client") or ("", 0)
        record = RecordedRequest(method, path, query, headers, peer=f"{client[0]}:{client[1]}")
        scope.setdefault("state", {})[RECORD_KEY] = record
        with fake.lock:
            fake.requests.append((method, path))
            fake.request_log.append(record)
            injection = next((i for i in fake.injections if i.matches(method, path)), None)
            if injection is not None:
                injection.times -= 1
            is_git = GIT_PATH.match(path) is not None  # git traffic spends no API quota
            extra: list[tuple[bytes, bytes]] = []
            if not is_git:
                resource = "graphql" if path == "/graphql" else "core"
                bucket, limit = rate_bucket(headers.get("authorization"), fake)
                window = spend(fake, bucket, limit, resource)
                if window.used > window.limit and injection is None:
                    injection = exhausted(window)
                extra = [
                    (b"x-github-request-id", _request_id().encode()),
                    (b"x-github-media-type", b"github.v3; format=json"),
                    (
                        b"x-github-api-version-selected",
                        headers.get("x-github-api-version", "2022-11-28").encode(),
                    ),
                    *window.headers(resource),
                    (b"server", b"github.com"),
                ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = int(message["status"])
                planned = {k.lower().encode() for k, _ in _injection_headers(injection)}
                kept = [(k, v) for k, v in extra if k not in planned]
                message = {**message, "headers": [*message.get("headers", []), *kept]}
            elif message["type"] == "http.response.body":
                record.bytes_sent += len(message.get("body", b""))
            await send(message)

        if injection is not None:
            response = _injected_response(injection, f"{fake.url}{path}", query)
            await response(scope, receive, send_with_headers)
        elif is_git and fake.git_app is not None:
            await fake.git_app(scope, receive, send_with_headers)
        else:
            await self.app(scope, receive, send_with_headers)


def _request_id() -> str:
    parts = [secrets.token_hex(n).upper() for n in (2, 2, 3, 3, 4)]
    return ":".join(parts)


def _injection_headers(injection: Injection | None) -> list[tuple[str, str]]:
    if injection is None:
        return []
    headers = dict(injection.headers)
    if injection.body is None and injection.status == 403:
        headers.setdefault("x-ratelimit-remaining", "0")
        headers.setdefault("x-ratelimit-reset", str(int(time.time()) + 1))
    if injection.body is None and injection.status == 429:
        headers.setdefault("retry-after", "1")
    return list(headers.items())


def _injected_response(injection: Injection, url: str, query: str) -> ASGIApp:
    if injection.flood is not None:
        return flood_response(injection)
    body = injection.body
    if body is None:
        if injection.status == 403:
            message = "API rate limit exceeded for installation. Wait for the limit to reset."
            body = error_json(403, message, f"{DOCS}/overview/rate-limits-for-the-rest-api", None)
        elif injection.status == 429:
            message = "You have exceeded a secondary rate limit. Please wait a few minutes."
            body = error_json(429, message, f"{DOCS}/overview/rate-limits-for-the-rest-api", None)
        else:
            message = STATUS_MESSAGES.get(injection.status, "Error")
            body = error_json(injection.status, message, DOCS, None)
    response = JSONResponse(body, status_code=injection.status)
    for key, value in _injection_headers(injection):
        response.headers[key] = value
    if injection.endless:
        response.headers["Link"] = endless_link(url, query)
    return response
