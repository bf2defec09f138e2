"""What a run's agent is asked to do, and where its commits may go: decided before any clone.

The task is what a writer asked for: the issue's or pull request's title and body as the trigger
carried them (safety/task_snapshot.py), and comments only by people with write access (their
permissions asked once per person and run). The push target is checked here, before a workspace
or a model costs anything (safety/push_rules.py): a run that may not push stops with one sentence.

Anyone can comment, so comments are read newest first and only until the prompt's share of
writers' comments is found: a crowd of strangers costs at most `MAX_PEOPLE_ASKED` permission
calls and a few pages, however many comments it wrote. An issue's first page (its oldest comments,
often the maintainer's triage) is read too; when a long thread leaves the pages between unread, the
report says so. The repository's own instructions are read within a size cap and cut to what the
prompt shows before anything cleans them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TypeVar

from honk_app.agent.prompt import (
    MAX_COMMENTS,
    MAX_TEXT_CHARS,
    IssueTask,
    PullRequestTask,
    ReviewComment,
)
from honk_app.github.installation import InstallationClient
from honk_app.github.issues import FileTooLarge
from honk_app.github.models import WRITE_PERMISSIONS
from honk_app.github.paging import PageWalk
from honk_app.models import Trigger
from honk_app.runs import checks
from honk_app.runs.outcome import located
from honk_app.runs.progress import TrackingProgress
from honk_app.runs.runtime import Runtime
from honk_app.safety.push_rules import BranchFacts, PushTarget, needs_facts, push_refusal
from honk_app.safety.task_snapshot import Kind, TaskText, author_matters, choose_text
from honk_app.workspace.git import branch_name

log = logging.getLogger("honk.gather")

C = TypeVar("C")

MAX_PEOPLE_ASKED = 50  # permission calls one run spends on the authors of comments
LONG_THREAD = (
    "Older comments were not read: on a thread this long Honk reads the first comments and the "
    "newest ones."
)
INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md")


@dataclass
class Gathered:
    """The agent's task, the branch it works on (and its base), and notes for the report."""

    task: IssueTask | PullRequestTask
    branch: str
    base_branch: str
    existing_branch: bool
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PushRefused:
    """Honk may not push where this run would: the sentence says why."""

    target: PushTarget
    sentence: str


async def gather_task(
    rt: Runtime, gh: InstallationClient, trigger: Trigger, progress: TrackingProgress
) -> Gathered | PushRefused:
    if trigger.target.is_pull_request:
        return await _pull_request_task(rt, gh, trigger, progress)
    return await _issue_task(rt, gh, trigger, progress)


async def _pull_request_task(
    rt: Runtime, gh: InstallationClient, trigger: Trigger, progress: TrackingProgress
) -> Gathered | PushRefused:
    name, number = trigger.target.full_name, trigger.target.number
    pull = await gh.get_pull(name, number)
    target = PushTarget(
        repository=name,
        branch=pull.head_ref,
        default_branch=trigger.repository.default_branch,
        base_branch=pull.base_ref,
        head_repository=pull.head_repo_full_name or "",
    )
    refused = await push_check(gh, target)
    if refused is not None:
        return refused
    await rt.store.aupdate(trigger.run_id, head_sha=pull.head_sha)
    await checks.start_in_progress(rt, gh, trigger, pull.head_sha, progress.view)
    text, note = await _task_text(
        gh, trigger, TaskText(pull.title, pull.body), pull.author, "pull request"
    )
    files = await gh.pull_files(name, number)
    reviews, unread = await newest_by_writers(
        gh, name, gh.review_comment_pages(name, number), lambda r: r.author, lambda r: False
    )
    task = PullRequestTask(
        repository=name,
        number=number,
        title=text.title,
        body=text.body,
        changed_files=files,
        review_comments=[
            ReviewComment(author=r.author, body=r.body, path=r.path, line=r.line) for r in reviews
        ],
        instruction=located(trigger),
        requested_by=trigger.sender_login,
    )
    return _gathered(progress, task, pull.head_ref, pull.base_ref, True, note, unread)


