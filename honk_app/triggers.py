"""Pure: which webhook deliveries ask Honk for something (the `/honk` grammar: command_grammar).

`decide` reads the raw JSON mapping rather than githubkit's models, so that a schema stricter than
what GitHub really sends can never drop a delivery. Every missing or mistyped field becomes an
`Ignored` with a reason a human understands; nothing here raises on a JSON object.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeGuard

from honk_app.command_grammar import parse_command
from honk_app.models import (
    CodeLocation,
    Command,
    Ignored,
    Repository,
    Target,
    Trigger,
    TriggerSource,
)

HONK_MARKER_PREFIX = "<!-- honk:"  # hidden marker Honk puts in its own comments
CHECK_RUN_NAME = "Honk"  # Honk's check runs are named "Honk" or "Honk <something>"
RETRY_ACTION = "retry"  # identifier of the "Retry" button Honk offers on its check runs


@dataclass(frozen=True)
class TriggerRules:
    """The server's settings that decide what counts as a trigger."""

    label: str = "honk"  # HONK_LABEL, matched case-insensitively
    command_word: str = "honk"  # HONK_COMMAND, the word after the slash
    app_id: int | None = None  # Honk's own app id (ignore its own check runs and comments)
    app_slug: str | None = None  # e.g. "honk-dev": its bot login is "honk-dev[bot]"
    allowed_bots: frozenset[str] = frozenset()  # HONK_ALLOWED_BOTS logins, lower-case
    repo_allowlist: tuple[str, ...] = ()  # fnmatch globs on "owner/repo"; empty allows all

    @property
    def bot_login(self) -> str | None:
        """Honk's own login, lower-case, when the app slug is known."""
        return f"{self.app_slug}[bot]".lower() if self.app_slug else None

    def allows_repository(self, full_name: str) -> bool:
        if not self.repo_allowlist:
            return True
        name = full_name.lower()
        return any(fnmatch.fnmatchcase(name, glob.lower()) for glob in self.repo_allowlist)


# ---------------------------------------------------------------------------------------------
# Reading the payload safely


class _Missing(Exception):
    """A field `decide` needs is absent or has the wrong type (turned into `Ignored`)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """`isinstance(value, Mapping)`, with parsed JSON's dicts first (the ABC check is slow)."""
    return type(value) is dict or isinstance(value, Mapping)


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not _is_mapping(value):
        raise _Missing(field)
    return value


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise _Missing(field)
    return value


