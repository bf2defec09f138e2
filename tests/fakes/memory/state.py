"""The records of the in-memory GitHub (app.py): what a test seeds and reads back, in plain
dataclasses, and the helpers every part of the fake shares.

Each record carries the fields of the honk_app.github.models dataclass it answers as, under the
same names, so `as_model` fills one from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, TypeVar

from honk_app.github.errors import GitHubError
from honk_app.github.models import split_full_name

APP_ID = 424242  # tests/fixtures/payloads.py: HONK_APP_ID, HONK_APP_SLUG
APP_SLUG = "honk-dev"
SITE = "https://github.com"


def refused(op: str, endpoint: str, status: int, detail: str) -> GitHubError:
    """A GitHubError as the real adapter words one (honk_app.github.errors.describe)."""
    return GitHubError(
        f"GitHub refused {op} ({endpoint}) with {status}: {detail}.", status=status, detail=detail
    )


def not_found(op: str, endpoint: str) -> GitHubError:
    return refused(op, endpoint, 404, "Not Found")


def fake_sha(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()


class InRepo(Protocol):
    @property
    def repo(self) -> str: ...


R = TypeVar("R", bound=InRepo)
M = TypeVar("M")


def in_repo(records: Iterable[R], full_name: str, **equal: object) -> list[R]:
    """The records of one repository (any case) whose fields equal the values of `equal`."""
    key = full_name.lower()
    return [
        r
        for r in records
        if r.repo.lower() == key and all(getattr(r, k) == v for k, v in equal.items())
    ]


def as_model(model: type[M], record: object, **overrides: Any) -> M:
    """A honk_app.github.models dataclass filled from the record's fields of the same names."""
    names = [f.name for f in fields(model) if f.name not in overrides]  # type: ignore[arg-type]
    return model(**{name: getattr(record, name) for name in names}, **overrides)


@dataclass
class RepoState:
    full_name: str
    installation_id: int
    default_branch: str = "main"
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # branch → path → text
    branches: dict[str, str] = field(default_factory=dict)  # branch → head sha
    permissions: dict[str, str] = field(default_factory=dict)  # login (lower) → level
    last_number: int = 0
    protected: set[str] = field(default_factory=set)  # branches with classic protection
    rules: dict[str, tuple[str, ...]] = field(default_factory=dict)  # branch → active rule types


@dataclass
class IssueState:
    """An open issue (closing one is not modelled)."""

    repo: str
    number: int
    title: str
    body: str
    author: str
    labels: tuple[str, ...] = ()

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
    files: list[str] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)

    @property
    def html_url(self) -> str:
        return f"{SITE}/{self.repo}/pull/{self.number}"

    @property
    def node_id(self) -> str:
        return f"PR_kwDO{self.number:08d}"

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
