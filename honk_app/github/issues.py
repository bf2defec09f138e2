"""Installation calls about issues: permissions, reactions, comments, files and configuration.

Runs are durable workflows whose steps may run again after a crash, so each method that changes
something on GitHub first looks for what an earlier attempt made (a comment by its hidden marker)
and only then creates. `InstallationClient` (github_installation.py) adds pull requests and checks.

Anyone can comment and anyone with push access can commit, so nothing here reads a list or a file
whole: comments are read newest first (and page 1, the oldest), a page cap at a time; a file's size
is checked before its content is used; every call has a deadline and an answer-size cap
(github/bounds.py).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, aclosing
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from githubkit.utils import UNSET
from githubkit_schemas.latest.models import ContentFile

from honk_app.github.bounds import DEFAULT_BOUNDS, MIB, Bounds, bounded_call
from honk_app.github.errors import GitHubError
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
    split_full_name,
)
from honk_app.github.paging import PageWalk, between, linked_page, newest_first, oldest_first
from honk_app.github.permission_cache import PermissionCache
from honk_app.repo_config import ConfigError

if TYPE_CHECKING:
    from githubkit import GitHub, Response
    from githubkit_schemas.latest.models import IssueComment

logger = logging.getLogger("honk.github")

CONFIG_PATH = ".github/honk.yml"
PER_PAGE = 100
# A comment may hold 65,536 characters; 25 of them, escaped as JSON, stay within an answer's cap.
COMMENT_PAGE = 25
MAX_FILE_BYTES = 256 * 1024  # AGENTS.md, CLAUDE.md: the prompt shows 20,000 characters of them
MAX_CONFIG_BYTES = 64 * 1024
# GitHub sends a file's content (base64, in JSON) up to 1 MB and only its size above that, so
# an answer this large always carries the size, which is checked before the content is used.
FILE_ANSWER_BYTES = 2 * MIB


class FileTooLarge(GitHubError):
    """A repository file larger than Honk reads (`size` and `limit` in bytes)."""

    def __init__(self, sentence: str, *, size: int = 0, limit: int = 0) -> None:
        super().__init__(sentence)
        self.size = size
        self.limit = limit

    @classmethod
    def of(cls, full_name: str, path: str, size: int, limit: int) -> FileTooLarge:
        sentence = f"{path} in {full_name} is {size:,} bytes, more than the {limit:,} Honk reads."
        return cls(sentence, size=size, limit=limit)


def with_marker(body: str, marker: str) -> str:
    """A body that carries its marker, so the next attempt finds it instead of posting again."""
    return body if marker in body else f"{body}\n\n{marker}"


class IssueCalls:
    """The issue side of one installation; repositories are named per call (`owner/repo`)."""

    def __init__(
        self,
        github: GitHub[Any],
        app: AppInfo,
        secrets: Callable[[], list[str]],
        bounds: Bounds = DEFAULT_BOUNDS,
    ):
        self._gh = github
        self._app = app
        self._secrets = secrets
        self._bounds = bounds
        self._permissions = PermissionCache()  # for filtering a task's text, never for asking

    def _call(
        self, op: str, endpoint: str, *, listing: bool = False, max_bytes: int | None = None
    ) -> AbstractAsyncContextManager[None]:
        """One call (or every page of one listing) within its deadline and answer-size cap."""
        bounds = self._bounds
        return bounded_call(
            op,
            endpoint,
            self._secrets(),
            seconds=bounds.listing_s if listing else bounds.call_s,
            max_bytes=max_bytes or bounds.max_bytes,
        )

    async def _listing(
        self,
        op: str,
        endpoint: str,
        method: Any,
        items_of: Callable[[Response[Any]], list[Any]] | None = None,
        **params: Any,
    ) -> list[Any]:
        """The items of a paginated list call, oldest first, at most `max_pages` pages."""

        async def fetch(page: int) -> tuple[list[Any], bool]:
            resp: Response[Any] = await method(per_page=PER_PAGE, page=page, **params)
            items = items_of(resp) if items_of is not None else list(resp.parsed_data)
            return items, linked_page(resp.raw_response.links, "next") is not None

        async with self._call(op, endpoint, listing=True):
            found, cut = await oldest_first(fetch, self._bounds.max_pages)
        if cut:
            logger.warning(
                "%s (%s) read the first %d pages only; GitHub lists more",
                op,
                endpoint,
                self._bounds.max_pages,
            )
        return found

    # -- people and reactions ------------------------------------------------------------------

    async def permission(self, full_name: str, login: str) -> str:
        """admin, maintain, write, triage, read or none; a login GitHub does not know is none."""
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/collaborators/{login}/permission"
        try:
            async with self._call("permission", endpoint):
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
            async with self._call("add_reaction", endpoint):
                await rest.async_create_for_issue(owner, repo, issue_number, data=data)
        elif comment_id is not None:
            endpoint = f"POST /repos/{full_name}/issues/comments/{comment_id}/reactions"
            async with self._call("add_reaction", endpoint):
                await rest.async_create_for_issue_comment(owner, repo, comment_id, data=data)
        elif review_comment_id is not None:
            endpoint = f"POST /repos/{full_name}/pulls/comments/{review_comment_id}/reactions"
            async with self._call("add_reaction", endpoint):
                await rest.async_create_for_pull_request_review_comment(
                    owner, repo, review_comment_id, data=data
                )

    # -- issue comments ------------------------------------------------------------------------

    def issue_comment_pages(self, full_name: str, number: int) -> PageWalk[CommentInfo]:
        """An issue's comments a page at a time, at most `max_pages` pages: the newest pages
        (newest first), then page 1 (the oldest comments, often a maintainer's triage). The caller
        stops when it has read enough (a run needs the newest few writers' comments); on a thread
        longer than the cap the walk's `cut` turns True before page 1, as the pages between are
        left unread."""
        return PageWalk(
            lambda walk: self._issue_comment_pages(walk, full_name, number, "issue_comments")
        )

    async def _issue_comment_pages(
        self, walk: PageWalk[CommentInfo], full_name: str, number: int, op: str, middle: int = 0
    ) -> AsyncGenerator[list[CommentInfo], None]:
        """The walk `issue_comment_pages` describes; then, when it was cut, up to `middle` of the
        pages it left unread, oldest first (a lookup for Honk's own comment)."""
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/issues/{number}/comments"

        async def fetch(page: int) -> tuple[list[CommentInfo], int | None]:
            async with self._call(op, endpoint):
                resp = await self._gh.rest.issues.async_list_comments(
                    owner, repo, number, per_page=COMMENT_PAGE, page=page
                )
                comments = cast("list[IssueComment]", resp.parsed_data)
                found = [comment_info_from(comment) for comment in comments]
                return found, linked_page(resp.raw_response.links, "last")

        seen: set[int] = set()  # comments deleted meanwhile shift the pages; none comes twice

        def unseen(found: list[CommentInfo]) -> list[CommentInfo]:
            fresh = [comment for comment in reversed(found) if comment.id not in seen]
            seen.update(comment.id for comment in found)
            return fresh

        first, last = await fetch(1)
        last = last or 1
        newest, complete = newest_first(last, self._bounds.max_pages)
        for page in newest:
            found, _ = await fetch(page)
            yield unseen(found)
        older = between(last, self._bounds.max_pages)[:middle]
        if not complete:
            walk.cut = True
            unread = last - 1 - len(older) - len(newest)
            if unread:
                logger.warning(
                    "%s (%s) reads %d of %d pages: %d from the start, %d from the end",
                    op,
                    endpoint,
                    last - unread,
                    last,
                    1 + len(older),
                    len(newest),
                )
        yield unseen(first)
        for page in older:
            found, _ = await fetch(page)
            yield unseen(found)

    async def find_comment_with_marker(
        self, full_name: str, issue_number: int, marker: str
    ) -> Comment | None:
        """This App's comment that contains `marker`: the newest one on the newest pages, else one
        on page 1, else on the pages after it, at most `max_pages - 1` more of them.

        A marker names a comment Honk posted when a run began (or a reply): near the end of the
        thread then, but a crowd may write hundreds of comments after it. So on a thread longer
        than the walk, up to `2 * max_pages - 1` pages are read (475 comments by default): the
        first 250 and the newest 200 to 225. The limit that remains: a comment of Honk's with
        more than 250 comments before it and more than 225 after it is not found, and
        `upsert_comment` posts a second one."""
        pages = PageWalk(
            lambda walk: self._issue_comment_pages(
                walk,
                full_name,
                issue_number,
                "find_comment_with_marker",
                middle=self._bounds.max_pages - 1,
            )
        )
        async with aclosing(pages):
            async for page in pages:
                for comment in page:
                    if marker in comment.body and is_own(
                        comment.author,
                        comment.via_app_id,
                        app_id=self._app.id,
                        app_login=self._app.bot_login,
                    ):
                        return Comment(comment.id, comment.body, comment.html_url, comment.author)
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
        async with self._call("upsert_comment", endpoint):
            resp = await self._gh.rest.issues.async_create_comment(
                owner, repo, issue_number, data={"body": body}
            )
            return comment_from(resp.parsed_data)

    async def _edit_comment(self, full_name: str, comment_id: int, body: str, op: str) -> Comment:
        owner, repo = split_full_name(full_name)
        async with self._call(op, f"PATCH /repos/{full_name}/issues/comments/{comment_id}"):
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
        """The comments `issue_comment_pages` reads (page 1 and the newest), oldest first."""
        found: list[CommentInfo] = []
        pages = PageWalk(
            lambda walk: self._issue_comment_pages(walk, full_name, number, "list_issue_comments")
        )
        async for page in pages:
            found += page
        return found[::-1]

    # -- files and configuration ---------------------------------------------------------------

    async def get_file(
        self, full_name: str, path: str, ref: str | None = None, *, max_bytes: int = MAX_FILE_BYTES
    ) -> str | None:
        """A file's text from the contents API; None when absent or not a regular file.

        A file over `max_bytes` (at most 1 MB) raises FileTooLarge: its size is read from
        GitHub's answer before the content is decoded.
        """
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/contents/{path}"
        quoted = quote(path.strip("/"), safe="/")  # '#', '?' and spaces are legal in file names
        try:
            async with self._call("get_file", endpoint, max_bytes=FILE_ANSWER_BYTES):
                resp = await self._gh.rest.repos.async_get_content(
                    owner, repo, quoted, ref=ref if ref is not None else UNSET
                )
                data = resp.parsed_data
        except GitHubError as error:
            if error.status == 404:
                return None
            raise
        if not isinstance(data, ContentFile):
            return None
        if data.size > max_bytes:
            raise FileTooLarge.of(full_name, path, data.size, max_bytes)
        if data.encoding != "base64":
            raise GitHubError(f"GitHub's answer to get_file ({endpoint}) left out the content.")
        return base64.b64decode(data.content).decode("utf-8", errors="replace")

    async def repo_config_text(
        self, full_name: str, owner: str, default_branch: str
    ) -> tuple[str | ConfigError | None, str]:
        """`.github/honk.yml` from the repository, else from the owner's `.github` repository.

        Probot's convention. The owner's repository may be outside the installation (404) or
        unreadable (403); both mean "no organisation defaults". A file too large to read is the
        configuration error the run reports, never a reason to run on defaults.
        """
        candidates: list[tuple[str, str | None]] = [(full_name, default_branch)]
        org_repo = f"{owner}/.github"
        if org_repo.lower() != full_name.lower():
            candidates.append((org_repo, None))
        for repository, ref in candidates:
            source = f"{repository}/{CONFIG_PATH}"
            try:
                text = await self.get_file(
                    repository, CONFIG_PATH, ref=ref, max_bytes=MAX_CONFIG_BYTES
                )
            except FileTooLarge as error:
                sentence = (
                    f"`{source}` is too large ({error.size:,} bytes; the limit is {error.limit:,})."
                )
                return ConfigError(sentence, source), source
            except GitHubError as error:
                if repository == full_name or error.status != 403:
                    raise
                text = None
            if text is not None:
                return text, source
        return None, "defaults"

    # -- issues --------------------------------------------------------------------------------

    async def get_issue(self, full_name: str, number: int) -> IssueInfo:
        owner, repo = split_full_name(full_name)
        async with self._call("get_issue", f"GET /repos/{full_name}/issues/{number}"):
            resp = await self._gh.rest.issues.async_get(owner, repo, number)
            return issue_from(resp.parsed_data)

    async def create_comment(self, full_name: str, issue_number: int, body: str) -> Comment:
        """Post without looking for an earlier attempt first: for a caller that records what it
        posted itself (an outsider's one reply a day), so that no list of comments is paged."""
        owner, repo = split_full_name(full_name)
        endpoint = f"POST /repos/{full_name}/issues/{issue_number}/comments"
        async with self._call("create_comment", endpoint):
            resp = await self._gh.rest.issues.async_create_comment(
                owner, repo, issue_number, data={"body": body}
            )
            return comment_from(resp.parsed_data)
