"""An in-memory GitHub for unit tests of the run's steps: no HTTP, state in plain lists and dicts.

`MemoryGitHub` stands where the steps expect a `GitHubApp` (`installation`, `installation_token`,
`app_info`, `aclose`, `known_secrets`); `installation()` hands out a `MemoryInstallation`, which
has the methods Honk's steps call on `InstallationClient`, with the same signatures and return
types (the real dataclasses of honk_app.github.models). tests/fakes/test_memory_github.py holds
the signatures to the real ones.

It keeps the semantics the steps rely on for idempotency, as the real client has them:
- a comment is found again by its hidden marker, and only if this App wrote it (`is_own`);
  `upsert_comment` edits only when the text differs, else posts once;
- a pull request is found by its head `owner:branch` before one is created; an update changes the
  title and body only when they differ, never the draft state (`set_draft` does, read first);
- a check run is found by commit, name, this App and `external_id`; annotations beyond the first
  50 are appended in further updates, as GitHub does;
- GitHub dedupes reactions; review requests for the author or a non-collaborator answer 422, which
  the real client ignores;
- a repository outside the installation, or a missing issue, pull request or comment, answers 404
  as a `GitHubError` worded like honk_app.github.errors.describe's.

`repo_config_text` and `reply` are the real methods (they only compose the ones below), so their
decisions are Honk's own. What is not modelled: commits other than branch heads (check runs may be
put on any sha), rate limits and server errors (inject one with `fail_once`), closed issues.
A test seeds state with `add_repo`, `add_issue`, `add_pull`, `add_comment`, `set_file`,
`set_permission`, and reads what a person would see: `comments_on`, `pulls_in`, `check_runs_on`,
`reactions`, `review_comments_on`. `writes` lists every change made through the API, in order.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

from honk_app.github.errors import GitHubError
from honk_app.github.issues import IssueCalls, with_marker
from honk_app.github.models import (
    AppInfo,
    CheckRunInfo,
    Comment,
    CommentInfo,
    IssueInfo,
    PullInfo,
    ReviewCommentInfo,
    annotation_batches,
    bot_login,
    is_own,
    pull_already_exists,
    split_full_name,
)

log = logging.getLogger("honk.github")

APP_ID = 424242  # tests/fixtures/payloads.py: HONK_APP_ID, HONK_APP_SLUG
APP_SLUG = "honk-dev"
SITE = "https://github.com"


def refused(op: str, endpoint: str, status: int, detail: str) -> GitHubError:
    """A GitHubError as the real adapter words one (honk_app.github.errors.describe)."""
    return GitHubError(
        f"GitHub refused {op} ({endpoint}) with {status}: {detail}.", status=status, detail=detail
    )


def fake_sha(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()


# ---- state a test seeds and inspects ------------------------------------------------------------


@dataclass
class RepoState:
    full_name: str
    installation_id: int
    default_branch: str = "main"
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # branch → path → text
    branches: dict[str, str] = field(default_factory=dict)  # branch → head sha
    permissions: dict[str, str] = field(default_factory=dict)  # login (lower) → level
    last_number: int = 0

    @property
    def owner(self) -> str:
        return split_full_name(self.full_name)[0]


@dataclass
class IssueState:
    repo: str
    number: int
    title: str
    body: str
    author: str
    labels: tuple[str, ...] = ()
    state: str = "open"

    @property
    def html_url(self) -> str:
        return f"{SITE}/{self.repo}/issues/{self.number}"


@dataclass
class PullState(IssueState):
    head_ref: str = ""
    head_sha: str = ""
    head_repo: str | None = None  # None: the fork was deleted
    base_ref: str = "main"
    draft: bool = False
    node_id: str = ""
    files: list[str] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)

    @property
    def html_url(self) -> str:
        return f"{SITE}/{self.repo}/pull/{self.number}"

    @property
    def head_label(self) -> str:
        owner = split_full_name(self.head_repo)[0] if self.head_repo else "ghost"
        return f"{owner}:{self.head_ref}"


@dataclass
class CommentState:
    id: int
    repo: str
    number: int
    body: str
    author: str
    author_type: str = "User"
    author_association: str = "NONE"
    via_app_id: int | None = None
    created_at: str = "2025-05-20T09:00:00Z"
    edits: int = 0

    @property
    def html_url(self) -> str:
        return f"{SITE}/{self.repo}/issues/{self.number}#issuecomment-{self.id}"


@dataclass
class ReviewCommentState:
    id: int
    repo: str
    pull_number: int
    path: str
    line: int | None
    body: str
    author: str
    in_reply_to_id: int | None = None

    @property
    def html_url(self) -> str:
        return f"{SITE}/{self.repo}/pull/{self.pull_number}#discussion_r{self.id}"


@dataclass
class CheckRunState:
    id: int
    repo: str
    head_sha: str
    name: str
    external_id: str
    app_id: int
    status: str = "queued"
    conclusion: str | None = None
    output: dict[str, Any] = field(default_factory=dict)  # title, summary, text
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    details_url: str | None = None

    @property
    def html_url(self) -> str:
        return f"{SITE}/{self.repo}/runs/{self.id}"


@dataclass(frozen=True)
class Reaction:
    repo: str
    subject: str  # "issue", "comment", "review_comment"
    subject_id: int  # the issue number, or the comment's id
    content: str
    user: str


# ---- the App ------------------------------------------------------------------------------------


class MemoryGitHub:
    """GitHub's state for one test, and the App (as `GitHubApp`) that the steps use."""

    def __init__(
        self,
        *,
        app_id: int = APP_ID,
        app_slug: str = APP_SLUG,
        private_key_pem: str = "-----BEGIN PRIVATE KEY-----\nfake\n-----END PRIVATE KEY-----\n",
        bot_user_id: int = 9_000_001,
    ) -> None:
        self.app_id = app_id
        self.info = AppInfo(app_id, app_slug, "Honk (dev)", bot_login(app_slug), bot_user_id)
        self.private_key_pem = private_key_pem
        self.repos: dict[str, RepoState] = {}  # by lower-case full name
        self.issues: dict[tuple[str, int], IssueState] = {}  # pulls too: a pull is an issue
        self.comments: list[CommentState] = []
        self.review_comments: list[ReviewCommentState] = []
        self.check_runs: list[CheckRunState] = []
        self.reactions: list[Reaction] = []
        self.tokens: dict[int, str] = {}
        self.writes: list[str] = []  # "POST /repos/.../issues/42/comments", in order
        self.failures: dict[str, list[BaseException]] = {}
        self.closed = False
        self._ids = itertools.count(2_200_000_001)

    # -- seeding ----------------------------------------------------------------------------------
    def next_id(self) -> int:
        return next(self._ids)

    def add_repo(
        self,
        full_name: str,
        *,
        installation_id: int,
        default_branch: str = "main",
        files: dict[str, str] | None = None,
    ) -> RepoState:
        repo = RepoState(full_name, installation_id, default_branch)
        repo.files[default_branch] = dict(files or {})
        repo.branches[default_branch] = fake_sha(full_name, default_branch)
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
        issue = IssueState(
            self.repo(full_name).full_name,
            self._number(full_name, number),
            title,
            body,
            author,
            labels,
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
        head_repo: str | None = "",
        base_ref: str | None = None,
        draft: bool = False,
        files: list[str] | None = None,
    ) -> PullState:
        """A pull request a person opened; `head_repo` names a fork ("" for this repository,
        None for a deleted fork)."""
        repo = self.repo(full_name)
        if head_repo == "":
            head_repo = repo.full_name
            head_sha = self.set_branch(full_name, head_ref, head_sha)
        pull = PullState(
            repo.full_name,
            self._number(full_name, number),
            title,
            body,
            author,
            head_ref=head_ref,
            head_sha=head_sha or fake_sha(head_repo, head_ref),
            head_repo=head_repo,
            base_ref=base_ref or repo.default_branch,
            draft=draft,
            files=list(files or []),
        )
        pull.node_id = f"PR_kwDO{pull.number:08d}"
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
        """A comment someone else wrote (a person, or another App with `via_app_id`)."""
        comment = CommentState(
            comment_id if comment_id is not None else self.next_id(),
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
    ) -> ReviewCommentState:
        comment = ReviewCommentState(
            comment_id if comment_id is not None else self.next_id(),
            self.repo(full_name).full_name,
            pull_number,
            path,
            line,
            body,
            author,
        )
        self.review_comments.append(comment)
        return comment

    def fail_once(self, method: str, error: BaseException) -> None:
        """The next call of `method` (e.g. "request_review") raises `error`, doing nothing."""
        self.failures.setdefault(method, []).append(error)

    # -- what a person sees -----------------------------------------------------------------------
    def comments_on(self, full_name: str, number: int) -> list[CommentState]:
        key = full_name.lower()
        return [c for c in self.comments if c.repo.lower() == key and c.number == number]

    def pulls_in(self, full_name: str) -> list[PullState]:
        key = full_name.lower()
        return [
            p
            for (repo, _), p in sorted(self.issues.items())
            if repo == key and isinstance(p, PullState)
        ]

    def check_runs_on(self, full_name: str, head_sha: str | None = None) -> list[CheckRunState]:
        key = full_name.lower()
        return [
            r
            for r in self.check_runs
            if r.repo.lower() == key and (head_sha is None or r.head_sha == head_sha)
        ]

    def review_comments_on(self, full_name: str, pull_number: int) -> list[ReviewCommentState]:
        key = full_name.lower()
        return [
            c
            for c in self.review_comments
            if c.repo.lower() == key and c.pull_number == pull_number
        ]

    # -- the App, as GitHubApp --------------------------------------------------------------------
    async def installation(self, installation_id: int) -> MemoryInstallation:
        return MemoryInstallation(self, installation_id)

    async def installation_token(self, installation_id: int) -> str:
        if not any(r.installation_id == installation_id for r in self.repos.values()):
            endpoint = f"POST /app/installations/{installation_id}/access_tokens"
            raise refused("installation_token", endpoint, 404, "Not Found")
        token = self.tokens.get(installation_id)
        if token is None:
            token = "ghs_" + fake_sha("token", installation_id)[:36]
            self.tokens[installation_id] = token
        return token

    async def app_info(self) -> AppInfo:
        return self.info

    async def aclose(self) -> None:
        self.closed = True

    def known_secrets(self) -> list[str]:
        return [self.private_key_pem, *self.tokens.values()]


