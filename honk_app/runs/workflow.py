"""The durable run: acknowledge → authorize → configure → work → publish → report.

Two workflows. `intake_workflow` (its id derived from the delivery, so a redelivery is the same
workflow) acknowledges, checks who asked and answers commands; for work it enqueues
`run_workflow` on the queue partition of its target, so one run per issue or pull request is
active while other targets go on in parallel. Every step finds before it creates, so a step
repeated after a crash changes nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from dbos import DBOS

from honk_app.models import Command, Trigger
from honk_app.runs import queue, steps
from honk_app.runs.outcome import WorkResult

log = logging.getLogger("honk.workflow")


@DBOS.workflow(name="honk.intake")
async def intake_workflow(trigger_json: dict[str, Any]) -> str:
    try:
        return await _intake(trigger_json)
    except Exception as exc:
        if _is_cancellation(exc):
            raise
        log.exception("intake of %s failed", Trigger.from_json(trigger_json).run_id)
        await steps.intake_failed(trigger_json, steps.describe_error(exc))
        return "failed"


async def _intake(trigger_json: dict[str, Any]) -> str:
    trigger = Trigger.from_json(trigger_json)
    await steps.record(trigger_json)
    if trigger.command in (Command.RUN, Command.RETRY):
        await steps.react(trigger_json)
    refusal = await steps.authorize(trigger_json)
    if refusal is not None:
        await steps.refuse(trigger_json, refusal)
        return f"refused: {refusal}"
    if trigger.command is Command.HELP or trigger.command is Command.UNKNOWN:
        await steps.reply_help(trigger_json)
        return "help"
    if trigger.command is Command.STATUS:
        await steps.reply_status(trigger_json)
        return "status"
    if trigger.command is Command.STOP:
        stopped = await steps.stop_target(trigger_json)
        return f"stopped {stopped}"
    if trigger.command is Command.RETRY:
        retried = await steps.resolve_retry(trigger_json)
        if retried is None:
            return "nothing to retry"
        trigger_json = retried
        trigger = Trigger.from_json(trigger_json)
    comment_id = await steps.announce(trigger_json)
    if await steps.is_stopped(trigger_json):
        return "stopped before it started"
    await queue.enqueue_run(trigger, comment_id)
    return queue.work_workflow_id(trigger.run_id)


@DBOS.workflow(name="honk.run")
async def run_workflow(trigger_json: dict[str, Any], comment_id: int | None) -> dict[str, Any]:
    trigger = Trigger.from_json(trigger_json)
    try:
        config = await steps.configure(trigger_json, comment_id)
        if "error" in config:
            return {"outcome": "config_error"}
        work = WorkResult.from_json(await steps.work(trigger_json, comment_id, config))
        pull = await steps.publish(trigger_json, work.to_json())
        await steps.report(trigger_json, comment_id, work.to_json(), pull)
        return {"outcome": work.outcome, "pull": pull}
    except Exception as exc:
        if _is_cancellation(exc):
            raise
        log.exception("run %s failed", trigger.run_id)
        try:
            await steps.fail(trigger_json, comment_id, steps.describe_error(exc))
        except Exception:
            log.exception("could not report the failure of run %s", trigger.run_id)
        return {"outcome": "failed"}


def _is_cancellation(exc: BaseException) -> bool:
    return type(exc).__name__ in {"DBOSWorkflowCancelledError", "DBOSAwaitedWorkflowCancelledError"}
