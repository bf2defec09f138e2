"""The fake GitHub's state: plain dataclasses that tests seed and inspect directly.

Nothing here does I/O. Identifiers, timestamps and hashes are generated the way GitHub shapes them
(numeric ids, node ids, git blob SHAs), so code under test cannot tell them from the real thing.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

DEFAULT_INSTALLATION_PERMISSIONS: dict[str, str] = {
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}
DEFAULT_EVENTS = ["check_run", "issue_comment", "issues", "pull_request", "pull_request_review"]
REACTION_CONTENTS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
ROLE_NAMES = ("admin", "maintain", "write", "triage", "read", "none")
PermissionLevel = Literal["admin", "maintain", "write", "triage", "read", "none"]

_ids = itertools.count(1_000_001)


def next_id() -> int:
    """A fresh numeric id; one sequence for every kind of object keeps ids unique fake-wide."""
    return next(_ids)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime | None) -> str | None:
    """GitHub's timestamp format: seconds precision, `Z` suffix."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(prefix: str, number: int) -> str:
    """A node id in GitHub's current style (`IC_kwDO...`), stable for a given object."""
    packed = base64.urlsafe_b64encode(f"{prefix}:{number}".encode()).decode().rstrip("=")
    return f"{prefix}_kwDO{packed}"


def blob_sha(content: bytes) -> str:
    """The git blob id of `content`, which is what the contents API calls `sha`."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def default_branch_sha(full_name: str, branch: str) -> str:
    """A stable commit SHA for a branch when no git repository backs the fake."""
    key = f"{full_name.lower()}:{branch}".encode()
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()


SHA_RE = re.compile(r"[0-9a-f]{40}")


@dataclass
class AppState:
    """A GitHub App the fake knows: the one under test, or one created by the manifest flow."""

    id: int
    slug: str
    name: str
    private_key_pem: str
    owner: str = "honk-dev"
    client_id: str = ""
    client_secret: str = ""
    webhook_secret: str | None = None
    description: str | None = None
    external_url: str = "https://example.com"
    permissions: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_INSTALLATION_PERMISSIONS)
    )
    events: list[str] = field(default_factory=lambda: list(DEFAULT_EVENTS))
    created_at: datetime = field(default_factory=utcnow)

    @property
    def bot_login(self) -> str:
        return f"{self.slug}[bot]"


@dataclass
class InstallationState:
    id: int
    app_id: int
    account: str
    permissions: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_INSTALLATION_PERMISSIONS)
    )
    events: list[str] = field(default_factory=lambda: list(DEFAULT_EVENTS))
    repository_selection: Literal["all", "selected"] = "selected"
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class IssuedToken:
    """An installation access token the fake handed out (`ghs_...`, valid for one hour)."""

    token: str
    installation_id: int
    expires_at: datetime
    permissions: dict[str, str]
    repositories: list[str] | None = None  # lower-case full names; None = all of the installation


@dataclass
class RepoState:
    full_name: str
    id: int
    installation_id: int
    default_branch: str = "main"
    private: bool = True
    description: str | None = None
    # ref (branch name or commit SHA) -> path -> content
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    # login (lower-case) -> role name
    permissions: dict[str, str] = field(default_factory=dict)
    issues: dict[int, IssueState] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)
    # branch name -> classic protection on; fnmatch pattern -> the active ruleset rules (JSON)
    protected_branches: set[str] = field(default_factory=set)
    branch_rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]

    def next_number(self) -> int:
        return max(self.issues, default=0) + 1


@dataclass
class IssueState:
    repo: str  # full name
    number: int
    title: str
    body: str | None
    user: str
    id: int = field(default_factory=next_id)
    state: Literal["open", "closed"] = "open"
    labels: list[str] = field(default_factory=list)
    locked: bool = False
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    closed_at: datetime | None = None
    via_app: int | None = None  # app id when an installation created it


@dataclass
class PullFile:
    """One entry of `GET /pulls/{n}/files`."""

    filename: str
    status: Literal["added", "removed", "modified", "renamed", "copied", "changed", "unchanged"] = (
        "modified"
    )
    additions: int = 1
    deletions: int = 0
    patch: str | None = None
    previous_filename: str | None = None


@dataclass
class PullState(IssueState):
    """A pull request; it is also an issue of its repository, sharing the number sequence."""

    head_ref: str = ""
    head_sha: str = ""
    base_ref: str = "main"
    head_repo: str = ""  # full name of the repository the head branch lives in (a fork or the same)
    draft: bool = False
    merged: bool = False
    maintainer_can_modify: bool = False
    requested_reviewers: list[str] = field(default_factory=list)
    requested_teams: list[str] = field(default_factory=list)
    files: list[PullFile] = field(default_factory=list)

    @property
    def head_label(self) -> str:
        return f"{self.head_repo.split('/', 1)[0]}:{self.head_ref}"

    @property
    def is_fork(self) -> bool:
        return self.head_repo.lower() != self.repo.lower()


@dataclass
class CommentState:
    """An issue comment (issues and pull requests share these)."""

    repo: str
    issue_number: int
    body: str
    user: str
    id: int = field(default_factory=next_id)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    via_app: int | None = None


@dataclass
class ReviewCommentState:
    """A comment on a line of a pull request's diff."""

    repo: str
    pull_number: int
    body: str
    user: str
    path: str
    commit_id: str
    line: int | None = 1
    side: Literal["LEFT", "RIGHT"] = "RIGHT"
    diff_hunk: str = "@@ -1,1 +1,1 @@"
    in_reply_to_id: int | None = None
    review_id: int = field(default_factory=next_id)
    id: int = field(default_factory=next_id)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    via_app: int | None = None


ReactionSubject = Literal["issue", "issue_comment", "review_comment"]


@dataclass
class ReactionState:
    repo: str
    subject: ReactionSubject
    subject_id: int  # issue number, or comment id
    content: str
    user: str
    id: int = field(default_factory=next_id)
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class CheckRunState:
    repo: str
    name: str
    head_sha: str
    app_id: int
    id: int = field(default_factory=next_id)
    check_suite_id: int = field(default_factory=next_id)
    status: str = "queued"
    conclusion: str | None = None
    external_id: str | None = None
    details_url: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    output: dict[str, Any] = field(default_factory=dict)  # title, summary, text
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ManifestRecord:
    """An app manifest the browser-side flow received, and the code it was exchanged for."""

    manifest: dict[str, Any]
    state: str | None
    code: str
    organization: str | None = None
    converted_app_id: int | None = None


@dataclass
class RecordedRequest:
    """One request the fake received. `json` is filled in for API calls with a JSON body."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    status: int | None = None
    peer: str = ""  # the client's "host:port": one per TCP connection
    bytes_sent: int = 0  # the response body's bytes the fake handed to the connection


@dataclass(frozen=True)
class Flood:
    """How a planned answer's body is sent (github_hostile.py): without `Content-Length`, in
    `chunk`-byte writes `pause_s` apart, with `filler` bytes of JSON whitespace after its first
    byte, so that a body of any size stays valid JSON and costs the fake no memory."""

    chunk: int = 65536
    pause_s: float = 0.0
    filler: int = 0


@dataclass
class Injection:
    """A planned answer: the next `times` requests matching method and path get this one."""

    method: str
    path_regex: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    flood: Flood | None = None
    endless: bool = False  # every answer links `next` to one more page, for ever

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and self.method in ("*", method.upper())
            and self.path_regex.fullmatch(path) is not None
        )
