"""The durable steps of intake: record, acknowledge, authorize, and answer commands.

Each finds before it creates, so a step repeated after a crash changes nothing twice. Steps take
and return plain JSON, which DBOS stores; the runtime is passed in by the workflow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS

from honk_app.github.errors import GitHubError
from honk_app.github.models import WRITE_PERMISSIONS
from honk_app.models import Command, Outcome, Trigger, work_workflow_id
from honk_app.report import replies
from honk_app.report.comment import run_marker, tracking_comment
from honk_app.report.text import inline
from honk_app.runs import budgets, checks, outsiders, spend
from honk_app.runs.runtime import Runtime
from honk_app.runs.store import RunRow
from honk_app.runs.views import start_view

log = logging.getLogger("honk.intake")

REPLYING_SOURCES = frozenset({"issue_comment", "review_comment", "review"})


def reply_marker(trigger: Trigger) -> str:
    return f"<!-- honk:reply={trigger.run_id} -->"


async def _reply(rt: Runtime, trigger: Trigger, body: str) -> None:
    gh = await rt.github.installation(trigger.installation_id)
    await gh.reply(
        trigger.target.full_name, trigger.target.number, body, marker=reply_marker(trigger)
    )


@DBOS.step(name="honk.record")
async def record(rt: Runtime, trigger_json: dict[str, Any]) -> None:
    trigger = Trigger.from_json(trigger_json)
    await rt.store.arecord(
        trigger.run_id,
        trigger.target.key,
        trigger.command.value,
        trigger.sender_login,
        trigger_json,
    )


@DBOS.step(name="honk.react")
async def react(rt: Runtime, trigger_json: dict[str, Any]) -> None:
    """👀 on what asked: the comment, or the issue for a label. GitHub dedupes reactions."""
    trigger = Trigger.from_json(trigger_json)
    gh = await rt.github.installation(trigger.installation_id)
    name, number = trigger.target.full_name, trigger.target.number
    try:
        if trigger.source == "label":
            await gh.add_reaction(name, issue_number=number)
        elif trigger.source == "issue_comment" and trigger.comment_id is not None:
            await gh.add_reaction(name, comment_id=trigger.comment_id)
        elif trigger.source == "review_comment" and trigger.comment_id is not None:
            await gh.add_reaction(name, review_comment_id=trigger.comment_id)
    except GitHubError as exc:  # a deleted comment must not stop the run
        log.warning("could not react to %s: %s", trigger.run_id, exc)


@DBOS.step(name="honk.authorize")
async def authorize(rt: Runtime, trigger_json: dict[str, Any]) -> str | None:
    """None when the sender may ask; else "unauthorized" or "fork". Never author_association."""
    trigger = Trigger.from_json(trigger_json)
    gh = await rt.github.installation(trigger.installation_id)
    permission = await gh.permission(trigger.target.full_name, trigger.sender_login)
    if permission not in WRITE_PERMISSIONS:
        log.info(
            "%s has %s on %s: refused", trigger.sender_login, permission, trigger.target.full_name
        )
        return "unauthorized"
    if trigger.target.is_pull_request and trigger.command in (Command.RUN, Command.RETRY):
        head_repo = trigger.head_repo_full_name
        if head_repo is None:
            pull = await gh.get_pull(trigger.target.full_name, trigger.target.number)
            head_repo = pull.head_repo_full_name
        if head_repo is None or head_repo.lower() != trigger.target.full_name.lower():
            return "fork"
    # What `/honk retry` looks for: only a request that was authorized may be repeated.
    await rt.store.aaudit(
        trigger.run_id, "authorized", {"by": trigger.sender_login, "permission": permission}
    )
    return None


@DBOS.step(name="honk.refuse")
async def refuse(rt: Runtime, trigger_json: dict[str, Any], reason: str) -> None:
    trigger = Trigger.from_json(trigger_json)
    await rt.store.aupdate(trigger.run_id, status="refused", outcome=reason)
    if trigger.source not in REPLYING_SOURCES:
        return
    if reason == "fork":  # asked by a writer: answered like any other command
        await _reply(rt, trigger, replies.fork_reply(trigger.command_line))
        return
    # Anyone may comment: one reply per issue and day, from the delivery alone.
    body = replies.unauthorized_reply(trigger.command_line, trigger.sender_login)
    if not await outsiders.reply_once(rt, trigger, body, reply_marker(trigger)):
        log.info(
            "%s: an outsider was answered on %s today already", trigger.run_id, trigger.target.key
        )


@DBOS.step(name="honk.check_budget")
async def check_budget(rt: Runtime, trigger_json: dict[str, Any]) -> str | None:
    """The operator's budgets before a run is announced: None, or the sentence that refused it.
    Asked again when the run starts (steps.configure), since it may wait in the queue."""
    trigger = Trigger.from_json(trigger_json)
    limits = spend.limits_of(rt.settings)
    if not limits.any:
        return None
    applying = budgets.budgets_for(limits, spend.subjects_of(trigger), datetime.now(UTC))
    decision = budgets.decide(None, await spend.SpendLedger(rt.store.engine).aspent(applying))
    if not decision.refused:
        return None
    sentence = budgets.refusal(decision)
    await rt.store.aupdate(trigger.run_id, status="refused", outcome="budget", summary=sentence)
    await rt.store.aaudit(trigger.run_id, "refused", {"reason": "budget", "sentence": sentence})
    # a writer asked, by label or comment: they hear why
    await _reply(rt, trigger, replies.notice_reply(trigger.command_line, sentence))
    return sentence


@DBOS.step(name="honk.help")
async def reply_help(rt: Runtime, trigger_json: dict[str, Any]) -> None:
    trigger = Trigger.from_json(trigger_json)
    settings = rt.settings
    await rt.store.aupdate(trigger.run_id, status="succeeded", outcome="help")
    await _reply(
        rt,
        trigger,
        replies.help_reply(settings.HONK_COMMAND, trigger.command_line, settings.HONK_LABEL),
    )


@DBOS.step(name="honk.status")
async def reply_status(rt: Runtime, trigger_json: dict[str, Any]) -> None:
    trigger = Trigger.from_json(trigger_json)
    store = rt.store
    rows = [r for r in await store.afor_target(trigger.target.key, limit=20) if r.command == "run"]
    summaries = [
        replies.RunSummary(
            run_id=r.run_id,
            status=_summary_status(r.status),
            created_at=r.created_at,
            sender=r.sender,
            summary=r.summary or "",
            url=r.pr_url,
        )
        for r in rows
    ]
    await store.aupdate(trigger.run_id, status="succeeded", outcome="status")
    body = replies.status_reply(trigger.command_line, summaries)
    lines = await _budget_lines(rt, trigger)
    await _reply(rt, trigger, "\n\n".join([body, *lines]) if lines else body)


async def _budget_lines(rt: Runtime, trigger: Trigger) -> list[str]:
    """What is left of each budget the operator set, and when it resets."""
    limits = spend.limits_of(rt.settings)
    if not limits.any:
        return []
    applying = budgets.budgets_for(limits, spend.subjects_of(trigger), datetime.now(UTC))
    spent = await spend.SpendLedger(rt.store.engine).aspent(applying)
    return ["\n".join(f"- {inline(budgets.status_line(b, used))}" for b, used in spent)]


def _summary_status(status: str) -> Any:
    return {"waiting": "queued", "refused": "failed"}.get(status, status)


@DBOS.step(name="honk.stop")
async def stop_target(rt: Runtime, trigger_json: dict[str, Any]) -> int:
    """Cancel the target's running and queued runs, and say who stopped them."""
    trigger = Trigger.from_json(trigger_json)
    active = [
        r
        for r in await rt.store.aactive_for_target(trigger.target.key)
        if r.run_id != trigger.run_id and r.command == "run"
    ]
    gh = await rt.github.installation(trigger.installation_id)
    for row in active:
        await DBOS.cancel_workflow_async(work_workflow_id(row.run_id))
        stopped = Trigger.from_json(row.trigger_json)
        view = start_view(stopped)
        view = dataclasses.replace(
            view,
            outcome=Outcome.CANCELLED,
            stopped_by=trigger.sender_login,
            duration_s=time.time() - row.created_at.timestamp(),
            cost_usd=row.cost_usd,
        )
        await rt.store.aupdate(row.run_id, status="cancelled", outcome="cancelled")
        # Its budget reservation becomes what it recorded spending, turn by turn.
        await spend.SpendLedger(rt.store.engine).asettle(row.run_id, None)
        await rt.store.aaudit(row.run_id, "stopped", {"by": trigger.sender_login})
        if row.comment_id is not None:
            await gh.update_comment(
                trigger.target.full_name,
                row.comment_id,
                tracking_comment(view, known_secrets=rt.known_secrets),
            )
        if row.head_sha:
            await checks.complete_cancelled(rt, gh, stopped, row.head_sha, view)
    await rt.store.aupdate(trigger.run_id, status="succeeded", outcome="stop")
    await _reply(
        rt, trigger, replies.stopped_reply(trigger.command_line, trigger.sender_login, len(active))
    )
    return len(active)