# ---- one installation, as InstallationClient ----------------------------------------------------


class MemoryInstallation:
    """The calls Honk's steps make as one installation; see the module docstring."""

    def __init__(self, github: MemoryGitHub, installation_id: int) -> None:
        self.github = github
        self.installation_id = installation_id
        self._app = github.info

    # -- plumbing ---------------------------------------------------------------------------------
    def _call(self, method: str) -> None:
        pending = self.github.failures.get(method)
        if pending:
            raise pending.pop(0)

    def _write(self, endpoint: str) -> None:
        self.github.writes.append(endpoint)

    def _repo(self, full_name: str, op: str, endpoint: str) -> RepoState:
        split_full_name(full_name)  # the real client refuses anything but owner/repo
        repo = self.github.repos.get(full_name.lower())
        if repo is None or repo.installation_id != self.installation_id:
            raise refused(op, endpoint, 404, "Not Found")
        return repo

    def _issue(self, full_name: str, number: int, op: str, endpoint: str) -> IssueState:
        self._repo(full_name, op, endpoint)
        issue = self.github.issues.get((full_name.lower(), number))
        if issue is None:
            raise refused(op, endpoint, 404, "Not Found")
        return issue

    def _pull(self, full_name: str, number: int, op: str, endpoint: str) -> PullState:
        pull = self._issue(full_name, number, op, endpoint)
        if not isinstance(pull, PullState):
            raise refused(op, endpoint, 404, "Not Found")
        return pull

    def _own(self, author: str, via_app_id: int | None = None) -> bool:
        return is_own(author, via_app_id, app_id=self._app.id, app_login=self._app.bot_login)

    # -- people and reactions ---------------------------------------------------------------------
    async def permission(self, full_name: str, login: str) -> str:
        self._call("permission")
        endpoint = f"GET /repos/{full_name}/collaborators/{login}/permission"
        repo = self._repo(full_name, "permission", endpoint)
        return repo.permissions.get(login.lower(), "none")

    async def add_reaction(
        self,
        full_name: str,
        *,
        issue_number: int | None = None,
        comment_id: int | None = None,
        review_comment_id: int | None = None,
        content: str = "eyes",
    ) -> None:
        self._call("add_reaction")
        split_full_name(full_name)
        given = [x for x in (issue_number, comment_id, review_comment_id) if x is not None]
        if len(given) != 1:
            raise ValueError(
                "add_reaction needs exactly one of issue_number, comment_id, review_comment_id."
            )
        key = full_name.lower()
        if issue_number is not None:
            endpoint = f"POST /repos/{full_name}/issues/{issue_number}/reactions"
            self._issue(full_name, issue_number, "add_reaction", endpoint)
            subject, subject_id = "issue", issue_number
        elif comment_id is not None:
            endpoint = f"POST /repos/{full_name}/issues/comments/{comment_id}/reactions"
            self._repo(full_name, "add_reaction", endpoint)
            if not any(c.id == comment_id and c.repo.lower() == key for c in self.github.comments):
                raise refused("add_reaction", endpoint, 404, "Not Found")
            subject, subject_id = "comment", comment_id
        else:
            assert review_comment_id is not None
            endpoint = f"POST /repos/{full_name}/pulls/comments/{review_comment_id}/reactions"
            self._repo(full_name, "add_reaction", endpoint)
            if not any(
                c.id == review_comment_id and c.repo.lower() == key
                for c in self.github.review_comments
            ):
                raise refused("add_reaction", endpoint, 404, "Not Found")
            subject, subject_id = "review_comment", review_comment_id
        reaction = Reaction(
            self.github.repo(full_name).full_name, subject, subject_id, content, self._app.bot_login
        )
        if reaction not in self.github.reactions:  # GitHub answers 200 for an existing one
            self.github.reactions.append(reaction)
            self._write(endpoint)

    # -- issue comments ---------------------------------------------------------------------------
    def _issue_comments(self, full_name: str, number: int, op: str) -> list[CommentState]:
        self._issue(full_name, number, op, f"GET /repos/{full_name}/issues/{number}/comments")
        return self.github.comments_on(full_name, number)

    async def find_comment_with_marker(
        self, full_name: str, issue_number: int, marker: str
    ) -> Comment | None:
        self._call("find_comment_with_marker")
        for comment in self._issue_comments(full_name, issue_number, "find_comment_with_marker"):
            if marker in comment.body and self._own(comment.author, comment.via_app_id):
                return _comment(comment)
        return None

    async def upsert_comment(
        self, full_name: str, issue_number: int, marker: str, body: str
    ) -> Comment:
        self._call("upsert_comment")
        body = with_marker(body, marker)
        existing = await self.find_comment_with_marker(full_name, issue_number, marker)
        if existing is not None:
            if existing.body == body:
                return existing
            return await self._edit_comment(full_name, existing.id, body, "upsert_comment")
        endpoint = f"POST /repos/{full_name}/issues/{issue_number}/comments"
        self._issue(full_name, issue_number, "upsert_comment", endpoint)
        comment = CommentState(
            self.github.next_id(),
            self.github.repo(full_name).full_name,
            issue_number,
            body,
            self._app.bot_login,
            "Bot",
            via_app_id=self._app.id,
        )
        self.github.comments.append(comment)
        self._write(endpoint)
        return _comment(comment)

    async def _edit_comment(self, full_name: str, comment_id: int, body: str, op: str) -> Comment:
        endpoint = f"PATCH /repos/{full_name}/issues/comments/{comment_id}"
        self._repo(full_name, op, endpoint)
        key = full_name.lower()
        found = [c for c in self.github.comments if c.id == comment_id and c.repo.lower() == key]
        if not found:
            raise refused(op, endpoint, 404, "Not Found")
        found[0].body = body
        found[0].edits += 1
        self._write(endpoint)
        return _comment(found[0])

    async def update_comment(self, full_name: str, comment_id: int, body: str) -> None:
        self._call("update_comment")
        await self._edit_comment(full_name, comment_id, body, "update_comment")

    # The real method: it only calls upsert_comment.
    reply = IssueCalls.reply

    async def list_issue_comments(self, full_name: str, number: int) -> list[CommentInfo]:
        self._call("list_issue_comments")
        return [
            CommentInfo(
                id=c.id,
                author=c.author,
                author_type=c.author_type,
                author_association=c.author_association,
                body=c.body,
                created_at=c.created_at,
                html_url=c.html_url,
                via_app_id=c.via_app_id,
            )
            for c in self._issue_comments(full_name, number, "list_issue_comments")
        ]

    # -- files and configuration ------------------------------------------------------------------
    async def get_file(self, full_name: str, path: str, ref: str | None = None) -> str | None:
        """A file's text; None when absent (404) or a directory, as the real client answers."""
        self._call("get_file")
        endpoint = f"GET /repos/{full_name}/contents/{path}"
        try:
            repo = self._repo(full_name, "get_file", endpoint)
        except GitHubError as error:
            if error.status == 404:
                return None
            raise
        files = repo.files.get(ref if ref is not None else repo.default_branch)
        if files is None:
            return None  # GitHub: 404 "No commit found for the ref"
        return files.get(path.strip("/"))

    # The real method: it only calls get_file.
    repo_config_text = IssueCalls.repo_config_text

    # -- issues -----------------------------------------------------------------------------------
    async def get_issue(self, full_name: str, number: int) -> IssueInfo:
        self._call("get_issue")
        issue = self._issue(
            full_name, number, "get_issue", f"GET /repos/{full_name}/issues/{number}"
        )
        return IssueInfo(
            number=issue.number,
            title=issue.title,
            body=issue.body,
            author=issue.author,
            is_pull_request=isinstance(issue, PullState),
            state=issue.state,
            html_url=issue.html_url,
            labels=issue.labels,
        )

    # -- pull requests ----------------------------------------------------------------------------
    async def get_pull(self, full_name: str, number: int) -> PullInfo:
        self._call("get_pull")
        endpoint = f"GET /repos/{full_name}/pulls/{number}"
        return _pull_info(self._pull(full_name, number, "get_pull", endpoint))

    async def pull_files(self, full_name: str, number: int) -> list[str]:
        self._call("pull_files")
        endpoint = f"GET /repos/{full_name}/pulls/{number}/files"
        return list(self._pull(full_name, number, "pull_files", endpoint).files)

    async def pull_review_comments(self, full_name: str, number: int) -> list[ReviewCommentInfo]:
        self._call("pull_review_comments")
        endpoint = f"GET /repos/{full_name}/pulls/{number}/comments"
        self._pull(full_name, number, "pull_review_comments", endpoint)
        return [
            ReviewCommentInfo(
                id=c.id,
                path=c.path,
                line=c.line,
                body=c.body,
                author=c.author,
                html_url=c.html_url,
                in_reply_to_id=c.in_reply_to_id,
            )
            for c in self.github.review_comments_on(full_name, number)
        ]

    async def reply_to_review_comment(
        self, full_name: str, pull_number: int, comment_id: int, body: str, *, marker: str
    ) -> None:
        self._call("reply_to_review_comment")
        body = with_marker(body, marker)
        endpoint = f"GET /repos/{full_name}/pulls/{pull_number}/comments"
        self._pull(full_name, pull_number, "reply_to_review_comment", endpoint)
        thread = self.github.review_comments_on(full_name, pull_number)
        if any(marker in c.body and self._own(c.author) for c in thread):
            return
        endpoint = f"POST /repos/{full_name}/pulls/{pull_number}/comments/{comment_id}/replies"
        parent = next((c for c in thread if c.id == comment_id), None)
        if parent is None:
            raise refused("reply_to_review_comment", endpoint, 404, "Not Found")
        self.github.review_comments.append(
            ReviewCommentState(
                self.github.next_id(),
                parent.repo,
                pull_number,
                parent.path,
                parent.line,
                body,
                self._app.bot_login,
                in_reply_to_id=parent.in_reply_to_id or parent.id,
            )
        )
        self._write(endpoint)

    async def find_pull_by_head(self, full_name: str, owner: str, branch: str) -> PullInfo | None:
        self._call("find_pull_by_head")
        endpoint = f"GET /repos/{full_name}/pulls?head={owner}:{branch}"
        self._repo(full_name, "find_pull_by_head", endpoint)
        label = f"{owner}:{branch}".lower()
        for pull in reversed(self.github.pulls_in(full_name)):  # GitHub lists newest first
            if pull.state == "open" and pull.head_label.lower() == label:
                return _pull_info(pull)
        return None

    async def create_or_update_pull(
        self, full_name: str, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullInfo:
        self._call("create_or_update_pull")
        repo_owner, _ = split_full_name(full_name)
        head_owner, _, branch = head.rpartition(":")
        head_owner = head_owner or repo_owner
        existing = await self.find_pull_by_head(full_name, head_owner, branch)
        if existing is None:
            try:
                created = self._create_pull(full_name, head_owner, branch, base, title, body, draft)
                return _pull_info(created)
            except GitHubError as error:
                if error.status != 422 or not pull_already_exists(error.detail):
                    raise
                existing = await self.find_pull_by_head(full_name, head_owner, branch)
                if existing is None:
                    raise
        if existing.title == title and existing.body == body:
            return existing
        endpoint = f"PATCH /repos/{full_name}/pulls/{existing.number}"
        pull = self._pull(full_name, existing.number, "create_or_update_pull", endpoint)
        pull.title = title
        if body:  # an empty body is left out of the request
            pull.body = body
        self._write(endpoint)
        return _pull_info(pull)

    def _create_pull(
        self,
        full_name: str,
        head_owner: str,
        branch: str,
        base: str,
        title: str,
        body: str,
        draft: bool,
    ) -> PullState:
        endpoint = f"POST /repos/{full_name}/pulls"
        repo = self._repo(full_name, "create_or_update_pull", endpoint)

        def invalid(detail: str) -> GitHubError:
            return refused("create_or_update_pull", endpoint, 422, f"Validation Failed ({detail})")

        if not title.strip():
            raise invalid("PullRequest title missing_field")
        if base not in repo.branches:
            raise invalid("PullRequest base invalid")
        if head_owner.lower() != repo.owner.lower() or branch not in repo.branches:
            raise invalid("PullRequest head invalid")  # forks are not modelled
        if branch == base:
            raise invalid(f"No commits between {base} and {branch}")
        label = f"{head_owner}:{branch}".lower()
        for other in self.github.pulls_in(full_name):
            if (
                other.state == "open"
                and other.head_label.lower() == label
                and other.base_ref == base
            ):
                raise invalid(f"A pull request already exists for {head_owner}:{branch}.")
        pull = self.github.add_pull(
            full_name,
            title=title,
            body=body,
            author=self._app.bot_login,
            head_ref=branch,
            head_sha=repo.branches[branch],
            base_ref=base,
            draft=draft,
        )
        self._write(endpoint)
        return pull

    async def set_draft(self, full_name: str, pull: PullInfo, draft: bool) -> None:
        self._call("set_draft")
        current = await self.get_pull(full_name, pull.number)
        if current.draft == draft:
            return
        name = "convertPullRequestToDraft" if draft else "markPullRequestReadyForReview"
        state = self._pull(full_name, pull.number, "set_draft", f"POST /graphql {name}")
        state.draft = draft
        self._write(f"POST /graphql {name}")

    async def request_review(self, full_name: str, number: int, login: str) -> None:
        """GitHub's 422 (the author, or not a collaborator) is ignored, as the real client does."""
        self._call("request_review")
        endpoint = f"POST /repos/{full_name}/pulls/{number}/requested_reviewers"
        pull = self._pull(full_name, number, "request_review", endpoint)
        repo = self.github.repo(full_name)
        if login.lower() == pull.author.lower():
            log.info("GitHub declined a review request: the author cannot review")
            return
        if repo.permissions.get(login.lower(), "none") == "none":
            log.info("GitHub declined a review request: %s is not a collaborator", login)
            return
        if login not in pull.requested_reviewers:
            pull.requested_reviewers.append(login)
        self._write(endpoint)

    # -- check runs -------------------------------------------------------------------------------
    def _check_runs(self, full_name: str, head_sha: str, name: str, op: str) -> list[CheckRunState]:
        endpoint = f"GET /repos/{full_name}/commits/{head_sha}/check-runs"
        self._repo(full_name, op, endpoint)
        runs = [
            r
            for r in self.github.check_runs_on(full_name, head_sha)
            if r.name == name and r.app_id == self._app.id
        ]
        return list(reversed(runs))  # newest first, as GitHub lists them

    async def list_check_runs(self, full_name: str, head_sha: str, name: str) -> list[CheckRunInfo]:
        self._call("list_check_runs")
        return [
            CheckRunInfo(
                id=r.id,
                name=r.name,
                head_sha=r.head_sha,
                external_id=r.external_id,
                status=r.status,
                conclusion=r.conclusion,
                html_url=r.html_url,
                details_url=r.details_url,
                app_id=r.app_id,
            )
            for r in self._check_runs(full_name, head_sha, name, "list_check_runs")
        ]

    async def upsert_check_run(
        self,
        full_name: str,
        *,
        head_sha: str,
        name: str,
        external_id: str,
        status: str,
        conclusion: str | None = None,
        output: dict[str, Any] | None = None,
        actions: list[dict[str, Any]] | None = None,
        details_url: str | None = None,
    ) -> int:
        self._call("upsert_check_run")
        runs = self._check_runs(full_name, head_sha, name, "upsert_check_run")
        run = next((r for r in runs if r.external_id == external_id), None)
        if status == "completed" and conclusion is None:
            endpoint = f"POST /repos/{full_name}/check-runs"
            raise refused("upsert_check_run", endpoint, 422, "Validation Failed (conclusion)")
        batches = annotation_batches(output)
        if run is None:
            run = CheckRunState(
                self.github.next_id(),
                self.github.repo(full_name).full_name,
                head_sha,
                name,
                external_id,
                self._app.id,
            )
            self.github.check_runs.append(run)
            self._write(f"POST /repos/{full_name}/check-runs")
        else:
            self._write(f"PATCH /repos/{full_name}/check-runs/{run.id}")
        run.status = status
        run.conclusion = conclusion if conclusion is not None else run.conclusion
        run.actions = list(actions) if actions is not None else run.actions
        run.details_url = details_url if details_url is not None else run.details_url
        for index, batch in enumerate(batches):
            if batch is None:
                continue
            fields = {k: v for k, v in batch.items() if k != "annotations"}
            run.output = fields if index == 0 else {**run.output, **fields}
            run.annotations.extend(batch.get("annotations") or [])  # GitHub appends them
        for _ in batches[1:]:
            self._write(f"PATCH /repos/{full_name}/check-runs/{run.id}")
        return run.id


# ---- conversions, as honk_app.github.models does them -------------------------------------------


def _comment(comment: CommentState) -> Comment:
    return Comment(
        id=comment.id, body=comment.body, html_url=comment.html_url, author=comment.author
    )


def _pull_info(pull: PullState) -> PullInfo:
    return PullInfo(
        number=pull.number,
        node_id=pull.node_id,
        title=pull.title,
        body=pull.body or "",
        head_ref=pull.head_ref,
        head_sha=pull.head_sha,
        head_repo_full_name=pull.head_repo,
        base_ref=pull.base_ref,
        draft=pull.draft,
        html_url=pull.html_url,
        author=pull.author,
        state=pull.state,
    )
