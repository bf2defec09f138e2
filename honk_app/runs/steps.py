"""The durable steps of intake, publish and report. Each finds before it creates.

Steps take and return plain JSON (DBOS stores them). Small GitHub steps are retried by DBOS a few
times with backoff; the work step (runs/work.py) is not, because it is long and spends money.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

from dbos import DBOS

from honk_app.github.errors import GitHubError
from honk_app.github.installation import InstallationClient
from honk_app.models import Command, Trigger
from honk_app.repo_config import ConfigError, parse_config
from honk_app.report import replies
from honk_app.report.comment import (
    Outcome,
    Phase,
    PhaseState,
    RunView,
    run_marker,
    tracking_comment,
)
from honk_app.runs import checks, runtime
from honk_app.runs.outcome import WorkResult
from honk_app.runs.store import RunRow
from honk_app.runs.views import final_view, start_view
from honk_app.safety.sanitize import quote_for_reply
from honk_app.safety.secret_scan import redact

log = logging.getLogger("honk.steps")

WRITE_PERMISSIONS = frozenset({"admin", "maintain", "write"})
REPLYING_SOURCES = frozenset({"issue_comment", "review_comment", "review"})
# The GitHub adapter already retries server errors and rate limits; a 4xx will not heal itself.
GITHUB_STEP: dict[str, Any] = {}


def _t(trigger_json: dict[str, Any]) -> Trigger:
    return Trigger.from_json(trigger_json)


async def _client(trigger: Trigger) -> InstallationClient:
    return await runtime.current().github.installation(trigger.installation_id)


def reply_marker(trigger: Trigger) -> str:
    return f"<!-- honk:reply={trigger.run_id} -->"


def describe_error(exc: BaseException) -> str:
    """One readable sentence, secrets redacted: what the tracking comment shows."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    known = runtime.current().known_secrets if runtime._current is not None else []
    return redact(text if text.endswith(".") else text + ".", known)


async def _reply(trigger: Trigger, body: str) -> None:
    gh = await _client(trigger)
    await gh.reply(
        trigger.target.full_name, trigger.target.number, body, marker=reply_marker(trigger)
    )


# ---- intake --------------------------------------------------------------------------------


@DBOS.step(name="honk.record")
async def record(trigger_json: dict[str, Any]) -> None:
    trigger = _t(trigger_json)
    await runtime.current().store.arecord(
        trigger.run_id,
        trigger.target.key,
        trigger.command.value,
        trigger.sender_login,
        trigger_json,
    )


@DBOS.step(name="honk.react", **GITHUB_STEP)
async def react(trigger_json: dict[str, Any]) -> None:
    """👀 on what asked: the comment, or the issue for a label. GitHub dedupes reactions."""
    trigger = _t(trigger_json)
    gh = await _client(trigger)
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


@DBOS.step(name="honk.authorize", **GITHUB_STEP)
async def authorize(trigger_json: dict[str, Any]) -> str | None:
    """None when the sender may ask; else "unauthorized" or "fork". Never author_association."""
    trigger = _t(trigger_json)
    gh = await _client(trigger)
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
    return None


@DBOS.step(name="honk.refuse", **GITHUB_STEP)
async def refuse(trigger_json: dict[str, Any], reason: str) -> None:
    trigger = _t(trigger_json)
    await runtime.current().store.aupdate(trigger.run_id, status="refused", outcome=reason)
    if trigger.source not in REPLYING_SOURCES:
        return
    if reason == "fork":
        body = replies.fork_reply(trigger.command_line)
    else:
        body = replies.unauthorized_reply(trigger.command_line, trigger.sender_login)
    await _reply(trigger, body)


@DBOS.step(name="honk.help", **GITHUB_STEP)
async def reply_help(trigger_json: dict[str, Any]) -> None:
    trigger = _t(trigger_json)
    settings = runtime.current().settings
    await runtime.current().store.aupdate(trigger.run_id, status="succeeded", outcome="help")
    await _reply(
        trigger,
        replies.help_reply(settings.HONK_COMMAND, trigger.command_line, settings.HONK_LABEL),
    )


@DBOS.step(name="honk.status", **GITHUB_STEP)
async def reply_status(trigger_json: dict[str, Any]) -> None:
    trigger = _t(trigger_json)
    store = runtime.current().store
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
    await _reply(trigger, replies.status_reply(trigger.command_line, summaries))


def _summary_status(status: str) -> Any:
    return {"waiting": "queued", "refused": "failed"}.get(status, status)


