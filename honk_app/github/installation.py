"""Every call Honk makes as one installation: issues (issues.py), branches (branches.py), pulls
and check runs.

Each method that changes something first looks for what an earlier attempt made (a pull request by
its head branch, a check run by its external id, a review reply by its marker) and only then
creates, so a workflow step repeated after a crash changes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, cast

from honk_app.github.branches import BranchCalls
from honk_app.github.errors import GitHubError
from honk_app.github.issues import COMMENT_PAGE, with_marker
from honk_app.github.models import (
    CheckRunInfo,
    PullInfo,
    ReviewCommentInfo,
    annotation_batches,
    check_run_from,
    is_own,
    pull_already_exists,
    pull_from,
    review_comment_from,
    split_full_name,
)
from honk_app.github.paging import linked_page

if TYPE_CHECKING:
    from githubkit_schemas.latest.models import (
        CheckRun,
        DiffEntry,
        PullRequestReviewComment,
        PullRequestSimple,
    )

logger = logging.getLogger("honk.github")

READY_FOR_REVIEW = """
mutation($id: ID!) {
  markPullRequestReadyForReview(input: {pullRequestId: $id}) { pullRequest { isDraft } }
}"""
CONVERT_TO_DRAFT = """
mutation($id: ID!) {
  convertPullRequestToDraft(input: {pullRequestId: $id}) { pullRequest { isDraft } }
}"""


class InstallationClient(BranchCalls):
    """One installation of the App; repositories are named per call (`owner/repo`)."""

    # -- review comments -----------------------------------------------------------------------

    async def review_comment_pages(
        self, full_name: str, number: int
    ) -> AsyncGenerator[list[ReviewCommentInfo], None]:
        """A pull request's review comments newest first, a page at a time, at most `max_pages`
        pages (GitHub sorts these itself); the caller stops when it has read enough."""
        async with aclosing(
            self._review_comment_pages(full_name, number, "review_comments")
        ) as pages:
            async for page in pages:
                yield page

    async def _review_comment_pages(
        self, full_name: str, number: int, op: str
    ) -> AsyncGenerator[list[ReviewCommentInfo], None]:
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/pulls/{number}/comments"
        for page in range(1, self._bounds.max_pages + 1):
            async with self._call(op, endpoint):
                resp = await self._gh.rest.pulls.async_list_review_comments(
                    owner,
                    repo,
                    number,
                    sort="created",
                    direction="desc",
                    per_page=COMMENT_PAGE,
                    page=page,
                )
                comments = cast("list[PullRequestReviewComment]", resp.parsed_data)
                found = [review_comment_from(comment) for comment in comments]
                more = linked_page(resp.raw_response.links, "next") is not None
            yield found
            if not more or not found:
                return
        logger.warning(
            "%s (%s) read the newest %d pages only; older ones unread", op, endpoint, page
        )

    async def pull_review_comments(self, full_name: str, number: int) -> list[ReviewCommentInfo]:
        """The newest review comments (at most `max_pages` pages of them), oldest first."""
        found: list[ReviewCommentInfo] = []
        async for page in self._review_comment_pages(full_name, number, "pull_review_comments"):
            found += page
        return found[::-1]

    async def reply_to_review_comment(
        self, full_name: str, pull_number: int, comment_id: int, body: str, *, marker: str
    ) -> None:
        """Answer in a review thread once: skipped when this App's reply with `marker` exists
        among the newest review comments."""
        body = with_marker(body, marker)
        pages = self._review_comment_pages(full_name, pull_number, "reply_to_review_comment")
        async with aclosing(pages):
            async for page in pages:
                for comment in page:
                    if marker in comment.body and is_own(
                        comment.author, None, app_id=self._app.id, app_login=self._app.bot_login
                    ):
                        return
        owner, repo = split_full_name(full_name)
        endpoint = f"POST /repos/{full_name}/pulls/{pull_number}/comments/{comment_id}/replies"
        async with self._call("reply_to_review_comment", endpoint):
            await self._gh.rest.pulls.async_create_reply_for_review_comment(
                owner, repo, pull_number, comment_id, data={"body": body}
            )

    async def get_pull(self, full_name: str, number: int) -> PullInfo:
        owner, repo = split_full_name(full_name)
        async with self._call("get_pull", f"GET /repos/{full_name}/pulls/{number}"):
            resp = await self._gh.rest.pulls.async_get(owner, repo, number)
            return pull_from(resp.parsed_data)

    async def pull_files(self, full_name: str, number: int) -> list[str]:
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/pulls/{number}/files"
        entries: list[DiffEntry] = await self._listing(
            "pull_files", endpoint, self._gh.rest.pulls.async_list_files,
            owner=owner, repo=repo, pull_number=number,
        )  # fmt: skip
        return [entry.filename for entry in entries]

    async def find_pull_by_head(self, full_name: str, owner: str, branch: str) -> PullInfo | None:
        """The open pull request whose head is `owner:branch`, if any."""
        repo_owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/pulls?head={owner}:{branch}"
        pulls: list[PullRequestSimple] = await self._listing(
            "find_pull_by_head",
            endpoint,
            self._gh.rest.pulls.async_list,
            owner=repo_owner,
            repo=repo,
            state="open",
            head=f"{owner}:{branch}",
        )
        for pull in pulls:
            if (pull.head.label or "").lower() == f"{owner}:{branch}".lower():
                return pull_from(pull)
        return None

    async def create_or_update_pull(
        self, full_name: str, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullInfo:
        """The pull request for `head` (a branch, or `owner:branch` from a fork), made or updated.

        `draft` applies when creating; use `set_draft` to change an existing pull request.
        """
        repo_owner, repo = split_full_name(full_name)
        head_owner, _, branch = head.rpartition(":")
        head_owner = head_owner or repo_owner
        # an empty body is left out: GitHub may refuse a blank one
        fields: dict[str, Any] = {"title": title, **({"body": body} if body else {})}
        existing = await self.find_pull_by_head(full_name, head_owner, branch)
        if existing is None:
            try:
                async with self._call("create_or_update_pull", f"POST /repos/{full_name}/pulls"):
                    resp = await self._gh.rest.pulls.async_create(
                        repo_owner,
                        repo,
                        data=cast(Any, {**fields, "head": head, "base": base, "draft": draft}),
                    )
                    return pull_from(resp.parsed_data)
            except GitHubError as error:
                if error.status != 422 or not pull_already_exists(error.detail):
                    raise
                # another attempt created it between our look and our create
                existing = await self.find_pull_by_head(full_name, head_owner, branch)
                if existing is None:
                    raise
        if existing.title == title and existing.body == body:
            return existing
        endpoint = f"PATCH /repos/{full_name}/pulls/{existing.number}"
        async with self._call("create_or_update_pull", endpoint):
            resp = await self._gh.rest.pulls.async_update(
                repo_owner, repo, existing.number, data=cast(Any, fields)
            )
            return pull_from(resp.parsed_data)

    async def set_draft(self, full_name: str, pull: PullInfo, draft: bool) -> None:
        """Mark ready for review or convert to draft (GraphQL only; REST cannot toggle it).

        The current state is read first, so a repeated call sends no mutation.
        """
        current = await self.get_pull(full_name, pull.number)
        if current.draft == draft:
            return
        query, name = (
            (CONVERT_TO_DRAFT, "convertPullRequestToDraft")
            if draft
            else (READY_FOR_REVIEW, "markPullRequestReadyForReview")
        )
        async with self._call("set_draft", f"POST /graphql {name}"):
            await self._gh.async_graphql(query, {"id": current.node_id})

    async def request_review(self, full_name: str, number: int, login: str) -> None:
        """Ask `login` to review; GitHub's 422 (the author, or not a collaborator) is ignored."""
        owner, repo = split_full_name(full_name)
        endpoint = f"POST /repos/{full_name}/pulls/{number}/requested_reviewers"
        try:
            async with self._call("request_review", endpoint):
                await self._gh.rest.pulls.async_request_reviewers(
                    owner, repo, number, data={"reviewers": [login]}
                )
        except GitHubError as error:
            if error.status != 422:
                raise
            logger.info("GitHub declined a review request: %s", error)

    # -- check runs ----------------------------------------------------------------------------

    async def _check_runs(
        self, full_name: str, head_sha: str, name: str, op: str
    ) -> list[CheckRun]:
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/commits/{head_sha}/check-runs"
        runs: list[CheckRun] = await self._listing(
            op,
            endpoint,
            self._gh.rest.checks.async_list_for_ref,
            lambda resp: list(resp.parsed_data.check_runs),
            owner=owner,
            repo=repo,
            ref=head_sha,
            check_name=name,
            filter_="all",
            app_id=self._app.id,
        )
        return [
            run
            for run in runs
            if run.name == name and (run.app is None or run.app.id == self._app.id)
        ]

    async def list_check_runs(self, full_name: str, head_sha: str, name: str) -> list[CheckRunInfo]:
        """This App's check runs called `name` on a commit, newest first as GitHub lists them."""
        runs = await self._check_runs(full_name, head_sha, name, "list_check_runs")
        return [check_run_from(run) for run in runs]

    async def upsert_check_run(
        self,
        full_name: str,
        *,
        head_sha: str,
        name: str,
        external_id: str,
        status: str,
        conclusion: str | None = None,
        output: dict[str, Any] | None = None,
        actions: list[dict[str, Any]] | None = None,
        details_url: str | None = None,
    ) -> int:
        """Create or update the check run found by commit, name and `external_id`; its id.

        GitHub takes at most 50 annotations per request and appends them, so the rest follow in
        further updates. A repeated call after a crash may therefore repeat annotations, never runs.
        """
        owner, repo = split_full_name(full_name)
        runs = await self._check_runs(full_name, head_sha, name, "upsert_check_run")
        existing = next((run for run in runs if run.external_id == external_id), None)
        fields: dict[str, Any] = {"name": name, "external_id": external_id, "status": status}
        extras = {"conclusion": conclusion, "actions": actions, "details_url": details_url}
        fields.update({key: value for key, value in extras.items() if value is not None})
        batches = annotation_batches(output)
        if batches[0] is not None:
            fields["output"] = batches[0]
        checks = self._gh.rest.checks
        if existing is None:
            async with self._call("upsert_check_run", f"POST /repos/{full_name}/check-runs"):
                created = await checks.async_create(
                    owner, repo, data=cast(Any, {**fields, "head_sha": head_sha})
                )
                run_id = created.parsed_data.id
        else:
            run_id = existing.id
            await self._patch_check_run(full_name, run_id, fields)
        for batch in batches[1:]:
            await self._patch_check_run(full_name, run_id, {"output": batch})
        return run_id

    async def _patch_check_run(self, full_name: str, run_id: int, fields: dict[str, Any]) -> None:
        owner, repo = split_full_name(full_name)
        endpoint = f"PATCH /repos/{full_name}/check-runs/{run_id}"
        async with self._call("upsert_check_run", endpoint):
            await self._gh.rest.checks.async_update(owner, repo, run_id, data=cast(Any, fields))
