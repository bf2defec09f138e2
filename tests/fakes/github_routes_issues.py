"""Issue endpoints: issues, issue comments, and reactions (on issues, comments, review comments).

Writes are made as the App's bot user (`<slug>[bot]`). Creating a reaction the same user already
made answers 200 with the existing reaction instead of 201, as GitHub does.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from tests.fakes.github_auth import has_permission
from tests.fakes.github_http import ApiError, Call, Reply, RouteSpec, paginate, validation_failed
from tests.fakes.github_json import comment_json, issue_json, reaction_json
from tests.fakes.github_state import (
    REACTION_CONTENTS,
    CommentState,
    IssueState,
    PullState,
    ReactionState,
    ReactionSubject,
    utcnow,
)

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

DOC_COMMENTS = "https://docs.github.com/rest/issues/comments"
DOC_REACTIONS = "https://docs.github.com/rest/reactions/reactions"
BODY_LIMIT = 65536


def require_issue_access(call: Call, issue: IssueState, level: str) -> None:
    """Issues need `issues`; pull requests accept `issues` or `pull_requests`, like GitHub."""
    if call.token is None:
        return
    names = ["issues", "pull_requests"] if isinstance(issue, PullState) else ["issues"]
    if not any(has_permission(call.token.permissions, name, level) for name in names):
        raise ApiError(403, "Resource not accessible by integration")


def find_issue(call: Call, level: str) -> IssueState:
    issue = call.the_repo.issues.get(call.int_param("issue_number"))
    if issue is None:
        raise ApiError(404)
    require_issue_access(call, issue, level)
    return issue


def find_comment(fake: FakeGitHub, call: Call, level: str) -> CommentState:
    comment_id = call.int_param("comment_id")
    repo = call.the_repo
    comment = next(
        (
            c
            for c in fake.comments
            if c.id == comment_id and c.repo.lower() == repo.full_name.lower()
        ),
        None,
    )
    if comment is None:
        raise ApiError(404)
    require_issue_access(call, repo.issues[comment.issue_number], level)
    return comment


def checked_body(body: object, resource: str) -> str:
    if not isinstance(body, str) or not body:
        raise validation_failed(resource, field="body", code="missing_field")
    if len(body) > BODY_LIMIT:
        raise validation_failed(
            resource, field="body", message=f"body is too long (maximum is {BODY_LIMIT} characters)"
        )
    return body


def render_issue(fake: FakeGitHub, call: Call, issue: IssueState) -> dict[str, object]:
    repo = call.the_repo
    reactions = fake.reactions_on(repo.full_name, "issue", issue.number)
    count = len(fake.comments_on(repo.full_name, issue.number))
    return issue_json(call.site, repo, issue, reactions, count)


def render_comment(fake: FakeGitHub, call: Call, comment: CommentState) -> dict[str, object]:
    repo = call.the_repo
    reactions = fake.reactions_on(repo.full_name, "issue_comment", comment.id)
    return comment_json(call.site, repo, comment, reactions)


def get_issue(fake: FakeGitHub, call: Call) -> Reply:
    return Reply(render_issue(fake, call, find_issue(call, "read")))


def list_comments(fake: FakeGitHub, call: Call) -> Reply:
    issue = find_issue(call, "read")
    comments = fake.comments_on(call.the_repo.full_name, issue.number)
    since = call.query.get("since")
    if since:
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError as error:
            raise validation_failed("IssueComment", field="since", code="invalid") from error
        comments = [c for c in comments if c.updated_at >= moment]
    page = paginate(call, comments)
    page.body = [render_comment(fake, call, c) for c in page.body]
    return page


def create_comment(fake: FakeGitHub, call: Call) -> Reply:
    issue = find_issue(call, "write")
    body = checked_body(call.json.get("body"), "IssueComment")
    app = call.actor_app
    comment = CommentState(
        call.the_repo.full_name, issue.number, body, app.bot_login, via_app=app.id
    )
    fake.comments.append(comment)
    issue.updated_at = comment.created_at
    reply = Reply(render_comment(fake, call, comment), status=201)
    reply.headers["Location"] = reply.body["url"]
    return reply


def get_comment(fake: FakeGitHub, call: Call) -> Reply:
    return Reply(render_comment(fake, call, find_comment(fake, call, "read")))


def update_comment(fake: FakeGitHub, call: Call) -> Reply:
    comment = find_comment(fake, call, "write")
    comment.body = checked_body(call.json.get("body"), "IssueComment")
    comment.updated_at = utcnow()
    return Reply(render_comment(fake, call, comment))


def delete_comment(fake: FakeGitHub, call: Call) -> Reply:
    comment = find_comment(fake, call, "write")
    fake.comments.remove(comment)
    return Reply(None, status=204)


def _subject(fake: FakeGitHub, call: Call, level: str) -> tuple[ReactionSubject, int]:
    path = call.request.url.path
    if "/issues/comments/" in path:
        return "issue_comment", find_comment(fake, call, level).id
    if "/pulls/comments/" in path:
        comment = fake.find_review_comment(call.the_repo.full_name, call.int_param("comment_id"))
        if comment is None:
            raise ApiError(404)
        require_issue_access(call, call.the_repo.issues[comment.pull_number], level)
        return "review_comment", comment.id
    return "issue", find_issue(call, level).number


def create_reaction(fake: FakeGitHub, call: Call) -> Reply:
    subject, subject_id = _subject(fake, call, "write")
    content = call.json.get("content")
    if content not in REACTION_CONTENTS:
        raise validation_failed("Reaction", field="content", code="invalid")
    login = call.actor_app.bot_login
    repo = call.the_repo.full_name
    for existing in fake.reactions_on(repo, subject, subject_id):
        if existing.user == login and existing.content == content:
            return Reply(reaction_json(call.site, existing), status=200)
    reaction = ReactionState(repo, subject, subject_id, str(content), login)
    fake.reactions.append(reaction)
    return Reply(reaction_json(call.site, reaction), status=201)


def list_reactions(fake: FakeGitHub, call: Call) -> Reply:
    subject, subject_id = _subject(fake, call, "read")
    reactions = fake.reactions_on(call.the_repo.full_name, subject, subject_id)
    content = call.query.get("content")
    if content:
        reactions = [r for r in reactions if r.content == content]
    page = paginate(call, reactions)
    page.body = [reaction_json(call.site, r) for r in page.body]
    return page


_ISSUE = "/repos/{owner}/{repo}/issues/{issue_number:int}"
_COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id:int}"
_REVIEW_COMMENT = "/repos/{owner}/{repo}/pulls/comments/{comment_id:int}"

ROUTES = [
    RouteSpec(
        "GET",
        _ISSUE,
        "installation",
        get_issue,
        doc="https://docs.github.com/rest/issues/issues#get-an-issue",
    ),
    RouteSpec("GET", f"{_ISSUE}/comments", "installation", list_comments, doc=DOC_COMMENTS),
    RouteSpec(
        "POST",
        f"{_ISSUE}/comments",
        "installation",
        create_comment,
        doc=f"{DOC_COMMENTS}#create-an-issue-comment",
    ),
    RouteSpec("GET", _COMMENT, "installation", get_comment, doc=DOC_COMMENTS),
    RouteSpec(
        "PATCH",
        _COMMENT,
        "installation",
        update_comment,
        doc=f"{DOC_COMMENTS}#update-an-issue-comment",
    ),
    RouteSpec("DELETE", _COMMENT, "installation", delete_comment, doc=DOC_COMMENTS),
]
for _path in (_ISSUE, _COMMENT, _REVIEW_COMMENT):
    ROUTES.append(
        RouteSpec("GET", f"{_path}/reactions", "installation", list_reactions, doc=DOC_REACTIONS)
    )
    ROUTES.append(
        RouteSpec("POST", f"{_path}/reactions", "installation", create_reaction, doc=DOC_REACTIONS)
    )
