"""An in-memory GitHub for unit tests of the run's steps: no HTTP, state in plain lists and dicts.

`MemoryGitHub` stands where the steps expect a `GitHubApp` (`installation`, `installation_token`,
`app_info`, `aclose`, `known_secrets`); `installation()` hands out a `MemoryInstallation`
(installation.py), which has the methods Honk's steps call on `InstallationClient`, with the same
signatures and return types (the real dataclasses of honk_app.github.models).
tests/fakes/test_memory.py holds the signatures and the answers to the real ones.

A repository outside the installation, or a missing issue, pull request or comment, answers 404 as
a `GitHubError` worded like honk_app.github.errors.describe's. Not modelled: commits other than
branch heads (check runs may be put on any sha), rate limits and server errors (inject one with
`fail_once`), closed issues and forks other than a pull request's `head_repo`.

A test seeds state with `add_repo`, `add_issue`, `add_pull`, `add_comment`, `add_review_comment`,
`set_file`, `set_branch`, `guard_branch`, `set_permission`, and reads what a person would see:
`comments_on`, `pulls_in`, `check_runs_on`, `reactions`, `review_comments_on`. `writes` lists
every change made through the API, in order; `permission_asks` every permission read.
"""

from __future__ import annotations

import itertools

from honk_app.github.models import AppInfo, bot_login
from tests.fakes.memory.installation import MemoryInstallation
from tests.fakes.memory.state import (
    APP_ID,
    APP_SLUG,
    CheckRunState,
    CommentState,
    IssueState,
    PullState,
    Reaction,
    RepoState,
    ReviewCommentState,
    fake_sha,
    in_repo,
    not_found,
)


