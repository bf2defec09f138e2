"""Installation calls about issues: permissions, reactions, comments, files and configuration.

Runs are durable workflows whose steps may run again after a crash, so each method that changes
something on GitHub first looks for what an earlier attempt made (a comment by its hidden marker)
and only then creates. `InstallationClient` (github_installation.py) adds pull requests and checks.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from githubkit.utils import UNSET
from githubkit_schemas.latest.models import ContentFile

from honk_app.github.errors import GitHubError, translated
from honk_app.github.models import (
    AppInfo,
    Comment,
    CommentInfo,
    IssueInfo,
    comment_from,
    comment_info_from,
    is_own,
    issue_from,
    permission_level,
    present,
    split_full_name,
)
from honk_app.github.permission_cache import PermissionCache

if TYPE_CHECKING:
    from githubkit import GitHub
    from githubkit_schemas.latest.models import IssueComment

CONFIG_PATH = ".github/honk.yml"
PER_PAGE = 100


def with_marker(body: str, marker: str) -> str:
    """A body that carries its marker, so the next attempt finds it instead of posting again."""
    return body if marker in body else f"{body}\n\n{marker}"


class IssueCalls:
    """The issue side of one installation; repositories are named per call (`owner/repo`)."""

    def __init__(self, github: GitHub[Any], app: AppInfo, secrets: Callable[[], list[str]]):
        self._gh = github
        self._app = app
        self._secrets = secrets
        self._permissions = PermissionCache()  # for filtering a task's text, never for asking

    def _errors(self, op: str, endpoint: str) -> AbstractContextManager[None]:
        return translated(op, endpoint, self._secrets())

    async def _all(self, op: str, endpoint: str, method: Any, **params: Any) -> list[Any]:
        """Every item of a paginated list call, with GitHub's errors translated."""
        found: list[Any] = []
        with self._errors(op, endpoint):
            async for item in self._gh.rest.paginate(method, per_page=PER_PAGE, **params):
                found.append(item)
        return found

    # -- people and reactions ------------------------------------------------------------------

    async def permission(self, full_name: str, login: str) -> str:
        """admin, maintain, write, triage, read or none; a login GitHub does not know is none."""
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/collaborators/{login}/permission"
        try:
            with self._errors("permission", endpoint):
                resp = await self._gh.rest.repos.async_get_collaborator_permission_level(
                    owner, repo, login
                )
                data = resp.parsed_data
        except GitHubError as error:
            if error.status == 404:
                return "none"
            raise
        return permission_level(data.permission, data.role_name)

    async def cached_permission(self, full_name: str, login: str) -> str:
        """`permission`, remembered by this client for a few minutes: for deciding whose text
        reaches the agent, where one answer per person and run is enough. Whether someone may
        ask Honk is decided with `permission`, which always asks GitHub."""
        level = self._permissions.get(full_name, login)
        if level is None:
            level = await self.permission(full_name, login)
            self._permissions.put(full_name, login, level)
        return level

    async def add_reaction(
        self,
        full_name: str,
        *,
        issue_number: int | None = None,
        comment_id: int | None = None,
        review_comment_id: int | None = None,
        content: str = "eyes",
    ) -> None:
        """React to exactly one subject. GitHub answers 200 for a reaction that already exists."""
        owner, repo = split_full_name(full_name)
        given = [x for x in (issue_number, comment_id, review_comment_id) if x is not None]
        if len(given) != 1:
            raise ValueError(
                "add_reaction needs exactly one of issue_number, comment_id, review_comment_id."
            )
        rest = self._gh.rest.reactions
        data = cast(Any, {"content": content})
        if issue_number is not None:
            endpoint = f"POST /repos/{full_name}/issues/{issue_number}/reactions"
            with self._errors("add_reaction", endpoint):
                await rest.async_create_for_issue(owner, repo, issue_number, data=data)
        elif comment_id is not None:
            endpoint = f"POST /repos/{full_name}/issues/comments/{comment_id}/reactions"
            with self._errors("add_reaction", endpoint):
                await rest.async_create_for_issue_comment(owner, repo, comment_id, data=data)
        elif review_comment_id is not None:
            endpoint = f"POST /repos/{full_name}/pulls/comments/{review_comment_id}/reactions"
            with self._errors("add_reaction", endpoint):
                await rest.async_create_for_pull_request_review_comment(
                    owner, repo, review_comment_id, data=data
                )

    # -- issue comments ------------------------------------------------------------------------

    async def _issue_comments(self, full_name: str, number: int, op: str) -> list[IssueComment]:
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/issues/{number}/comments"
        list_comments = self._gh.rest.issues.async_list_comments
        found: list[IssueComment] = await self._all(
            op, endpoint, list_comments, owner=owner, repo=repo, issue_number=number
        )
        return found

    async def find_comment_with_marker(
        self, full_name: str, issue_number: int, marker: str
    ) -> Comment | None:
        """The oldest comment by this App that contains `marker` (every page is read)."""
        for comment in await self._issue_comments(
            full_name, issue_number, "find_comment_with_marker"
        ):
            via = present(comment.performed_via_github_app, None)
            if marker in present(comment.body, "") and is_own(
                comment.user.login if comment.user else None,
                via.id if via is not None else None,
                app_id=self._app.id,
                app_login=self._app.bot_login,
            ):
                return comment_from(comment)
        return None

    async def upsert_comment(
        self, full_name: str, issue_number: int, marker: str, body: str
    ) -> Comment:
        """Edit the comment carrying `marker` when its text differs, else post it once."""
        body = with_marker(body, marker)
        existing = await self.find_comment_with_marker(full_name, issue_number, marker)
        if existing is not None:
            if existing.body == body:
                return existing
            return await self._edit_comment(full_name, existing.id, body, "upsert_comment")
        owner, repo = split_full_name(full_name)
        endpoint = f"POST /repos/{full_name}/issues/{issue_number}/comments"
        with self._errors("upsert_comment", endpoint):
            resp = await self._gh.rest.issues.async_create_comment(
                owner, repo, issue_number, data={"body": body}
            )
            return comment_from(resp.parsed_data)

    async def _edit_comment(self, full_name: str, comment_id: int, body: str, op: str) -> Comment:
        owner, repo = split_full_name(full_name)
        with self._errors(op, f"PATCH /repos/{full_name}/issues/comments/{comment_id}"):
            resp = await self._gh.rest.issues.async_update_comment(
                owner, repo, comment_id, data={"body": body}
            )
            return comment_from(resp.parsed_data)

    async def update_comment(self, full_name: str, comment_id: int, body: str) -> None:
        await self._edit_comment(full_name, comment_id, body, "update_comment")

    async def reply(self, full_name: str, issue_number: int, body: str, *, marker: str) -> Comment:
        """A short answer (help, status, refusal); the marker names what it answers."""
        return await self.upsert_comment(full_name, issue_number, marker, body)

    async def list_issue_comments(self, full_name: str, number: int) -> list[CommentInfo]:
        comments = await self._issue_comments(full_name, number, "list_issue_comments")
        return [comment_info_from(comment) for comment in comments]

    # -- files and configuration ---------------------------------------------------------------

    async def get_file(self, full_name: str, path: str, ref: str | None = None) -> str | None:
        """A file's text from the contents API; None when absent or not a regular file."""
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/contents/{path}"
        quoted = quote(path.strip("/"), safe="/")  # '#', '?' and spaces are legal in file names
        try:
            with self._errors("get_file", endpoint):
                resp = await self._gh.rest.repos.async_get_content(
                    owner, repo, quoted, ref=ref if ref is not None else UNSET
                )
                data = resp.parsed_data
                if not isinstance(data, ContentFile):
                    return None
                if data.encoding == "base64":
                    raw = base64.b64decode(data.content)
                else:  # files over 1 MB come without content; ask for the raw bytes
                    raw_resp = await self._gh.arequest(
                        "GET",
                        f"/repos/{owner}/{repo}/contents/{quoted}",
                        params={"ref": ref} if ref is not None else None,
                        headers={"Accept": "application/vnd.github.raw+json"},
                    )
                    raw = raw_resp.content
        except GitHubError as error:
            if error.status == 404:
                return None
            raise
        return raw.decode("utf-8", errors="replace")

    async def repo_config_text(
        self, full_name: str, owner: str, default_branch: str
    ) -> tuple[str | None, str]:
        """`.github/honk.yml` from the repository, else from the owner's `.github` repository.

        Probot's convention. The owner's repository may be outside the installation (404) or
        unreadable (403); both mean "no organisation defaults".
        """
        text = await self.get_file(full_name, CONFIG_PATH, ref=default_branch)
        if text is not None:
            return text, f"{full_name}/{CONFIG_PATH}"
        org_repo = f"{owner}/.github"
        if org_repo.lower() != full_name.lower():
            try:
                text = await self.get_file(org_repo, CONFIG_PATH)
            except GitHubError as error:
                if error.status != 403:
                    raise
                text = None
            if text is not None:
                return text, f"{org_repo}/{CONFIG_PATH}"
        return None, "defaults"

    # -- issues --------------------------------------------------------------------------------

    async def get_issue(self, full_name: str, number: int) -> IssueInfo:
        owner, repo = split_full_name(full_name)
        with self._errors("get_issue", f"GET /repos/{full_name}/issues/{number}"):
            resp = await self._gh.rest.issues.async_get(owner, repo, number)
            return issue_from(resp.parsed_data)

    async def create_comment(self, full_name: str, issue_number: int, body: str) -> Comment:
        """Post without looking for an earlier attempt first: for a caller that records what it
        posted itself (an outsider's one reply a day), so that no list of comments is paged."""
        owner, repo = split_full_name(full_name)
        endpoint = f"POST /repos/{full_name}/issues/{issue_number}/comments"
        with self._errors("create_comment", endpoint):
            resp = await self._gh.rest.issues.async_create_comment(
                owner, repo, issue_number, data={"body": body}
            )
            return comment_from(resp.parsed_data)
