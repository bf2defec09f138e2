"""Pull request endpoints, review comments, reviewer requests, and the GraphQL draft mutations.

GitHub's REST API cannot turn a draft into a ready pull request (PATCH ignores `draft`); that takes
the GraphQL mutation `markPullRequestReadyForReview`. The fake's `/graphql` answers only that
mutation and `convertPullRequestToDraft`, so code under test is exercised the way GitHub needs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.fakes.github_auth import has_permission, token_covers
from tests.fakes.github_http import ApiError, Call, Reply, RouteSpec, paginate, validation_failed
from tests.fakes.github_json_pulls import (
    diff_entry_json,
    pull_json,
    pull_simple_json,
    review_comment_json,
)
from tests.fakes.github_routes_issues import checked_body
from tests.fakes.github_state import PullState, ReviewCommentState, node_id, utcnow

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

DOC_PULLS = "https://docs.github.com/rest/pulls/pulls"
DOC_REVIEW_COMMENTS = "https://docs.github.com/rest/pulls/comments"
TITLE_LIMIT = 256


def find_pull(call: Call) -> PullState:
    pull = call.the_repo.issues.get(call.int_param("pull_number"))
    if not isinstance(pull, PullState):
        raise ApiError(404)
    return pull


def render_pull(fake: FakeGitHub, call: Call, pull: PullState, *, simple: bool = False) -> Any:
    repo = call.the_repo
    base_sha = fake.branch_sha(repo.full_name, pull.base_ref)
    if simple:
        return pull_simple_json(call.site, repo, pull, base_sha)
    comments = len(fake.comments_on(repo.full_name, pull.number))
    reviews = len(fake.review_comments_on(repo.full_name, pull.number))
    return pull_json(call.site, repo, pull, base_sha, comments, reviews)


def list_pulls(fake: FakeGitHub, call: Call) -> Reply:
    state = call.query.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise validation_failed("PullRequest", field="state", code="invalid")
    pulls = [p for p in call.the_repo.issues.values() if isinstance(p, PullState)]
    if state != "all":
        pulls = [p for p in pulls if p.state == state]
    head = call.query.get("head")
    if head and ":" in head:  # GitHub ignores a head filter without the `owner:` prefix
        pulls = [p for p in pulls if p.head_label.lower() == head.lower()]
    if call.query.get("base"):
        pulls = [p for p in pulls if p.base_ref == call.query["base"]]
    pulls.sort(key=lambda p: p.number, reverse=call.query.get("direction", "desc") == "desc")
    page = paginate(call, pulls)
    page.body = [render_pull(fake, call, p, simple=True) for p in page.body]
    return page


def _checked_title(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise validation_failed("PullRequest", field="title", code="missing_field")
    if len(value) > TITLE_LIMIT:
        raise validation_failed(
            "PullRequest",
            field="title",
            message=f"title is too long (maximum is {TITLE_LIMIT} characters)",
        )
    return value


def _duplicate(call: Call, label: str, base: str, number: int | None = None) -> None:
    for other in call.the_repo.issues.values():
        if (
            isinstance(other, PullState)
            and other.state == "open"
            and other.number != number
            and other.head_label.lower() == label.lower()
            and other.base_ref == base
        ):
            raise validation_failed(
                "PullRequest", message=f"A pull request already exists for {label}."
            )


def create_pull(fake: FakeGitHub, call: Call) -> Reply:
    repo = call.the_repo
    data = call.json
    title = _checked_title(data.get("title"))
    head, base = data.get("head"), data.get("base")
    if not isinstance(head, str) or not head:
        raise validation_failed("PullRequest", field="head", code="missing_field")
    if not isinstance(base, str) or not base:
        raise validation_failed("PullRequest", field="base", code="missing_field")
    head_owner, _, branch = head.rpartition(":")
    head_owner = head_owner or repo.owner
    head_repo = str(data.get("head_repo") or f"{head_owner}/{repo.name}")
    if not fake.branch_exists(repo.full_name, base):
        raise validation_failed("PullRequest", field="base", code="invalid")
    if not fake.branch_exists(head_repo, branch):
        raise validation_failed("PullRequest", field="head", code="invalid")
    if head_repo.lower() == repo.full_name.lower() and branch == base:
        raise validation_failed("PullRequest", message=f"No commits between {base} and {branch}")
    label = f"{head_repo.split('/', 1)[0]}:{branch}"
    _duplicate(call, label, base)
    body = data.get("body")
    if body is not None:
        body = checked_body(body, "PullRequest")
    app = call.actor_app
    pull = PullState(
        repo=repo.full_name,
        number=repo.next_number(),
        title=title,
        body=body,
        user=app.bot_login,
        via_app=app.id,
        head_ref=branch,
        head_sha=fake.branch_sha(head_repo, branch),
        base_ref=base,
        head_repo=head_repo,
        draft=bool(data.get("draft", False)),
        maintainer_can_modify=bool(data.get("maintainer_can_modify", False)),
    )
    repo.issues[pull.number] = pull
    fake.pulls.append(pull)
    reply = Reply(render_pull(fake, call, pull), status=201)
    reply.headers["Location"] = reply.body["url"]
    return reply


def get_pull(fake: FakeGitHub, call: Call) -> Reply:
    return Reply(render_pull(fake, call, find_pull(call)))


def update_pull(fake: FakeGitHub, call: Call) -> Reply:
    pull = find_pull(call)
    data = call.json
    if "title" in data:
        pull.title = _checked_title(data["title"])
    if "body" in data:
        pull.body = None if data["body"] is None else checked_body(data["body"], "PullRequest")
    if "base" in data:
        if not fake.branch_exists(pull.repo, str(data["base"])):
            raise validation_failed("PullRequest", field="base", code="invalid")
        pull.base_ref = str(data["base"])
    if "maintainer_can_modify" in data:
        pull.maintainer_can_modify = bool(data["maintainer_can_modify"])
    if data.get("state") in ("open", "closed") and data["state"] != pull.state:
        if data["state"] == "open":
            _duplicate(call, pull.head_label, pull.base_ref, pull.number)
        pull.state = data["state"]
        pull.closed_at = utcnow() if pull.state == "closed" else None
    pull.updated_at = utcnow()
    return Reply(render_pull(fake, call, pull))


def list_files(fake: FakeGitHub, call: Call) -> Reply:
    pull = find_pull(call)
    page = paginate(call, pull.files)
    page.body = [diff_entry_json(call.site, call.the_repo, pull, f) for f in page.body]
    return page


def _render_review_comment(fake: FakeGitHub, call: Call, comment: ReviewCommentState) -> Any:
    reactions = fake.reactions_on(call.the_repo.full_name, "review_comment", comment.id)
    return review_comment_json(call.site, call.the_repo, comment, reactions)


def list_review_comments(fake: FakeGitHub, call: Call) -> Reply:
    """Oldest first by id; `sort` (created, updated) with `direction` (desc unless asc) sorts."""
    pull = find_pull(call)
    comments = fake.review_comments_on(pull.repo, pull.number)
    sort = call.query.get("sort")
    if sort in ("created", "updated"):
        newest_first = call.query.get("direction", "desc") != "asc"
        comments.sort(key=lambda c: (getattr(c, f"{sort}_at"), c.id), reverse=newest_first)
    page = paginate(call, comments)
    page.body = [_render_review_comment(fake, call, c) for c in page.body]
    return page


def reply_to_review_comment(fake: FakeGitHub, call: Call) -> Reply:
    pull = find_pull(call)
    parent = fake.find_review_comment(pull.repo, call.int_param("comment_id"))
    if parent is None or parent.pull_number != pull.number:
        raise ApiError(404, doc=DOC_REVIEW_COMMENTS)
    body = checked_body(call.json.get("body"), "PullRequestReviewComment")
    app = call.actor_app
    reply = ReviewCommentState(
        repo=pull.repo,
        pull_number=pull.number,
        body=body,
        user=app.bot_login,
        path=parent.path,
        commit_id=parent.commit_id,
        line=parent.line,
        side=parent.side,
        diff_hunk=parent.diff_hunk,
        in_reply_to_id=parent.in_reply_to_id or parent.id,
        via_app=app.id,
    )
    fake.review_comments.append(reply)
    return Reply(_render_review_comment(fake, call, reply), status=201)


def request_reviewers(fake: FakeGitHub, call: Call) -> Reply:
    pull = find_pull(call)
    repo = call.the_repo
    reviewers = [str(r) for r in call.json.get("reviewers") or []]
    teams = [str(t) for t in call.json.get("team_reviewers") or []]
    if any(r.lower() == pull.user.lower() for r in reviewers):
        raise validation_failed(
            "PullRequest", message="Review cannot be requested from pull request author."
        )
    for login in reviewers:
        role = repo.permissions.get(login.lower(), "none")
        if role == "none" and login.lower() != repo.owner.lower():
            raise validation_failed(
                "PullRequest",
                message="Reviews may only be requested from collaborators. One or more of the "
                f"users or teams you specified is not a collaborator of the {repo.full_name} "
                "repository.",
            )
    pull.requested_reviewers.extend(r for r in reviewers if r not in pull.requested_reviewers)
    pull.requested_teams.extend(t for t in teams if t not in pull.requested_teams)
    return Reply(render_pull(fake, call, pull, simple=True), status=201)


_MUTATIONS = {"markPullRequestReadyForReview": False, "convertPullRequestToDraft": True}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def graphql(fake: FakeGitHub, call: Call) -> Reply:
    query = str(call.json.get("query") or "")
    name = next((m for m in _MUTATIONS if re.search(rf"\b{m}\b", query)), None)
    if name is None:
        message = "The fake GitHub answers only markPullRequestReadyForReview and "
        message += "convertPullRequestToDraft."
        return Reply({"errors": [{"type": "NOT_SUPPORTED", "message": message}]})
    candidates = _strings(call.json.get("variables") or {})
    candidates += re.findall(r'pullRequestId\s*:\s*"([^"]+)"', query)
    token = call.token
    for pull in fake.pulls:
        if node_id("PR", pull.id) not in candidates:
            continue
        repo = fake.repos[pull.repo.lower()]
        if token is None or not token_covers(token, repo.installation_id, repo.full_name):
            break
        if not has_permission(token.permissions, "pull_requests", "write"):
            error = {
                "type": "FORBIDDEN",
                "path": [name],
                "message": "Resource not accessible by integration",
            }
            return Reply({"data": {name: None}, "errors": [error]})
        pull.draft = _MUTATIONS[name]
        pull.updated_at = utcnow()
        result = {
            "id": node_id("PR", pull.id),
            "number": pull.number,
            "isDraft": pull.draft,
            "url": f"{call.site.base}/{pull.repo}/pull/{pull.number}",
        }
        return Reply({"data": {name: {"clientMutationId": None, "pullRequest": result}}})
    wanted = candidates[0] if candidates else ""
    error = {
        "type": "NOT_FOUND",
        "path": [name],
        "message": f"Could not resolve to a node with the global id of '{wanted}'",
    }
    return Reply({"data": {name: None}, "errors": [error]})


_PULL = "/repos/{owner}/{repo}/pulls/{pull_number:int}"
_READ = ("pull_requests", "read")
_WRITE = ("pull_requests", "write")

ROUTES = [
    RouteSpec(
        "GET",
        "/repos/{owner}/{repo}/pulls",
        "installation",
        list_pulls,
        _READ,
        doc=f"{DOC_PULLS}#list-pull-requests",
    ),
    RouteSpec(
        "POST",
        "/repos/{owner}/{repo}/pulls",
        "installation",
        create_pull,
        _WRITE,
        doc=f"{DOC_PULLS}#create-a-pull-request",
    ),
    RouteSpec("GET", _PULL, "installation", get_pull, _READ, doc=f"{DOC_PULLS}#get-a-pull-request"),
    RouteSpec(
        "PATCH",
        _PULL,
        "installation",
        update_pull,
        _WRITE,
        doc=f"{DOC_PULLS}#update-a-pull-request",
    ),
    RouteSpec("GET", f"{_PULL}/files", "installation", list_files, _READ, doc=DOC_PULLS),
    RouteSpec(
        "GET",
        f"{_PULL}/comments",
        "installation",
        list_review_comments,
        _READ,
        doc=DOC_REVIEW_COMMENTS,
    ),
    RouteSpec(
        "POST",
        f"{_PULL}/comments/{{comment_id:int}}/replies",
        "installation",
        reply_to_review_comment,
        _WRITE,
        doc=DOC_REVIEW_COMMENTS,
    ),
    RouteSpec(
        "POST",
        f"{_PULL}/requested_reviewers",
        "installation",
        request_reviewers,
        _WRITE,
        doc="https://docs.github.com/rest/pulls/review-requests",
    ),
    RouteSpec("POST", "/graphql", "installation", graphql, doc="https://docs.github.com/graphql"),
]