@DBOS.step(name="honk.stop", **GITHUB_STEP)
async def stop_target(trigger_json: dict[str, Any]) -> int:
    """Cancel the target's running and queued runs, and say who stopped them."""
    from honk_app.runs.queue import work_workflow_id

    trigger = _t(trigger_json)
    rt = runtime.current()
    active = [
        r
        for r in await rt.store.aactive_for_target(trigger.target.key)
        if r.run_id != trigger.run_id and r.command == "run"
    ]
    gh = await _client(trigger)
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
        await rt.store.aaudit(row.run_id, "stopped", {"by": trigger.sender_login})
        if row.comment_id is not None:
            await gh.update_comment(
                trigger.target.full_name,
                row.comment_id,
                tracking_comment(view, known_secrets=rt.known_secrets),
            )
        if row.head_sha:
            await checks.complete_cancelled(gh, stopped, row.head_sha, view)
    await rt.store.aupdate(trigger.run_id, status="succeeded", outcome="stop")
    await _reply(
        trigger, replies.stopped_reply(trigger.command_line, trigger.sender_login, len(active))
    )
    return len(active)


@DBOS.step(name="honk.resolve_retry", **GITHUB_STEP)
async def resolve_retry(trigger_json: dict[str, Any]) -> dict[str, Any] | None:
    """A retry repeats an earlier run's request, as a new run of its own."""
    trigger = _t(trigger_json)
    store = runtime.current().store

    def replayable(row: RunRow | None) -> bool:
        """Only a request that passed `authorize` may be repeated, never a refused one."""
        return row is not None and row.command == "run" and row.status not in ("refused",)

    earlier = await store.aget(trigger.retry_of) if trigger.retry_of else None
    if not replayable(earlier):
        earlier = next(
            (r for r in await store.afor_target(trigger.target.key, limit=20) if replayable(r)),
            None,
        )
    if earlier is None:
        await store.aupdate(trigger.run_id, status="succeeded", outcome="nothing to retry")
        await _reply(
            trigger,
            replies.help_reply(runtime.current().settings.HONK_COMMAND, trigger.command_line),
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
    )
    data = retried.to_json()
    await store.aupdate(trigger.run_id, command="run", trigger_json=json.dumps(data))
    return data


@DBOS.step(name="honk.announce", **GITHUB_STEP)
async def announce(trigger_json: dict[str, Any]) -> int:
    """The one tracking comment, found by its hidden marker before it is created."""
    trigger = _t(trigger_json)
    rt = runtime.current()
    ahead = [
        r
        for r in await rt.store.aactive_for_target(trigger.target.key)
        if r.run_id != trigger.run_id
    ]
    waiting_for = ahead[-1].run_id if ahead else None
    view = dataclasses.replace(start_view(trigger), waiting_for=waiting_for)
    gh = await _client(trigger)
    comment = await gh.upsert_comment(
        trigger.target.full_name,
        trigger.target.number,
        view_marker(view),
        tracking_comment(view, known_secrets=rt.known_secrets),
    )
    if await rt.store.ais_cancelled(trigger.run_id):
        return comment.id  # stopped while acknowledging; is_stopped() keeps it from working
    await rt.store.aupdate(
        trigger.run_id, status="waiting" if waiting_for else "queued", comment_id=comment.id
    )
    return comment.id


@DBOS.step(name="honk.is_stopped")
async def is_stopped(trigger_json: dict[str, Any]) -> bool:
    """`/honk stop` may land before this run's work was queued: then it must not start."""
    return await runtime.current().store.ais_cancelled(_t(trigger_json).run_id)


def view_marker(view: RunView) -> str:
    return run_marker(view.run_id)


# ---- run -----------------------------------------------------------------------------------


@DBOS.step(name="honk.configure", **GITHUB_STEP)
async def configure(trigger_json: dict[str, Any], comment_id: int | None) -> dict[str, Any]:
    """`.github/honk.yml` from the default branch, else the owner's `.github`, else defaults."""
    trigger = _t(trigger_json)
    rt = runtime.current()
    if await rt.store.ais_cancelled(trigger.run_id):
        return {"error": "stopped before it started"}
    await rt.store.aupdate(trigger.run_id, status="running")
    gh = await _client(trigger)
    text, source = await gh.repo_config_text(
        trigger.target.full_name, trigger.target.owner, trigger.repository.default_branch
    )
    parsed = parse_config(text, source=source)
    if isinstance(parsed, ConfigError):
        view = dataclasses.replace(
            start_view(trigger), outcome=Outcome.CONFIG_ERROR, outcome_detail=parsed.message
        )
        view.phases[Phase.QUEUED] = PhaseState.DONE
        await _finish_comment(gh, trigger, comment_id, view)
        await rt.store.aupdate(
            trigger.run_id, status="failed", outcome="config_error", summary=parsed.message
        )
        await rt.store.aaudit(trigger.run_id, "config", {"source": source, "error": parsed.message})
        return {"error": parsed.message}
    config = parsed.model_dump(mode="json")
    await rt.store.aaudit(trigger.run_id, "config", {"source": source, "config": config})
    return {"config": config, "source": source}