class MemoryGitHub:
    """GitHub's state for one test, and the App (as `GitHubApp`) that the steps use."""

    def __init__(
        self,
        *,
        app_id: int = APP_ID,
        app_slug: str = APP_SLUG,
        private_key_pem: str = "-----BEGIN PRIVATE KEY-----\nfake\n-----END PRIVATE KEY-----\n",
    ) -> None:
        self.info = AppInfo(app_id, app_slug, "Honk (dev)", bot_login(app_slug), 9_000_001)
        self.private_key_pem = private_key_pem
        self.repos: dict[str, RepoState] = {}  # by lower-case full name
        self.issues: dict[tuple[str, int], IssueState] = {}  # pulls too: a pull is an issue
        self.comments: list[CommentState] = []
        self.review_comments: list[ReviewCommentState] = []
        self.check_runs: list[CheckRunState] = []
        self.reactions: list[Reaction] = []
        self.tokens: dict[int, str] = {}
        self.writes: list[str] = []  # "POST /repos/.../issues/42/comments", in order
        self.permission_asks: list[tuple[str, str]] = []  # (repository, login) GitHub was asked
        self.failures: dict[str, list[BaseException]] = {}
        self._ids = itertools.count(2_200_000_001)

    # -- seeding ----------------------------------------------------------------------------------
    def next_id(self, wanted: int | None = None) -> int:
        return wanted if wanted is not None else next(self._ids)

    def add_repo(
        self, full_name: str, *, installation_id: int, files: dict[str, str] | None = None
    ) -> RepoState:
        repo = RepoState(full_name, installation_id)
        repo.files[repo.default_branch] = dict(files or {})
        repo.branches[repo.default_branch] = fake_sha(full_name, repo.default_branch)
        self.repos[full_name.lower()] = repo
        return repo

    def repo(self, full_name: str) -> RepoState:
        return self.repos[full_name.lower()]

    def set_file(
        self, full_name: str, path: str, text: str | None, branch: str | None = None
    ) -> None:
        """Write (or with None, delete) a file on a branch, the default one unless named."""
        repo = self.repo(full_name)
        files = repo.files.setdefault(branch or repo.default_branch, {})
        if text is None:
            files.pop(path, None)
        else:
            files[path] = text

    def set_branch(self, full_name: str, branch: str, sha: str | None = None) -> str:
        """Create or move a branch (a push); its head sha."""
        repo = self.repo(full_name)
        repo.branches[branch] = sha or fake_sha(full_name, branch, len(self.writes))
        repo.files.setdefault(branch, dict(repo.files.get(repo.default_branch, {})))
        return repo.branches[branch]

    def guard_branch(
        self, full_name: str, branch: str, *, protected: bool = False, rules: tuple[str, ...] = ()
    ) -> None:
        """Classic protection and the active ruleset rule types GitHub reports for `branch`."""
        repo = self.repo(full_name)
        if protected:
            repo.protected.add(branch)
        else:
            repo.protected.discard(branch)
        repo.rules[branch] = tuple(rules)

    def set_permission(self, full_name: str, login: str, level: str) -> None:
        self.repo(full_name).permissions[login.lower()] = level

    def _number(self, full_name: str, number: int | None) -> int:
        repo = self.repo(full_name)
        number = number if number is not None else repo.last_number + 1
        repo.last_number = max(repo.last_number, number)
        return number

    def add_issue(
        self,
        full_name: str,
        number: int | None = None,
        *,
        title: str = "An issue",
        body: str = "",
        author: str = "mona",
        labels: tuple[str, ...] = (),
    ) -> IssueState:
        repo = self.repo(full_name)
        issue = IssueState(
            repo.full_name, self._number(full_name, number), title, body, author, labels
        )
        self.issues[(full_name.lower(), issue.number)] = issue
        return issue

    def add_pull(
        self,
        full_name: str,
        number: int | None = None,
        *,
        title: str = "A pull request",
        body: str = "",
        author: str = "mona",
        head_ref: str = "feature",
        head_sha: str | None = None,
        base_ref: str | None = None,
        draft: bool = False,
        files: list[str] | None = None,
    ) -> PullState:
        """A pull request from a branch of this repository, which `head_sha` moves (a push)."""
        repo = self.repo(full_name)
        pull = PullState(
            repo.full_name,
            self._number(full_name, number),
            title,
            body,
            author,
            head_ref=head_ref,
            head_sha=self.set_branch(full_name, head_ref, head_sha),
            head_repo=repo.full_name,
            base_ref=base_ref or repo.default_branch,
            draft=draft,
            files=list(files or []),
        )
        self.issues[(full_name.lower(), pull.number)] = pull
        return pull

    def add_comment(
        self,
        full_name: str,
        number: int,
        body: str,
        *,
        author: str = "mona",
        author_type: str = "User",
        via_app_id: int | None = None,
        comment_id: int | None = None,
    ) -> CommentState:
        """An issue comment (by another App with `via_app_id`)."""
        comment = CommentState(
            self.next_id(comment_id),
            self.repo(full_name).full_name,
            number,
            body,
            author,
            author_type,
            via_app_id=via_app_id,
        )
        self.comments.append(comment)
        return comment

    def add_review_comment(
        self,
        full_name: str,
        pull_number: int,
        body: str,
        *,
        path: str = "README.md",
        line: int | None = 1,
        author: str = "mona",
        comment_id: int | None = None,
        in_reply_to_id: int | None = None,
    ) -> ReviewCommentState:
        comment = ReviewCommentState(
            self.next_id(comment_id),
            self.repo(full_name).full_name,
            pull_number,
            path,
            line,
            body,
            author,
            in_reply_to_id,
        )
        self.review_comments.append(comment)
        return comment

    def fail_once(self, method: str, error: BaseException) -> None:
        """The next call of `method` (e.g. "request_review") raises `error`, doing nothing."""
        self.failures.setdefault(method, []).append(error)

    # -- what a person sees -----------------------------------------------------------------------
    def comments_on(self, full_name: str, number: int) -> list[CommentState]:
        return in_repo(self.comments, full_name, number=number)

    def pulls_in(self, full_name: str) -> list[PullState]:
        issues = sorted(in_repo(self.issues.values(), full_name), key=lambda i: i.number)
        return [p for p in issues if isinstance(p, PullState)]

    def check_runs_on(self, full_name: str, head_sha: str | None = None) -> list[CheckRunState]:
        runs = in_repo(self.check_runs, full_name)
        return [r for r in runs if head_sha in (None, r.head_sha)]

    def review_comments_on(self, full_name: str, pull_number: int) -> list[ReviewCommentState]:
        return in_repo(self.review_comments, full_name, pull_number=pull_number)

    # -- the App, as GitHubApp --------------------------------------------------------------------
    async def installation(self, installation_id: int) -> MemoryInstallation:
        return MemoryInstallation(self, installation_id)

    async def installation_token(self, installation_id: int) -> str:
        if not any(r.installation_id == installation_id for r in self.repos.values()):
            endpoint = f"POST /app/installations/{installation_id}/access_tokens"
            raise not_found("installation_token", endpoint)
        if installation_id not in self.tokens:
            self.tokens[installation_id] = "ghs_" + fake_sha("token", installation_id)[:36]
        return self.tokens[installation_id]

    async def app_info(self) -> AppInfo:
        return self.info

    async def aclose(self) -> None:
        pass

    def known_secrets(self) -> list[str]:
        return [self.private_key_pem, *self.tokens.values()]