def _integer(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Missing(field)
    return value


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _action(payload: Mapping[str, Any]) -> str:
    return _text(payload.get("action"), "action")


def _target(repository: Repository, number: Any, field: str, is_pr: bool) -> Target:
    owner, _, repo = repository.full_name.partition("/")
    return Target(owner, repo, _integer(number, field), is_pull_request=is_pr)


def _common(payload: Mapping[str, Any], rules: TriggerRules) -> dict[str, Any] | Ignored:
    """Sender, repository and installation: checked for every event, in Prow's order.

    Returns the `Trigger` fields they fill.
    """
    sender = _mapping(payload.get("sender"), "sender")
    login = _text(sender.get("login"), "sender.login")
    sender_type = _optional_text(sender.get("type")) or "User"
    if rules.bot_login is not None and login.lower() == rules.bot_login:
        return Ignored(f"sent by Honk itself ({login})")
    if sender_type == "Bot" and login.lower() not in rules.allowed_bots:
        return Ignored(f"sender {login} is a bot; list it in HONK_ALLOWED_BOTS to let it use Honk")

    repo = _mapping(payload.get("repository"), "repository")
    full_name = _text(repo.get("full_name"), "repository.full_name")
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise _Missing("repository.full_name")
    if not rules.allows_repository(full_name):
        return Ignored(f"repository {full_name} is not in HONK_REPO_ALLOWLIST")
    installation = payload.get("installation")
    installation_id = _optional_int(installation.get("id")) if _is_mapping(installation) else None
    if installation_id is None:
        return Ignored("delivery has no installation")
    private = repo.get("private")
    return {
        "repository": Repository(
            full_name=full_name,
            clone_url=_text(repo.get("clone_url"), "repository.clone_url"),
            default_branch=_text(repo.get("default_branch"), "repository.default_branch"),
            private=private if isinstance(private, bool) else True,
            id=_optional_int(repo.get("id")) or 0,
        ),
        "installation_id": installation_id,
        "sender_login": login,
        "sender_id": _integer(sender.get("id"), "sender.id"),
        "sender_type": sender_type,
    }


def _written_by_honk(item: Mapping[str, Any], body: str, rules: TriggerRules) -> bool:
    """Honk's own comments never trigger it: by its marker, its app, or its bot account."""
    via_app = item.get("performed_via_github_app")
    via_app_id = _optional_int(via_app.get("id")) if _is_mapping(via_app) else None
    author = item.get("user")
    author_login = author.get("login") if _is_mapping(author) else None
    return (
        HONK_MARKER_PREFIX in body
        or (rules.app_id is not None and via_app_id == rules.app_id)
        or (
            rules.bot_login is not None
            and isinstance(author_login, str)
            and author_login.lower() == rules.bot_login
        )
    )


def _head(pull_request: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(ref, sha, repository full name) of a pull request's head, when the payload says."""
    head = pull_request.get("head")
    if not _is_mapping(head):
        return None, None, None
    repo = head.get("repo")
    full_name = _optional_text(repo.get("full_name")) if _is_mapping(repo) else None
    return _optional_text(head.get("ref")), _optional_text(head.get("sha")), full_name


def _labeling_key(
    repository: Repository, number: int, label: Mapping[str, Any], issue: Mapping[str, Any]
) -> str:
    """One labeling, from what the signed body says: repository, issue, label and the time the
    issue changed. "" (fall back to the delivery id) when the body gives no time."""
    when = _optional_text(issue.get("updated_at"))
    if when is None:
        return ""
    label_id = _optional_int(label.get("id"))
    which = str(label_id) if label_id is not None else str(label.get("name", "")).casefold()
    where = str(repository.id) if repository.id else repository.full_name.lower()
    digest = hashlib.sha256(f"{where}\n{number}\n{which}\n{when}".encode()).hexdigest()
    return f"l{number}-{digest[:24]}"


# ---------------------------------------------------------------------------------------------
# One function per event


def _on_issues(
    delivery_id: str, payload: Mapping[str, Any], rules: TriggerRules
) -> Trigger | Ignored:
    action = _action(payload)
    if action != "labeled":
        return Ignored(
            f"issues.{action} is not a trigger, only adding the {rules.label!r} label is"
        )
    label_name = _text(_mapping(payload.get("label"), "label").get("name"), "label.name")
    if label_name.casefold() != rules.label.casefold():
        return Ignored(f"label {label_name!r} is not Honk's label {rules.label!r}")
    common = _common(payload, rules)
    if isinstance(common, Ignored):
        return common
    issue = _mapping(payload.get("issue"), "issue")
    is_pr = _is_mapping(issue.get("pull_request"))
    target = _target(common["repository"], issue.get("number"), "issue.number", is_pr)
    label = _mapping(payload.get("label"), "label")
    return Trigger(
        command=Command.RUN,
        source="label",
        target=target,
        delivery_id=delivery_id,
        run_key=_labeling_key(common["repository"], target.number, label, issue),
        title=_optional_text(issue.get("title")) or "",
        body=_optional_text(issue.get("body")) or "",
        **common,
    )


@dataclass(frozen=True)
class _CommentEvent:
    """How one kind of comment-like delivery is read."""

    kind: str  # for reasons: "comment", "review comment", "review"
    key: str  # where the comment sits in the payload
    action: str  # the only action that counts
    counts: str  # for reasons: what counts instead
    source: TriggerSource
    parent: str  # "issue" or "pull_request": title, body and number come from it
    id_prefix: str  # the three kinds have separate id spaces: their run ids must not meet


_ISSUE_COMMENT = _CommentEvent(
    "comment", "comment", "created", "new comments", "issue_comment", "issue", "ic"
)
_REVIEW_COMMENT = _CommentEvent(
    "review comment",
    "comment",
    "created",
    "new comments",
    "review_comment",
    "pull_request",
    "rc",
)
_REVIEW = _CommentEvent(
    "review", "review", "submitted", "newly submitted reviews", "review", "pull_request", "rv"
)


def _on_comment(
    spec: _CommentEvent, delivery_id: str, payload: Mapping[str, Any], rules: TriggerRules
) -> Trigger | Ignored:
    """Issue comments, review comments and reviews: a `/honk` line in a new one."""
    action = _action(payload)
    if action != spec.action:
        return Ignored(f"{spec.kind} was {action}, only {spec.counts} count")
    item = _mapping(payload.get(spec.key), spec.key)
    body = item.get("body")
    if not isinstance(body, str) or not body.strip():
        return Ignored(f"{spec.kind} has no text")
    if _written_by_honk(item, body, rules):
        return Ignored(f"{spec.kind} was written by Honk itself")
    common = _common(payload, rules)
    if isinstance(common, Ignored):
        return common
    parsed = parse_command(body, rules.command_word)
    if parsed is None:
        return Ignored(
            f"{spec.kind} has no line starting with /{rules.command_word} "
            "(quoted lines and code blocks do not count)"
        )
    parent = _mapping(payload.get(spec.parent), spec.parent)
    is_pr = spec.parent == "pull_request" or _is_mapping(parent.get("pull_request"))
    head_ref, head_sha, head_repo = _head(parent)
    location = None
    if spec.source == "review_comment":
        location = CodeLocation(
            path=_text(item.get("path"), "comment.path"),
            line=_optional_int(item.get("line")),
            side=_optional_text(item.get("side")),
            diff_hunk=_optional_text(item.get("diff_hunk")),
        )
    comment_id = _integer(item.get("id"), f"{spec.key}.id")
    return Trigger(
        command=parsed.command,
        source=spec.source,
        target=_target(common["repository"], parent.get("number"), f"{spec.parent}.number", is_pr),
        delivery_id=delivery_id,
        run_key=f"{spec.id_prefix}{comment_id}",
        instruction=parsed.instruction,
        command_line=parsed.line,
        comment_id=comment_id,
        location=location,
        head_ref=head_ref,
        head_repo_full_name=head_repo,
        head_sha=head_sha,
        title=_optional_text(parent.get("title")) or "",
        body=_optional_text(parent.get("body")) or "",
        **common,
    )


def _repo_name_from_api_url(url: Any) -> str | None:
    """`https://api.github.com/repos/OWNER/REPO` → `OWNER/REPO` (check runs carry only the URL)."""
    if not isinstance(url, str) or "/repos/" not in url:
        return None
    owner, _, name = url.rsplit("/repos/", 1)[1].partition("/")
    return f"{owner}/{name}" if owner and name and "/" not in name else None


def _is_honk_check_run(name: str) -> bool:
    return name == CHECK_RUN_NAME or name.startswith(f"{CHECK_RUN_NAME} ")


def _on_check_run(
    delivery_id: str, payload: Mapping[str, Any], rules: TriggerRules
) -> Trigger | Ignored:
    action = _action(payload)
    if action == "requested_action":
        requested = payload.get("requested_action")
        identifier = requested.get("identifier") if _is_mapping(requested) else None
        if identifier != RETRY_ACTION:
            return Ignored(f"check run button {identifier!r} is not Honk's {RETRY_ACTION!r} button")
    elif action != "rerequested":
        return Ignored(f"check_run.{action} is not a trigger, only re-running Honk's check run is")
    check_run = _mapping(payload.get("check_run"), "check_run")
    app = _mapping(check_run.get("app"), "check_run.app")
    if rules.app_id is None:
        return Ignored("Honk's app id is not configured, so it cannot recognise its own check runs")
    if _optional_int(app.get("id")) != rules.app_id:
        return Ignored("check run belongs to another app")
    name = _text(check_run.get("name"), "check_run.name")
    if not _is_honk_check_run(name):
        return Ignored(f"check run {name!r} is not one of Honk's runs")
    run_id = _optional_text(check_run.get("external_id"))
    if run_id is None:
        return Ignored("check run has no Honk run id (external_id is empty)")
    common = _common(payload, rules)
    if isinstance(common, Ignored):
        return common
    pull_requests = check_run.get("pull_requests")
    if not isinstance(pull_requests, list) or not pull_requests:
        return Ignored(
            "check run is not attached to a pull request of this repository "
            "(GitHub leaves out pull requests from forks)"
        )
    pull_request = _mapping(pull_requests[0], "check_run.pull_requests[0]")
    head_ref, head_sha, _ = _head(pull_request)
    head = pull_request.get("head")
    head_repo = head.get("repo") if _is_mapping(head) else None
    head_repo_url = head_repo.get("url") if _is_mapping(head_repo) else None
    return Trigger(
        command=Command.RETRY,
        source="check_run",
        target=_target(
            common["repository"], pull_request.get("number"), "check_run.pull_requests", True
        ),
        delivery_id=delivery_id,
        head_ref=head_ref,
        head_sha=head_sha or _optional_text(check_run.get("head_sha")),
        head_repo_full_name=_repo_name_from_api_url(head_repo_url),
        retry_of=run_id,
        **common,
    )


_Handler = Callable[[str, Mapping[str, Any], TriggerRules], Trigger | Ignored]

_HANDLERS: Mapping[str, _Handler] = {
    "issues": _on_issues,
    "issue_comment": partial(_on_comment, _ISSUE_COMMENT),
    "pull_request_review_comment": partial(_on_comment, _REVIEW_COMMENT),
    "pull_request_review": partial(_on_comment, _REVIEW),
    "check_run": _on_check_run,
}


def decide(
    event: str, delivery_id: str, payload: Mapping[str, Any], rules: TriggerRules
) -> Trigger | Ignored:
    """Whether a delivery asks Honk for something; never raises on a JSON object."""
    if not _is_mapping(payload):
        return Ignored("delivery body is not a JSON object")
    handler = _HANDLERS.get(event)
    if handler is None:
        return Ignored(f"Honk does not act on {event!r} events")
    try:
        return handler(delivery_id, payload, rules)
    except _Missing as missing:
        return Ignored(f"delivery has no usable {missing.field}")