async def _finish_comment(
    gh: InstallationClient, trigger: Trigger, comment_id: int | None, view: RunView
) -> None:
    body = tracking_comment(view, known_secrets=runtime.current().known_secrets)
    if comment_id is not None:
        await gh.update_comment(trigger.target.full_name, comment_id, body)
    else:
        await gh.upsert_comment(
            trigger.target.full_name, trigger.target.number, view_marker(view), body
        )


@DBOS.step(name="honk.work")
async def work(
    trigger_json: dict[str, Any], comment_id: int | None, config: dict[str, Any]
) -> dict[str, Any]:
    from honk_app.runs.work import do_work

    return await do_work(_t(trigger_json), comment_id, config)


@DBOS.step(name="honk.publish", **GITHUB_STEP)
async def publish(trigger_json: dict[str, Any], work_json: dict[str, Any]) -> dict[str, Any] | None:
    from honk_app.runs.publish import publish_pull

    return await publish_pull(_t(trigger_json), WorkResult.from_json(work_json))


@DBOS.step(name="honk.report", **GITHUB_STEP)
async def report(
    trigger_json: dict[str, Any],
    comment_id: int | None,
    work_json: dict[str, Any],
    pull: dict[str, Any] | None,
) -> None:
    trigger = _t(trigger_json)
    work = WorkResult.from_json(work_json)
    rt = runtime.current()
    gh = await _client(trigger)
    view = final_view(trigger, work, pull)
    if work.head_sha:
        await checks.upsert_final(gh, trigger, work.head_sha, view)
    row = await rt.store.aget(trigger.run_id)
    if row is not None and row.head_sha and row.head_sha != work.head_sha:
        await checks.upsert_final(gh, trigger, row.head_sha, view)  # the in-progress one
    await _finish_comment(gh, trigger, comment_id, view)
    await rt.store.aupdate(
        trigger.run_id,
        status="succeeded" if work.outcome != Outcome.FAILED else "failed",
        outcome=work.outcome,
        pr_url=(pull or {}).get("url"),
        cost_usd=work.agent.cost_usd,
        summary=view.outcome_detail or work.agent.summary[:300],
    )
    await rt.store.aaudit(trigger.run_id, "outcome", {"outcome": work.outcome, "pull": pull})


@DBOS.step(name="honk.intake_failed")
async def intake_failed(trigger_json: dict[str, Any], sentence: str) -> None:
    """Mark the run failed first (so nothing waits on it), then tell the person, best effort."""
    trigger = _t(trigger_json)
    await runtime.current().store.aupdate(
        trigger.run_id, status="failed", outcome="failed", summary=sentence
    )
    if trigger.source in REPLYING_SOURCES:
        try:
            quoted = quote_for_reply(trigger.command_line) + "\n\n" if trigger.command_line else ""
            await _reply(trigger, f"{quoted}Honk could not start: {sentence}")
        except Exception as exc:
            log.warning("could not reply to %s: %s", trigger.run_id, exc)


@DBOS.step(name="honk.fail", **GITHUB_STEP)
async def fail(trigger_json: dict[str, Any], comment_id: int | None, sentence: str) -> None:
    trigger = _t(trigger_json)
    rt = runtime.current()
    view = dataclasses.replace(
        start_view(trigger), outcome=Outcome.FAILED, outcome_detail=sentence, error_detail=sentence
    )
    gh = await _client(trigger)
    await _finish_comment(gh, trigger, comment_id, view)
    row = await rt.store.aget(trigger.run_id)
    if row is not None and row.head_sha:
        await checks.upsert_final(gh, trigger, row.head_sha, view)
    await rt.store.aupdate(trigger.run_id, status="failed", outcome="failed", summary=sentence)
    await rt.store.aaudit(trigger.run_id, "outcome", {"outcome": "failed", "error": sentence})
