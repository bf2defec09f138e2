"""A faithful fake of GitHub's REST API for Honk's tests, served on loopback.

    fake = FakeGitHub().start()
    fake.add_repo("acme/widgets", files={".github/honk.yml": "..."})
    number = fake.add_issue("acme/widgets", title="Fix the thing")
    gh = GitHub(AppAuthStrategy(fake.app_id, fake.private_key_pem), base_url=fake.url + "/")
    ...
    assert fake.comments[0].body.startswith("Honk")

State is plain dataclasses (github_state.py) held in plain lists and dicts (github_store.py) that
tests seed and read. Responses are GitHub's JSON
shapes (githubkit's models parse them), errors are GitHub's error JSON, and every API response
carries GitHub's rate-limit and request-id headers. Behaviours worth knowing:

- GET responses carry `ETag` and `Cache-Control: private, max-age=60` like GitHub, and
  `If-None-Match` gets 304 (githubkit's HTTP cache revalidates with it).
- A token that may not see a repository gets 404 (GitHub hides private repositories), a token
  without the needed permission gets 403 "Resource not accessible by integration".
- `PATCH /pulls/{n}` ignores `draft`, as GitHub does; `POST /graphql` supports the
  `markPullRequestReadyForReview` and `convertPullRequestToDraft` mutations.
- `GET /pulls?head=branch` without the `owner:` prefix ignores the filter, as GitHub does.
- `fail_next` matches the whole path (`re.fullmatch`); a 403 without a body is a primary rate
  limit (remaining 0, reset in a second) and a 429 a secondary one (`retry-after: 1`), so clients
  retry almost at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.fakes import (
    github_routes_apps,
    github_routes_branches,
    github_routes_checks,
    github_routes_issues,
    github_routes_pulls,
    github_routes_repos,
)
from tests.fakes.github_auth import generate_private_key_pem, new_installation_token
from tests.fakes.github_http import FrontMiddleware, endpoint, not_found
from tests.fakes.github_json import Site
from tests.fakes.github_state import (
    ROLE_NAMES,
    AppState,
    CheckRunState,
    CommentState,
    Injection,
    InstallationState,
    IssueState,
    PullFile,
    PullState,
    ReactionState,
    RepoState,
    ReviewCommentState,
    default_branch_sha,
    next_id,
    utcnow,
)
from tests.fakes.github_store import Store
from tests.fakes.loopback import LoopbackServer

__all__ = [
    "CheckRunState",
    "CommentState",
    "FakeGitHub",
    "IssueState",
    "PullFile",
    "PullState",
    "ReactionState",
    "RepoState",
    "ReviewCommentState",
]

ROUTE_MODULES = (
    github_routes_apps,
    github_routes_repos,
    github_routes_branches,
    github_routes_issues,
    github_routes_pulls,
    github_routes_checks,
)


class FakeGitHub(Store):
    """GitHub's REST API for one App, its installations and their repositories."""

    def __init__(
        self,
        *,
        app_id: int = 4242,
        app_slug: str = "honk-test",
        private_key_pem: str | None = None,
        git_app: ASGIApp | None = None,
    ) -> None:
        super().__init__()
        self.app_id = app_id
        self.app_slug = app_slug
        self.private_key_pem = private_key_pem or generate_private_key_pem()
        self.apps[app_id] = AppState(
            app_id,
            app_slug,
            app_slug.replace("-", " ").title(),
            self.private_key_pem,
            client_id=f"Iv23li{app_id:014d}",
        )
        self.started_at = time.time()
        self.cache_control = "private, max-age=60, s-maxage=60"
        self.git_app = git_app
        # Hooks a git-backed test replaces: does a branch exist, and which commit is it at.
        self.branch_exists: Callable[[str, str], bool] = lambda full_name, branch: True
        self.branch_sha: Callable[[str, str], str] = default_branch_sha
        self.url = ""
        self._server: LoopbackServer | None = None
        routes = [
            Route(spec.path, endpoint(self, spec), methods=[spec.method])
            for module in ROUTE_MODULES
            for spec in module.ROUTES
        ]
        self.app = Starlette(
            routes=routes,
            middleware=[Middleware(FrontMiddleware, fake=self)],
            exception_handlers={404: not_found, 405: not_found},
        )

    # -- serving -------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        self._server = LoopbackServer(self.app).start()
        self.url = self._server.url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def attach_git(self, git_app: ASGIApp) -> None:
        """Serve git smart HTTP (`/{owner}/{repo}.git/...`) from `git_app` on the same port."""
        self.git_app = git_app

    def site(self, base: str) -> Site:
        return Site(base, frozenset(self.organizations), tuple(self.apps.values()))

    @staticmethod
    def now() -> datetime:
        return utcnow()

    @property
    def bot_login(self) -> str:
        """The login the App's writes appear under, e.g. `honk-test[bot]`."""
        return self.apps[self.app_id].bot_login

    # -- seeding -------------------------------------------------------------------------------

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        private: bool = True,
        installation_id: int = 1,
        files: dict[str, str] | None = None,
        owner_type: Literal["Organization", "User"] = "Organization",
    ) -> RepoState:
        owner = full_name.split("/", 1)[0]
        with self.lock:
            if owner_type == "Organization":
                self.organizations.add(owner)
            else:
                self.organizations.discard(owner)
            self.installations.setdefault(
                installation_id, InstallationState(installation_id, self.app_id, owner)
            )
            repo = RepoState(full_name, next_id(), installation_id, default_branch, private)
            repo.files[default_branch] = dict(files or {})
            self.repos[full_name.lower()] = repo
            return repo

    def set_file(self, full_name: str, path: str, content: str, ref: str | None = None) -> None:
        repo = self.repo(full_name)
        with self.lock:
            repo.files.setdefault(ref or repo.default_branch, {})[path.strip("/")] = content

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        if permission not in ROLE_NAMES:
            raise ValueError(f"permission must be one of {', '.join(ROLE_NAMES)}")
        with self.lock:
            self.repo(full_name).permissions[login.lower()] = permission

    def guard_branch(
        self,
        full_name: str,
        pattern: str,
        *,
        protected: bool = False,
        rules: Iterable[str | dict[str, Any]] = (),
    ) -> None:
        """Classic protection for the branch `pattern` names, and active ruleset rules (a type,
        or a rule's whole JSON) for every branch the fnmatch `pattern` matches."""
        repo = self.repo(full_name)
        with self.lock:
            if protected:
                repo.protected_branches.add(pattern)
            else:
                repo.protected_branches.discard(pattern)
            listed = [{"type": r} if isinstance(r, str) else dict(r) for r in rules]
            if listed:
                repo.branch_rules[pattern] = listed
            else:
                repo.branch_rules.pop(pattern, None)

    def set_installation_permissions(
        self, installation_id: int, permissions: dict[str, str]
    ) -> None:
        """Narrow what new tokens of an installation may do (tokens already issued keep theirs)."""
        with self.lock:
            self.installations[installation_id].permissions = dict(permissions)

    def add_issue(
        self,
        full_name: str,
        *,
        title: str,
        body: str | None = "",
        user: str = "octocat",
        is_pull_request: bool = False,
        labels: Iterable[str] = (),
        state: Literal["open", "closed"] = "open",
        locked: bool = False,
    ) -> int:
        if is_pull_request:
            return self.add_pull(
                full_name, title=title, head=f"{user}-patch", body=body, user=user, labels=labels
            )
        repo = self.repo(full_name)
        with self.lock:
            issue = IssueState(
                repo.full_name,
                repo.next_number(),
                title,
                body,
                user,
                state=state,
                labels=list(labels),
                locked=locked,
            )
            repo.issues[issue.number] = issue
            return issue.number

    def add_pull(
        self,
        full_name: str,
        *,
        title: str,
        head: str,
        base: str = "main",
        body: str | None = "",
        user: str = "octocat",
        head_repo: str | None = None,
        head_sha: str | None = None,
        draft: bool = False,
        labels: Iterable[str] = (),
        files: Iterable[PullFile] = (),
    ) -> int:
        """A pull request from `head` (a branch; of `head_repo` when it comes from a fork)."""
        repo = self.repo(full_name)
        source = head_repo or repo.full_name
        with self.lock:
            pull = PullState(
                repo.full_name,
                repo.next_number(),
                title,
                body,
                user,
                labels=list(labels),
                head_ref=head,
                head_sha=head_sha or self.branch_sha(source, head),
                base_ref=base,
                head_repo=source,
                draft=draft,
                files=list(files),
            )
            repo.issues[pull.number] = pull
            self.pulls.append(pull)
            return pull.number

    def add_comment(
        self,
        full_name: str,
        number: int,
        *,
        body: str,
        user: str = "octocat",
        via_app: bool = False,
    ) -> CommentState:
        """An existing issue comment; `via_app=True` makes it the App's own (by its bot user)."""
        repo = self.repo(full_name)
        with self.lock:
            if number not in repo.issues:
                raise KeyError(f"{full_name}#{number} does not exist")
            comment = CommentState(
                repo.full_name,
                number,
                body,
                self.bot_login if via_app else user,
                via_app=self.app_id if via_app else None,
            )
            self.comments.append(comment)
            return comment

    def add_review_comment(
        self,
        full_name: str,
        number: int,
        *,
        body: str,
        path: str,
        line: int = 1,
        user: str = "octocat",
        diff_hunk: str = "@@ -1,1 +1,1 @@",
    ) -> ReviewCommentState:
        pull = self.pull(full_name, number)
        with self.lock:
            comment = ReviewCommentState(
                pull.repo, number, body, user, path, pull.head_sha, line=line, diff_hunk=diff_hunk
            )
            self.review_comments.append(comment)
            return comment

    def set_pull_files(self, full_name: str, number: int, files: Iterable[PullFile]) -> None:
        with self.lock:
            self.pull(full_name, number).files = list(files)

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        body: dict[str, Any] | None = None,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests whose whole path matches with `status` instead."""
        with self.lock:
            self.injections.append(
                Injection(
                    method.upper(), re.compile(path_regex), status, body, dict(headers or {}), times
                )
            )

    def expire_tokens(self, token: str | None = None) -> None:
        """Make one installation token (or all) expired, as an hour passing would."""
        with self.lock:
            for issued in self.tokens:
                if token is None or issued.token == token:
                    issued.expires_at = utcnow() - timedelta(seconds=1)

    def issue_token(self, installation_id: int = 1) -> str:
        """Mint an installation token directly, for tests that bypass the App JWT flow."""
        with self.lock:
            inst = self.installations[installation_id]
            issued = new_installation_token(inst.id, inst.permissions, None)
            self.tokens.append(issued)
            self.tokens_by_value[issued.token] = issued
            return issued.token
