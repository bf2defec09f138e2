"""The in-memory installation's pull request calls, as honk_app.github.installation makes them.

A pull request is found by its head `owner:branch` before one is created; an update changes the
title and body only when they differ, never the draft state (`set_draft` does, read first). A
review reply is posted once, found again by its marker. Review requests for the author or a
non-collaborator answer 422, which the real client ignores.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from honk_app.github.errors import GitHubError
from honk_app.github.issues import with_marker
from honk_app.github.models import (
    PullInfo,
    ReviewCommentInfo,
    pull_already_exists,
    split_full_name,
)
from tests.fakes.memory.issues import MemoryIssueCalls, newest_pages
from tests.fakes.memory.state import PullState, as_model, not_found, refused


def pull_info(pull: PullState) -> PullInfo:
    return as_model(PullInfo, pull, head_repo_full_name=pull.head_repo, state="open")


class MemoryPullCalls(MemoryIssueCalls):
    """Pull requests and their review comments."""

    def _pull(self, full_name: str, number: int, op: str, endpoint: str) -> PullState:
        pull = self._issue(full_name, number, op, endpoint)
        if not isinstance(pull, PullState):
            raise not_found(op, endpoint)
        return pull

    # -- review comments --------------------------------------------------------------------------
    async def review_comment_pages(
        self, full_name: str, number: int
    ) -> AsyncGenerator[list[ReviewCommentInfo], None]:
        self._call("review_comment_pages")
        endpoint = f"GET /repos/{full_name}/pulls/{number}/comments"
        self._pull(full_name, number, "review_comments", endpoint)
        comments = self.github.review_comments_on(full_name, number)
        for page in newest_pages([as_model(ReviewCommentInfo, c) for c in comments]):
            yield page

    async def pull_review_comments(self, full_name: str, number: int) -> list[ReviewCommentInfo]:
        self._call("pull_review_comments")
        endpoint = f"GET /repos/{full_name}/pulls/{number}/comments"
        self._pull(full_name, number, "pull_review_comments", endpoint)
        comments = self.github.review_comments_on(full_name, number)
        newest = [c for page in newest_pages(comments) for c in page]
        return [as_model(ReviewCommentInfo, c) for c in reversed(newest)]

    async def reply_to_review_comment(
        self, full_name: str, pull_number: int, comment_id: int, body: str, *, marker: str
    ) -> None:
        self._call("reply_to_review_comment")
        body = with_marker(body, marker)
        endpoint = f"GET /repos/{full_name}/pulls/{pull_number}/comments"
        self._pull(full_name, pull_number, "reply_to_review_comment", endpoint)
        thread = self.github.review_comments_on(full_name, pull_number)
        newest = [c for page in newest_pages(thread) for c in page]
        if any(marker in c.body and self._own(c.author) for c in newest):
            return
        endpoint = f"POST /repos/{full_name}/pulls/{pull_number}/comments/{comment_id}/replies"
        parent = next((c for c in thread if c.id == comment_id), None)
        if parent is None:
            raise not_found("reply_to_review_comment", endpoint)
        self.github.add_review_comment(
            full_name,
            pull_number,
            body,
            path=parent.path,
            line=parent.line,
            author=self._app.bot_login,
            in_reply_to_id=parent.in_reply_to_id or parent.id,
        )
        self._write(endpoint)

    # -- pull requests ----------------------------------------------------------------------------
    async def get_pull(self, full_name: str, number: int) -> PullInfo:
        self._call("get_pull")
        endpoint = f"GET /repos/{full_name}/pulls/{number}"
        return pull_info(self._pull(full_name, number, "get_pull", endpoint))

    async def pull_files(self, full_name: str, number: int) -> list[str]:
        self._call("pull_files")
        endpoint = f"GET /repos/{full_name}/pulls/{number}/files"
        return list(self._pull(full_name, number, "pull_files", endpoint).files)

    async def find_pull_by_head(self, full_name: str, owner: str, branch: str) -> PullInfo | None:
        self._call("find_pull_by_head")
        endpoint = f"GET /repos/{full_name}/pulls?head={owner}:{branch}"
        self._repo(full_name, "find_pull_by_head", endpoint)
        label = f"{owner}:{branch}".lower()
        for pull in reversed(self.github.pulls_in(full_name)):  # GitHub lists newest first
            if pull.head_label.lower() == label:
                return pull_info(pull)
        return None

    async def create_or_update_pull(
        self, full_name: str, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullInfo:
        self._call("create_or_update_pull")
        repo_owner, _ = split_full_name(full_name)
        head_owner, _, branch = head.rpartition(":")
        head_owner = head_owner or repo_owner
        existing = await self.find_pull_by_head(full_name, head_owner, branch)
        if existing is None:
            try:
                created = self._create_pull(full_name, head_owner, branch, base, title, body, draft)
                return pull_info(created)
            except GitHubError as error:
                if error.status != 422 or not pull_already_exists(error.detail):
                    raise
                existing = await self.find_pull_by_head(full_name, head_owner, branch)
                if existing is None:
                    raise
        if existing.title == title and existing.body == body:
            return existing
        endpoint = f"PATCH /repos/{full_name}/pulls/{existing.number}"
        pull = self._pull(full_name, existing.number, "create_or_update_pull", endpoint)
        pull.title = title
        if body:  # an empty body is left out of the request
            pull.body = body
        self._write(endpoint)
        return pull_info(pull)

    def _create_pull(
        self,
        full_name: str,
        head_owner: str,
        branch: str,
        base: str,
        title: str,
        body: str,
        draft: bool,
    ) -> PullState:
        endpoint = f"POST /repos/{full_name}/pulls"
        repo = self._repo(full_name, "create_or_update_pull", endpoint)

        def invalid(detail: str) -> GitHubError:
            return refused("create_or_update_pull", endpoint, 422, f"Validation Failed ({detail})")

        if not title.strip():
            raise invalid("PullRequest title missing_field")
        if base not in repo.branches:
            raise invalid("PullRequest base invalid")
        repo_owner = split_full_name(repo.full_name)[0]
        if head_owner.lower() != repo_owner.lower() or branch not in repo.branches:
            raise invalid("PullRequest head invalid")  # forks are not modelled
        if branch == base:
            raise invalid(f"No commits between {base} and {branch}")
        label = f"{head_owner}:{branch}".lower()
        for other in self.github.pulls_in(full_name):
            if other.head_label.lower() == label and other.base_ref == base:
                raise invalid(f"A pull request already exists for {head_owner}:{branch}.")
        pull = self.github.add_pull(
            full_name,
            title=title,
            body=body,
            author=self._app.bot_login,
            head_ref=branch,
            head_sha=repo.branches[branch],
            base_ref=base,
            draft=draft,
        )
        self._write(endpoint)
        return pull

    async def set_draft(self, full_name: str, pull: PullInfo, draft: bool) -> None:
        self._call("set_draft")
        current = await self.get_pull(full_name, pull.number)
        if current.draft == draft:
            return
        endpoint = "POST /graphql " + (
            "convertPullRequestToDraft" if draft else "markPullRequestReadyForReview"
        )
        self._pull(full_name, pull.number, "set_draft", endpoint).draft = draft
        self._write(endpoint)

    async def request_review(self, full_name: str, number: int, login: str) -> None:
        """GitHub's 422 (the author, or not a collaborator) is ignored, as the real client does."""
        self._call("request_review")
        endpoint = f"POST /repos/{full_name}/pulls/{number}/requested_reviewers"
        pull = self._pull(full_name, number, "request_review", endpoint)
        permission = self.github.repo(full_name).permissions.get(login.lower(), "none")
        if login.lower() == pull.author.lower() or permission == "none":
            return
        if login not in pull.requested_reviewers:
            pull.requested_reviewers.append(login)
        self._write(endpoint)
