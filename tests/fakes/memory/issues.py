"""The in-memory installation's issue calls, as honk_app.github.issues.IssueCalls makes them:
permissions, reactions, comments, files and configuration, and the plumbing the other calls share.

A comment is found again by its hidden marker, and only if this App wrote it (`is_own`);
`upsert_comment` edits only when the text differs, else posts once. GitHub dedupes reactions.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, TypeVar

from honk_app.github.bounds import DEFAULT_BOUNDS
from honk_app.github.errors import GitHubError
from honk_app.github.issues import (
    COMMENT_PAGE,
    MAX_FILE_BYTES,
    FileTooLarge,
    IssueCalls,
    with_marker,
)
from honk_app.github.models import Comment, CommentInfo, IssueInfo, is_own, split_full_name
from honk_app.github.paging import PageWalk, between, newest_first
from honk_app.github.permission_cache import PermissionCache
from honk_app.safety.push_rules import BranchFacts
from tests.fakes.memory.state import (
    CommentState,
    IssueState,
    PullState,
    Reaction,
    RepoState,
    as_model,
    in_repo,
    not_found,
)

if TYPE_CHECKING:
    from tests.fakes.memory.app import MemoryGitHub

T = TypeVar("T")


def newest_pages(items: list[T]) -> list[list[T]]:
    """`items` (oldest first) as the real client pages review comments (GitHub sorts them): newest
    first, a page cap at most."""
    newest = items[::-1][: COMMENT_PAGE * DEFAULT_BOUNDS.max_pages]
    return [newest[i : i + COMMENT_PAGE] for i in range(0, len(newest), COMMENT_PAGE)] or [[]]


def thread_pages(items: list[T], middle: int = 0) -> tuple[list[list[T]], int | None]:
    """`items` (oldest first) as the real client walks an issue's comments (GitHub lists them
    oldest first, 25 a page): the newest pages within the cap, then page 1, then up to `middle`
    of the pages between, oldest first; each page newest first. And the index of page 1 when the
    walk skips pages to reach it (the walk is `cut` from there), else None."""
    last = max(1, -(-len(items) // COMMENT_PAGE))
    newest, complete = newest_first(last, DEFAULT_BOUNDS.max_pages)
    order = [*newest, 1, *between(last, DEFAULT_BOUNDS.max_pages)[:middle]]
    pages = [items[(n - 1) * COMMENT_PAGE : n * COMMENT_PAGE][::-1] for n in order]
    return pages, None if complete else len(newest)


class MemoryIssueCalls:
    """The issue side of one installation; repositories are named per call (`owner/repo`)."""

    def __init__(self, github: MemoryGitHub, installation_id: int) -> None:
        self.github = github
        self.installation_id = installation_id
        self._app = github.info
        self._permissions = PermissionCache()  # what the real client's cached_permission reads

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
            raise not_found(op, endpoint)
        return repo

    def _issue(self, full_name: str, number: int, op: str, endpoint: str) -> IssueState:
        self._repo(full_name, op, endpoint)
        issue = self.github.issues.get((full_name.lower(), number))
        if issue is None:
            raise not_found(op, endpoint)
        return issue

    def _own(self, author: str, via_app_id: int | None = None) -> bool:
        return is_own(author, via_app_id, app_id=self._app.id, app_login=self._app.bot_login)

    # -- people and reactions ---------------------------------------------------------------------
    async def permission(self, full_name: str, login: str) -> str:
        self._call("permission")
        endpoint = f"GET /repos/{full_name}/collaborators/{login}/permission"
        repo = self._repo(full_name, "permission", endpoint)
        self.github.permission_asks.append((repo.full_name, login))
        return repo.permissions.get(login.lower(), "none")

    # The real method: it only calls permission, through the client's own cache.
    cached_permission = IssueCalls.cached_permission

    # -- branches ---------------------------------------------------------------------------------
    async def branch_facts(self, full_name: str, branch: str) -> BranchFacts:
        """As honk_app.github.branches: no such branch is `exists=False`, not an error."""
        self._call("branch_facts")
        repo = self._repo(full_name, "branch_facts", f"GET /repos/{full_name}/branches/{branch}")
        if branch not in repo.branches:
            return BranchFacts(exists=False)
        return BranchFacts(True, branch in repo.protected, repo.rules.get(branch, ()))

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
        ids = {"issue": issue_number, "comment": comment_id, "review_comment": review_comment_id}
        given = [(subject, key) for subject, key in ids.items() if key is not None]
        if len(given) != 1:
            raise ValueError(
                "add_reaction needs exactly one of issue_number, comment_id, review_comment_id."
            )
        [(subject, subject_id)] = given
        if subject == "issue":
            endpoint = f"POST /repos/{full_name}/issues/{subject_id}/reactions"
            self._issue(full_name, subject_id, "add_reaction", endpoint)
        else:
            where = "issues" if subject == "comment" else "pulls"
            endpoint = f"POST /repos/{full_name}/{where}/comments/{subject_id}/reactions"
            self._repo(full_name, "add_reaction", endpoint)
            comments = self.github.comments if subject == "comment" else self.github.review_comments
            if not in_repo(comments, full_name, id=subject_id):
                raise not_found("add_reaction", endpoint)
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

    def issue_comment_pages(self, full_name: str, number: int) -> PageWalk[CommentInfo]:
        async def walk(state: PageWalk[CommentInfo]) -> AsyncGenerator[list[CommentInfo], None]:
            self._call("issue_comment_pages")
            comments = self._issue_comments(full_name, number, "issue_comments")
            pages, cut_at = thread_pages([as_model(CommentInfo, c) for c in comments])
            for index, page in enumerate(pages):
                state.cut = state.cut or index == cut_at  # before the page after the gap
                yield page

        return PageWalk(walk)

    async def find_comment_with_marker(
        self, full_name: str, issue_number: int, marker: str
    ) -> Comment | None:
        self._call("find_comment_with_marker")
        comments = self._issue_comments(full_name, issue_number, "find_comment_with_marker")
        pages, _ = thread_pages(comments, middle=DEFAULT_BOUNDS.max_pages - 1)
        for page in pages:
            for comment in page:
                if marker in comment.body and self._own(comment.author, comment.via_app_id):
                    return as_model(Comment, comment)
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
        comment = self.github.add_comment(
            full_name,
            issue_number,
            body,
            author=self._app.bot_login,
            author_type="Bot",
            via_app_id=self._app.id,
        )
        self._write(endpoint)
        return as_model(Comment, comment)

    async def _edit_comment(self, full_name: str, comment_id: int, body: str, op: str) -> Comment:
        endpoint = f"PATCH /repos/{full_name}/issues/comments/{comment_id}"
        self._repo(full_name, op, endpoint)
        found = in_repo(self.github.comments, full_name, id=comment_id)
        if not found:
            raise not_found(op, endpoint)
        found[0].body = body
        found[0].edits += 1
        self._write(endpoint)
        return as_model(Comment, found[0])

    async def update_comment(self, full_name: str, comment_id: int, body: str) -> None:
        self._call("update_comment")
        await self._edit_comment(full_name, comment_id, body, "update_comment")

    # The real method: it only calls upsert_comment.
    reply = IssueCalls.reply

    async def list_issue_comments(self, full_name: str, number: int) -> list[CommentInfo]:
        self._call("list_issue_comments")
        comments = self._issue_comments(full_name, number, "list_issue_comments")
        pages, _ = thread_pages(comments)
        return [as_model(CommentInfo, c) for page in reversed(pages) for c in reversed(page)]

    # -- files and configuration ------------------------------------------------------------------
    async def get_file(
        self, full_name: str, path: str, ref: str | None = None, *, max_bytes: int = MAX_FILE_BYTES
    ) -> str | None:
        """A file's text; None when absent (404) or a directory, as the real client answers;
        FileTooLarge above `max_bytes`."""
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
        text = files.get(path.strip("/"))
        if text is not None and len(text.encode()) > max_bytes:
            raise FileTooLarge.of(full_name, path, len(text.encode()), max_bytes)
        return text

    # The real method: it only calls get_file.
    repo_config_text = IssueCalls.repo_config_text

    # -- issues -----------------------------------------------------------------------------------
    async def get_issue(self, full_name: str, number: int) -> IssueInfo:
        self._call("get_issue")
        endpoint = f"GET /repos/{full_name}/issues/{number}"
        issue = self._issue(full_name, number, "get_issue", endpoint)
        return as_model(
            IssueInfo, issue, is_pull_request=isinstance(issue, PullState), state="open"
        )

    async def create_comment(self, full_name: str, issue_number: int, body: str) -> Comment:
        self._call("create_comment")
        endpoint = f"POST /repos/{full_name}/issues/{issue_number}/comments"
        self._issue(full_name, issue_number, "create_comment", endpoint)
        comment = self.github.add_comment(
            full_name,
            issue_number,
            body,
            author=self._app.bot_login,
            author_type="Bot",
            via_app_id=self._app.id,
        )
        self._write(endpoint)
        return as_model(Comment, comment)