async def _issue_task(
    rt: Runtime, gh: InstallationClient, trigger: Trigger, progress: TrackingProgress
) -> Gathered | PushRefused:
    name, number = trigger.target.full_name, trigger.target.number
    issue = await gh.get_issue(name, number)
    default = trigger.repository.default_branch
    branch = branch_name(number, trigger.title or issue.title)
    target = PushTarget(repository=name, branch=branch, default_branch=default, base_branch=default)
    refused = await push_check(gh, target)
    if refused is not None:
        return refused
    text, note = await _task_text(gh, trigger, TaskText(issue.title, issue.body), issue.author)
    bot = (await rt.github.app_info()).bot_login
    comments, unread = await newest_by_writers(
        gh,
        name,
        gh.issue_comment_pages(name, number),
        lambda c: c.author,
        lambda c: c.author == bot or "<!-- honk:" in c.body,
    )
    task = IssueTask(
        repository=name,
        number=number,
        title=text.title,
        body=text.body,
        comments=[(c.author, c.body) for c in comments],
        instruction=trigger.instruction,
        requested_by=trigger.sender_login,
    )
    return _gathered(progress, task, branch, default, False, note, unread)


def _gathered(
    progress: TrackingProgress,
    task: IssueTask | PullRequestTask,
    branch: str,
    base_branch: str,
    existing: bool,
    *notes_or_none: str | None,
) -> Gathered:
    notes = [note for note in notes_or_none if note]
    progress.view.notes.extend(notes)  # shown while the run goes on, not only at the end
    return Gathered(task, branch, base_branch, existing, notes)


async def push_check(gh: InstallationClient, target: PushTarget) -> PushRefused | None:
    """Names decide first (no API call); a pull request's head branch then asks GitHub."""
    sentence = push_refusal(target, BranchFacts())
    if sentence is None and needs_facts(target):
        sentence = push_refusal(target, await gh.branch_facts(target.repository, target.branch))
    return PushRefused(target, sentence) if sentence is not None else None


async def _task_text(
    gh: InstallationClient,
    trigger: Trigger,
    current: TaskText,
    author: str,
    kind: Kind = "issue",
) -> tuple[TaskText, str | None]:
    """The snapshot the trigger carried, unless there is none and a writer wrote the current."""
    snapshot = TaskText(trigger.title, trigger.body)
    can_write = False
    if author_matters(snapshot, current):
        level = await gh.cached_permission(trigger.target.full_name, author)
        can_write = level in WRITE_PERMISSIONS
    return choose_text(
        snapshot, current, kind=kind, author_can_write=can_write, requested_by=trigger.sender_login
    )


async def newest_by_writers(
    gh: InstallationClient,
    full_name: str,
    pages: PageWalk[C] | AsyncGenerator[list[C], None],
    author: Callable[[C], str],
    skip: Callable[[C], bool],
) -> tuple[list[C], str | None]:
    """The newest `MAX_COMMENTS` comments by people with write access, oldest first: only their
    text reaches the agent's task. `pages` come newest first (an issue's page 1, its oldest
    comments, last); the walk stops when enough are found, or before asking GitHub about more
    than `MAX_PEOPLE_ASKED` people. The sentence says when older comments were left unread: for
    that limit, or because the thread is longer than the pages Honk reads and the walk went past
    the pages it skipped."""
    kept: list[C] = []
    can_write: dict[str, bool] = {}

    def found(note: str | None = None) -> tuple[list[C], str | None]:
        if note is None and isinstance(pages, PageWalk) and pages.cut:
            note = LONG_THREAD
        return kept[::-1], note

    async with aclosing(pages):
        async for page in pages:
            for comment in page:
                if skip(comment):
                    continue
                login = author(comment)
                if login not in can_write:
                    if len(can_write) >= MAX_PEOPLE_ASKED:
                        return found(
                            f"Older comments were not read: Honk asks GitHub about at most "
                            f"{MAX_PEOPLE_ASKED} commenters per run."
                        )
                    level = await gh.cached_permission(full_name, login)
                    can_write[login] = level in WRITE_PERMISSIONS
                if can_write[login]:
                    kept.append(comment)
                    if len(kept) >= MAX_COMMENTS:
                        return found()
    return found()


async def repo_instructions(gh: InstallationClient, full_name: str, base_branch: str) -> str | None:
    """AGENTS.md, else CLAUDE.md, from the base branch. One larger than Honk reads is skipped
    (logged); a long one is cut to the head and tail the prompt can show (it keeps both ends of
    a text), so that nothing cleans more than that."""
    for path in INSTRUCTION_FILES:
        try:
            text = await gh.get_file(full_name, path, ref=base_branch)
        except FileTooLarge as error:
            log.warning("Repository instructions skipped: %s", error)
            continue
        if text:
            if len(text) > 2 * MAX_TEXT_CHARS:
                text = f"{text[:MAX_TEXT_CHARS]}\n{text[-MAX_TEXT_CHARS:]}"
            return text
    return None
