"""Pure: the plain facts Honk keeps from GitHub's answers, and the small decisions made on them.

githubkit parses GitHub's JSON into large generated models; the run workflow stores its step
results as JSON, so the adapter turns each model into a small frozen dataclass of plain fields here.
Nothing in this module does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from githubkit.utils import Unset

if TYPE_CHECKING:
    from datetime import datetime

    from githubkit_schemas.latest.models import (
        CheckRun,
        Integration,
        Issue,
        IssueComment,
        PullRequest,
        PullRequestReviewComment,
        PullRequestSimple,
        SimpleUser,
    )

PERMISSION_LEVELS = ("admin", "maintain", "write", "triage", "read", "none")
WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})  # who may ask Honk for work
ANNOTATIONS_PER_REQUEST = 50  # GitHub's limit for one check run create or update

T = TypeVar("T")


@dataclass(frozen=True)
class AppInfo:
    """Who Honk is on GitHub. `bot_user_id` is 0 when GitHub would not say (see `app_info`)."""

    id: int
    slug: str
    name: str
    bot_login: str
    bot_user_id: int


@dataclass(frozen=True)
class Comment:
    """An issue or pull request comment Honk wrote (or found again by its marker)."""

    id: int
    body: str
    html_url: str
    author: str


@dataclass(frozen=True)
class CommentInfo:
    """Any issue comment, as context for a run."""

    id: int
    author: str
    author_type: str  # "User", "Bot", "Organization"
    author_association: str  # "OWNER", "MEMBER", "COLLABORATOR", ... "NONE"
    body: str
    created_at: str  # ISO 8601
    html_url: str
    via_app_id: int | None = None


@dataclass(frozen=True)
class IssueInfo:
    number: int
    title: str
    body: str
    author: str
    is_pull_request: bool
    state: str
    html_url: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class PullInfo:
    number: int
    node_id: str  # needed by the GraphQL draft mutations
    title: str
    body: str
    head_ref: str
    head_sha: str
    head_repo_full_name: str | None  # None when the fork was deleted
    base_ref: str
    draft: bool
    html_url: str
    author: str
    state: str


@dataclass(frozen=True)
class ReviewCommentInfo:
    id: int
    path: str
    line: int | None  # None for file-level comments and outdated lines
    body: str
    author: str
    html_url: str
    in_reply_to_id: int | None = None


@dataclass(frozen=True)
class CheckRunInfo:
    id: int
    name: str
    head_sha: str
    external_id: str | None
    status: str
    conclusion: str | None
    html_url: str | None
    details_url: str | None
    app_id: int | None


def present(value: T | Unset | None, default: T) -> T:
    """githubkit marks fields GitHub left out with UNSET; treat them, and null, as the default."""
    return default if value is None or isinstance(value, Unset) else value


def split_full_name(full_name: str) -> tuple[str, str]:
    """`owner/repo` → (owner, repo), refusing anything else with a readable error."""
    owner, sep, repo = full_name.partition("/")
    if not sep or not owner or not repo or "/" in repo:
        raise ValueError(f"A repository name must look like owner/repo, not {full_name!r}.")
    return owner, repo


def bot_login(slug: str) -> str:
    return f"{slug}[bot]"


def permission_level(permission: str, role_name: str) -> str:
    """The finest of GitHub's five levels the API revealed.

    `permission` folds maintain into write and triage into read; `role_name` keeps them, but for a
    custom organisation role it is the role's own name, so it is used only when it is a known level.
    """
    role = role_name.lower()
    if role in PERMISSION_LEVELS:
        return role
    legacy = permission.lower()
    return legacy if legacy in PERMISSION_LEVELS else "none"


def is_own(login: str | None, via_app_id: int | None, *, app_id: int, app_login: str) -> bool:
    """Whether a comment was written by this App (so Honk never edits a human's comment)."""
    if via_app_id is not None and via_app_id == app_id:
        return True
    return login is not None and login.lower() == app_login.lower()


def annotation_batches(output: dict[str, Any] | None) -> list[dict[str, Any] | None]:
    """A check run output split into one output per request, at most 50 annotations each.

    The first keeps every field; the rest repeat the title and summary, which GitHub requires on
    each update, and carry only the next annotations (GitHub appends them to the run).
    """
    if output is None:
        return [None]
    annotations: Sequence[dict[str, Any]] = output.get("annotations") or []
    first = {key: value for key, value in output.items() if key != "annotations"}
    chunks = [
        list(annotations[i : i + ANNOTATIONS_PER_REQUEST])
        for i in range(0, len(annotations), ANNOTATIONS_PER_REQUEST)
    ]
    if not chunks:
        return [first]
    batches: list[dict[str, Any] | None] = [{**first, "annotations": chunks[0]}]
    for chunk in chunks[1:]:
        batches.append(
            {"title": first.get("title"), "summary": first.get("summary"), "annotations": chunk}
        )
    return batches


def pull_already_exists(message: str) -> bool:
    """Whether a 422 is GitHub refusing a second pull request for the same head and base."""
    return "pull request already exists" in message.lower()


def _login(user: SimpleUser | None) -> str:
    return user.login if user is not None else "ghost"  # GitHub's name for deleted accounts


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _app_id(app: Integration | Unset | None) -> int | None:
    return None if app is None or isinstance(app, Unset) else app.id


def comment_from(comment: IssueComment) -> Comment:
    return Comment(
        id=comment.id,
        body=present(comment.body, ""),
        html_url=comment.html_url,
        author=_login(comment.user),
    )


def comment_info_from(comment: IssueComment) -> CommentInfo:
    return CommentInfo(
        id=comment.id,
        author=_login(comment.user),
        author_type=comment.user.type if comment.user is not None else "User",
        author_association=present(comment.author_association, "NONE"),
        body=present(comment.body, ""),
        created_at=_iso(comment.created_at),
        html_url=comment.html_url,
        via_app_id=_app_id(comment.performed_via_github_app),
    )


def issue_from(issue: Issue) -> IssueInfo:
    labels = tuple(
        label if isinstance(label, str) else present(label.name, "") for label in issue.labels
    )
    return IssueInfo(
        number=issue.number,
        title=issue.title,
        body=present(issue.body, ""),
        author=_login(issue.user),
        is_pull_request=not isinstance(issue.pull_request, Unset),
        state=issue.state,
        html_url=issue.html_url,
        labels=tuple(name for name in labels if name),
    )


def pull_from(pull: PullRequest | PullRequestSimple) -> PullInfo:
    head_repo = pull.head.repo
    return PullInfo(
        number=pull.number,
        node_id=pull.node_id,
        title=pull.title,
        body=pull.body or "",
        head_ref=pull.head.ref,
        head_sha=pull.head.sha,
        head_repo_full_name=head_repo.full_name if head_repo is not None else None,
        base_ref=pull.base.ref,
        draft=present(pull.draft, False),
        html_url=pull.html_url,
        author=_login(pull.user),
        state=pull.state,
    )


def review_comment_from(comment: PullRequestReviewComment) -> ReviewCommentInfo:
    return ReviewCommentInfo(
        id=comment.id,
        path=comment.path,
        line=present(comment.line, None),
        body=comment.body,
        author=_login(comment.user),
        html_url=comment.html_url,
        in_reply_to_id=present(comment.in_reply_to_id, None),
    )


def check_run_from(run: CheckRun) -> CheckRunInfo:
    return CheckRunInfo(
        id=run.id,
        name=run.name,
        head_sha=run.head_sha,
        external_id=run.external_id,
        status=run.status,
        conclusion=run.conclusion,
        html_url=run.html_url,
        details_url=run.details_url,
        app_id=_app_id(run.app),
    )