@DBOS.step(name="honk.resolve_retry")
async def resolve_retry(rt: Runtime, trigger_json: dict[str, Any]) -> dict[str, Any] | None:
    """A retry repeats an earlier run's request, as a new run of its own."""
    trigger = Trigger.from_json(trigger_json)
    store = rt.store

    async def replayable(row: RunRow | None) -> bool:
        """Only a request recorded as authorized may be repeated: never a refused one, nor one
        whose permission check never finished."""
        if row is None or row.command != "run" or row.status == "refused":
            return False
        trail = await asyncio.to_thread(store.audit_trail, row.run_id)
        return any(kind == "authorized" for kind, _ in trail)

    earlier = await store.aget(trigger.retry_of) if trigger.retry_of else None
    if not await replayable(earlier):
        earlier = None
        for row in await store.afor_target(trigger.target.key, limit=20):
            if await replayable(row):
                earlier = row
                break
    if earlier is None:
        await store.aupdate(trigger.run_id, status="succeeded", outcome="nothing to retry")
        await _reply(
            rt,
            trigger,
            replies.help_reply(rt.settings.HONK_COMMAND, trigger.command_line),
        )
        return None
    original = Trigger.from_json(earlier.trigger_json)
    retried = dataclasses.replace(
        original,
        command=Command.RUN,
        delivery_id=trigger.delivery_id,
        comment_id=trigger.comment_id,
        sender_login=trigger.sender_login,
        sender_id=trigger.sender_id,
        command_line=trigger.command_line or original.command_line,
        source=trigger.source if trigger.source != "check_run" else original.source,
        retry_of=earlier.run_id,
        run_key=trigger.run_key,  # the retry's own run, under the id it was recorded with
    )
    data = retried.to_json()
    await store.aupdate(trigger.run_id, command="run", trigger_json=json.dumps(data))
    return data


