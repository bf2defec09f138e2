"""What a run's agent is asked to do, and where its commits may go: decided before any clone.

The task is what a writer asked for: the issue's or pull request's title and body as the trigger
carried them (safety/task_snapshot.py), and comments only by people with write access (their
permissions asked once per person and run). The push target is checked here, before a workspace
or a model costs anything (safety/push_rules.py): a run that may not push stops with one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from honk_app.agent.prompt import IssueTask, PullRequestTask, ReviewComment
from honk_app.github.installation import InstallationClient
from honk_app.github.models import WRITE_PERMISSIONS
from honk_app.models import Trigger
from honk_app.runs import checks
from honk_app.runs.outcome import located
from honk_app.runs.progress import TrackingProgress
from honk_app.runs.runtime import Runtime
from honk_app.safety.push_rules import BranchFacts, PushTarget, needs_facts, push_refusal
from honk_app.safety.task_snapshot import Kind, TaskText, author_matters, choose_text
from honk_app.workspace.git import branch_name


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
    reviews = await gh.pull_review_comments(name, number)
    writers = await writers_among(gh, name, {r.author for r in reviews})
    task = PullRequestTask(
        repository=name,
        number=number,
        title=text.title,
        body=text.body,
        changed_files=files,
        review_comments=[
            ReviewComment(author=r.author, body=r.body, path=r.path, line=r.line)
            for r in reviews
            if r.author in writers
        ],
        instruction=located(trigger),
        requested_by=trigger.sender_login,
    )
    return _gathered(progress, task, pull.head_ref, pull.base_ref, True, note)


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
    comments = await gh.list_issue_comments(name, number)
    bot = (await rt.github.app_info()).bot_login
    comments = [c for c in comments if c.author != bot and "<!-- honk:" not in c.body]
    writers = await writers_among(gh, name, {c.author for c in comments})
    task = IssueTask(
        repository=name,
        number=number,
        title=text.title,
        body=text.body,
        comments=[(c.author, c.body) for c in comments if c.author in writers],
        instruction=trigger.instruction,
        requested_by=trigger.sender_login,
    )
    return _gathered(progress, task, branch, default, False, note)


def _gathered(
    progress: TrackingProgress,
    task: IssueTask | PullRequestTask,
    branch: str,
    base_branch: str,
    existing: bool,
    note: str | None,
) -> Gathered:
    notes = [note] if note else []
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


async def writers_among(gh: InstallationClient, full_name: str, logins: set[str]) -> set[str]:
    """Only text from people with write access reaches the agent's task."""
    allowed: set[str] = set()
    for login in sorted(logins):
        if await gh.cached_permission(full_name, login) in WRITE_PERMISSIONS:
            allowed.add(login)
    return allowed
