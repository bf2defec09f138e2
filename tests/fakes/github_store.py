"""Everything the fake GitHub knows, in plain lists and dicts, and the lookups over them.

Tests read these directly (`fake.comments`, `fake.check_runs`, `fake.requests`...); the request
handlers share the lookups. Handlers mutate state under `lock`, since the server runs in a thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.fakes.github_auth import has_permission, token_covers
from tests.fakes.github_state import (
    AppState,
    CheckRunState,
    CommentState,
    Injection,
    InstallationState,
    IssuedToken,
    IssueState,
    ManifestRecord,
    PullState,
    ReactionState,
    ReactionSubject,
    RecordedRequest,
    RepoState,
    ReviewCommentState,
    utcnow,
)

if TYPE_CHECKING:
    from tests.fakes.github_ratelimit import RateWindow


@dataclass(eq=False)
class Store:
    lock: threading.RLock = field(default_factory=threading.RLock)
    apps: dict[int, AppState] = field(default_factory=dict)
    installations: dict[int, InstallationState] = field(default_factory=dict)
    repos: dict[str, RepoState] = field(default_factory=dict)  # keyed by lower-case full name
    organizations: set[str] = field(default_factory=lambda: {"honk-dev"})
    tokens: list[IssuedToken] = field(default_factory=list)
    tokens_by_value: dict[str, IssuedToken] = field(default_factory=dict)
    pulls: list[PullState] = field(default_factory=list)
    comments: list[CommentState] = field(default_factory=list)
    review_comments: list[ReviewCommentState] = field(default_factory=list)
    reactions: list[ReactionState] = field(default_factory=list)
    check_runs: list[CheckRunState] = field(default_factory=list)
    manifests: list[ManifestRecord] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path), git included
    request_log: list[RecordedRequest] = field(default_factory=list)
    injections: list[Injection] = field(default_factory=list)
    rate_windows: dict[str, RateWindow] = field(default_factory=dict)  # "who:resource"

    def token_is_valid(self, token: str | None, full_name: str, *, write: bool = False) -> bool:
        """Whether `token` is a live installation token that may read (or push to) a repo."""
        with self.lock:
            issued = self.tokens_by_value.get(token or "")
            repo = self.repos.get(full_name.lower())
            if issued is None or repo is None or issued.expires_at <= utcnow():
                return False
            if not token_covers(issued, repo.installation_id, full_name):
                return False
            return has_permission(issued.permissions, "contents", "write" if write else "read")

    def repo(self, full_name: str) -> RepoState:
        return self.repos[full_name.lower()]

    def issue(self, full_name: str, number: int) -> IssueState:
        return self.repo(full_name).issues[number]

    def pull(self, full_name: str, number: int) -> PullState:
        pull = self.repo(full_name).issues[number]
        if not isinstance(pull, PullState):
            raise KeyError(f"{full_name}#{number} is an issue, not a pull request")
        return pull

    def comments_on(self, full_name: str, number: int) -> list[CommentState]:
        key = full_name.lower()
        return [c for c in self.comments if c.repo.lower() == key and c.issue_number == number]

    def review_comments_on(self, full_name: str, number: int) -> list[ReviewCommentState]:
        key = full_name.lower()
        return [
            c for c in self.review_comments if c.repo.lower() == key and c.pull_number == number
        ]

    def find_review_comment(self, full_name: str, comment_id: int) -> ReviewCommentState | None:
        key = full_name.lower()
        return next(
            (c for c in self.review_comments if c.id == comment_id and c.repo.lower() == key), None
        )

    def reactions_on(
        self, full_name: str, subject: ReactionSubject, subject_id: int
    ) -> list[ReactionState]:
        key = full_name.lower()
        return [
            r
            for r in self.reactions
            if r.repo.lower() == key and r.subject == subject and r.subject_id == subject_id
        ]

    @property
    def requested_reviewers(self) -> dict[str, list[str]]:
        """`owner/repo#number` -> logins asked to review."""
        return {f"{p.repo}#{p.number}": list(p.requested_reviewers) for p in self.pulls}

    def api_requests(self) -> list[tuple[str, str]]:
        """Requests other than git traffic."""
        return [(m, p) for m, p in self.requests if ".git/" not in p and not p.endswith(".git")]