@DBOS.step(name="honk.announce")
async def announce(rt: Runtime, trigger_json: dict[str, Any]) -> int:
    """The one tracking comment, found by its hidden marker before it is created."""
    trigger = Trigger.from_json(trigger_json)
    ahead = [
        r
        for r in await rt.store.aactive_for_target(trigger.target.key)
        if r.run_id != trigger.run_id
    ]
    waiting_for = ahead[-1].run_id if ahead else None
    view = dataclasses.replace(start_view(trigger), waiting_for=waiting_for)
    gh = await rt.github.installation(trigger.installation_id)
    comment = await gh.upsert_comment(
        trigger.target.full_name,
        trigger.target.number,
        run_marker(view.run_id),
        tracking_comment(view, known_secrets=rt.known_secrets),
    )
    if await rt.store.ais_cancelled(trigger.run_id):
        return comment.id  # stopped while acknowledging; is_stopped(rt) keeps it from working
    await rt.store.aupdate(
        trigger.run_id, status="waiting" if waiting_for else "queued", comment_id=comment.id
    )
    return comment.id


@DBOS.step(name="honk.is_stopped")
async def is_stopped(rt: Runtime, trigger_json: dict[str, Any]) -> bool:
    """`/honk stop` may land before this run's work was queued: then it must not start."""
    return await rt.store.ais_cancelled(Trigger.from_json(trigger_json).run_id)


@DBOS.step(name="honk.intake_failed")
async def intake_failed(rt: Runtime, trigger_json: dict[str, Any], sentence: str) -> None:
    """Mark the run failed first (so nothing waits on it), then tell the person, best effort:
    only someone found to have write access, since anyone may comment `/honk`."""
    trigger = Trigger.from_json(trigger_json)
    await rt.store.aupdate(trigger.run_id, status="failed", outcome="failed", summary=sentence)
    trail = await asyncio.to_thread(rt.store.audit_trail, trigger.run_id)
    if trigger.source in REPLYING_SOURCES and any(kind == "authorized" for kind, _ in trail):
        try:
            body = replies.could_not_start_reply(trigger.command_line, sentence)
            await _reply(rt, trigger, body)
        except Exception as exc:
            log.warning("could not reply to %s: %s", trigger.run_id, exc)
