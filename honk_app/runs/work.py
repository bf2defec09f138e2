"""The work step: workspace → agent → validation (with fix rounds) → policy → commit and push.

It is one durable step because its parts share a workspace that does not survive a crash: a run
resumed after a crash starts this step again from a fresh clone (and the push finds Honk's branch
by name, so nothing is duplicated). The step is preemptible: `/honk stop` cancels the workflow,
and a watcher here cancels the task, which kills the sandboxed command tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dbos import DBOS

from honk_app.agent.base import AgentSession, AgentTask, Limits
from honk_app.agent.prompt import (
    IssueTask,
    PullRequestTask,
    build_system_prompt,
    build_task_prompt,
    feedback_prompt,
)
from honk_app.github.installation import InstallationClient
from honk_app.models import AgentOutcome, Outcome, Trigger
from honk_app.repo_config import RepoConfig
from honk_app.runs import checks
from honk_app.runs.backends import load_builtin, open_session
from honk_app.runs.gather import PushRefused, gather_task, repo_instructions
from honk_app.runs.outcome import (
    KEPT_CHANGED_FILES,
    WorkResult,
    as_command_result,
    co_author,
    commit_message,
    findings,
    no_change,
    pushed_outcome,
)
from honk_app.runs.progress import TrackingProgress
from honk_app.runs.runtime import Runtime
from honk_app.runs.spend import SpendLedger
from honk_app.runs.views import start_view
from honk_app.safety.policy import PolicyReport
from honk_app.verify.results import ValidationResult
from honk_app.verify.validate import validate
from honk_app.workspace.clone import Workspace, prepare_workspace
from honk_app.workspace.egress import EgressReport
from honk_app.workspace.inspection import restore_protected
from honk_app.workspace.sandbox import NO_SANDBOX, Sandbox, SandboxUnavailable, bwrap_usable

log = logging.getLogger("honk.work")

CANCEL_POLL_S = 1.0
MIN_VALIDATION_S = 120.0


@contextlib.asynccontextmanager
async def preemptible(workflow_id: str) -> AsyncIterator[None]:
    """Cancel this task when the workflow is cancelled, from any process sharing the database."""
    task = asyncio.current_task()
    assert task is not None

    async def watch() -> None:
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            try:
                status = await DBOS.get_workflow_status_async(workflow_id)
            except Exception as exc:  # a database hiccup must not disable /honk stop
                log.warning("could not read the status of %s: %s", workflow_id, exc)
                continue
            if status is not None and status.status == "CANCELLED":
                log.info("run %s was stopped: cancelling its work", workflow_id)
                task.cancel()
                return

    watcher = asyncio.create_task(watch())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def do_work(
    rt: Runtime, trigger: Trigger, comment_id: int | None, config_json: dict[str, Any]
) -> dict[str, Any]:
    config = RepoConfig.model_validate(config_json["config"])
    confined = rt.settings.HONK_SANDBOX == "on"
    if confined and not await asyncio.to_thread(bwrap_usable):
        raise SandboxUnavailable(NO_SANDBOX)  # the failure report shows this sentence
    started = time.monotonic()
    gh = await rt.github.installation(trigger.installation_id)
    progress = TrackingProgress(
        gh,
        trigger,
        comment_id,
        known_secrets=rt.known_secrets,
        record_spend=functools.partial(
            SpendLedger(rt.store.engine).arecord_attempt, trigger.run_id
        ),
    )
    await progress.phase_workspace()
    async with preemptible(DBOS.workflow_id or trigger.run_id):  # /honk stop ends a quota wait
        await progress.wait_for_quota()
    workflow_id = DBOS.workflow_id or trigger.run_id
    try:
        result = await _work(rt, trigger, config, progress, gh, workflow_id)
    except asyncio.CancelledError:
        await asyncio.shield(_close_cancelled(rt, gh, trigger))
        raise
    result.duration_s = time.monotonic() - started
    await rt.store.aaudit(
        trigger.run_id,
        "work",
        {
            "outcome": result.outcome,
            "changed_files": result.changed_files,
            "changed_files_total": result.changed_files_total,
            "validation": result.validation,
        },
    )
    return result.to_json()


async def _close_cancelled(rt: Runtime, gh: InstallationClient, trigger: Trigger) -> None:
    """Complete a check run this run opened, even if `/honk stop` came before it was recorded."""
    try:
        row = await rt.store.aget(trigger.run_id)
        if row is not None and row.head_sha:
            await checks.complete_cancelled(rt, gh, trigger, row.head_sha, start_view(trigger))
    except Exception as exc:
        log.warning("could not close the check run of stopped run %s: %s", trigger.run_id, exc)


async def _work(
    rt: Runtime,
    trigger: Trigger,
    config: RepoConfig,
    progress: TrackingProgress,
    gh: InstallationClient,
    workflow_id: str,
) -> WorkResult:
    async with preemptible(workflow_id):
        gathered = await gather_task(rt, gh, trigger, progress)
        if isinstance(gathered, PushRefused):
            return await _push_refused(rt, trigger, config, gathered)
        token = await rt.github.installation_token(trigger.installation_id)
        ws = await prepare_workspace(
            data_dir=rt.settings.data_dir,
            workspace_root=rt.workspace_root,
            run_id=trigger.run_id,
            full_name=trigger.target.full_name,
            clone_url=trigger.repository.clone_url,
            token=token,
            base_branch=gathered.base_branch,
            branch=gathered.branch,
            existing_branch=gathered.existing_branch,
            default_branch=trigger.repository.default_branch,
        )
        egress = rt.egress.open_run(trigger.run_id) if rt.egress is not None else None
        try:
            result = await _work_in(
                rt, ws, trigger, config, gathered.task, progress, gh,
                egress.unix_socket if egress else None,
            )  # fmt: skip
        finally:
            await ws.remove()
            report = rt.egress.close_run(trigger.run_id) if rt.egress is not None else None
        result.egress_refused = egress_refusals(report)
        result.notes = [*gathered.notes, *result.notes]
        return result


async def _push_refused(
    rt: Runtime, trigger: Trigger, config: RepoConfig, refused: PushRefused
) -> WorkResult:
    """Stopped before any clone or model call: the report says where Honk would not push."""
    await rt.store.aaudit(
        trigger.run_id,
        "push_refused",
        {"branch": refused.target.branch, "reason": refused.sentence},
    )
    return WorkResult(
        outcome=Outcome.BLOCKED.value,
        outcome_detail=refused.sentence,
        branch=refused.target.branch,
        base_branch=refused.target.base_branch,
        agent=AgentOutcome(stop="done", summary=""),
        agent_name=config.agent or rt.settings.HONK_AGENT,
        model=config.model,
        policy_findings=[refused.sentence],  # listed where the report points
        unconfined=rt.settings.HONK_SANDBOX == "off",
        limits=_limits(config),
        draft_always=config.draft == "always",
    )


def _limits(config: RepoConfig) -> dict[str, Any]:
    return {
        "max_turns": config.max_turns,
        "max_cost_usd": config.max_cost_usd,
        "timeout_minutes": config.timeout_minutes,
    }


async def _work_in(
    rt: Runtime,
    ws: Workspace,
    trigger: Trigger,
    config: RepoConfig,
    task: IssueTask | PullRequestTask,
    progress: TrackingProgress,
    gh: InstallationClient,
    egress_socket: Path | None,
) -> WorkResult:
    repo_instructions = await _repo_instructions(gh, trigger, ws.base_branch)
    agent_task = AgentTask(
        workspace=ws.path,
        system_prompt=build_system_prompt(
            repo_instructions=repo_instructions,
            config_instructions=config.instructions,
            protected_paths=config.protected_paths,
        ),
        task_prompt=build_task_prompt(task),
        model=config.model,
        limits=Limits(
            max_turns=config.max_turns,
            max_cost_usd=config.max_cost_usd,
            timeout_s=config.timeout_minutes * 60,
        ),
    )
    sandbox = Sandbox(
        ws.path,
        temp_dir=ws.scratch_dir,
        readonly_paths=[*ws.readonly_paths, *rt.settings.sandbox_readonly],
        hidden_paths=rt.secret_paths(),
        limits=rt.settings.sandbox_limits,
        mode="bwrap" if rt.settings.HONK_SANDBOX == "on" else "none",
        egress_socket=egress_socket,
    )
    agent_name = config.agent or rt.settings.HONK_AGENT
    deadline = time.monotonic() + config.timeout_minutes * 60
    await progress.phase_agent()
    await load_builtin()  # the first run's import must not stall the event loop
    session: AgentSession = open_session(rt, agent_name, agent_task, sandbox, config, progress)
    restored: set[str] = set()
    validation: ValidationResult | None = None
    rounds = 0
    try:
        outcome = await session.start()
        while True:
            newly, report = await _restore_protected(ws, config)
            restored |= newly
            if report.empty or outcome.stop not in ("done", "max_turns", "max_cost"):
                break
            await progress.phase_validation()
            remaining = max(MIN_VALIDATION_S, deadline - time.monotonic())
            validation = await validate(
                sandbox,
                setup=config.setup,
                test=config.test,
                setup_network=config.setup_network,
                timeout_s=remaining,
            )
            await rt.store.aaudit(trigger.run_id, "validation", validation.to_json())
            if not validation.ran or validation.passed or outcome.stop != "done":
                break
            if rounds >= config.fix_attempts or validation.test is None:
                break
            rounds += 1
            await progress.phase_agent()
            outcome = await session.follow_up(
                feedback_prompt(config.test or "", as_command_result(validation))
            )
    finally:
        await session.close()
    return await _conclude(
        rt, ws, trigger, config, outcome, validation, sorted(restored), rounds, agent_name, progress
    )


async def _repo_instructions(
    gh: InstallationClient, trigger: Trigger, base_branch: str
) -> str | None:
    return await repo_instructions(gh, trigger.target.full_name, base_branch)


async def _restore_protected(
    ws: Workspace, config: RepoConfig, known_secrets: tuple[str, ...] = ()
) -> tuple[set[str], PolicyReport]:
    """Undo changes under protected paths; what was restored, and the verdict on what is left
    (a protected path still changed blocks the push). The diff is read capped and judged off
    the event loop, the changed files matched in full (workspace/inspection.py)."""
    return await restore_protected(ws, config, known_secrets=known_secrets)


async def _conclude(
    rt: Runtime,
    ws: Workspace,
    trigger: Trigger,
    config: RepoConfig,
    agent: AgentOutcome,
    validation: ValidationResult | None,
    restored: list[str],
    rounds: int,
    agent_name: str,
    progress: TrackingProgress,
) -> WorkResult:
    # the tests may have written under protected paths too
    newly, report = await _restore_protected(ws, config, tuple(rt.known_secrets))
    restored = sorted(set(restored) | newly)
    stat = await ws.numstat()
    result = WorkResult(
        outcome=Outcome.NO_CHANGE.value,
        branch=ws.branch,
        base_branch=ws.base_branch,
        agent=agent,
        agent_name=agent_name,
        model=config.model,
        validation=validation.to_json() if validation is not None else None,
        policy_findings=[*findings(report, restored), *left_out_findings(ws.left_out)],
        annotations=[vars(a) for a in report.annotations()],
        protected_restored=restored,
        changed_files=[
            (f.path, f.added or 0, f.removed or 0) for f in stat.files[:KEPT_CHANGED_FILES]
        ],
        changed_files_total=max(len(stat.files), report.files_changed),
        fix_rounds=rounds,
        unconfined=rt.settings.HONK_SANDBOX == "off",
        limits=_limits(config),
        draft_always=config.draft == "always",
    )
    if trigger.target.is_pull_request:
        result.head_sha = ws.head_sha  # the check run goes on the head, changed or not
    passed = validation is not None and validation.ran and validation.passed
    if report.empty:
        result.outcome, result.outcome_detail = no_change(agent)
        return result
    if report.blocks_push:
        result.outcome = Outcome.BLOCKED.value
        result.outcome_detail = " ".join(report.findings())
        return result
    if report.server_secret:
        result.outcome = Outcome.BLOCKED.value
        result.outcome_detail = "The change contains a secret of this Honk server."
        result.policy_findings.append(result.outcome_detail)  # listed where the report points
        return result
    await progress.phase_pull_request()
    bot = await rt.github.app_info()
    sha = await ws.commit(
        commit_message(trigger, agent, trigger.repository.web_url),
        author_name=bot.bot_login,
        author_email=f"{bot.bot_user_id}+{bot.bot_login}@users.noreply.github.com",
        co_author=co_author(trigger),
    )
    if sha is not None:
        token = await rt.github.installation_token(trigger.installation_id)
        result.head_sha = await ws.push(token)
        result.pushed = True
    result.validated = passed and agent.stop == "done"
    result.outcome, result.outcome_detail = pushed_outcome(agent, validation, passed)
    return result


def egress_refusals(report: EgressReport | None) -> list[str]:
    """What the egress proxy refused this run, one line each, for the run's report."""
    if report is None:
        return []
    lines = [
        f"{r.host}: {r.reason}" + (f" ({r.count}×)" if r.count > 1 else "") for r in report.refused
    ]
    if report.refused_omitted:
        lines.append(f"and {report.refused_omitted} more")
    return lines


def left_out_findings(paths: tuple[str, ...]) -> list[str]:
    """Nested repositories never go into Honk's commit; the report says which were left out."""
    return [
        f"Left out `{path}`: it is a repository of its own, and Honk never pushes one inside "
        "another."
        for path in paths
    ]
