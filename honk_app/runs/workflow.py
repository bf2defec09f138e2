"""The durable run: acknowledge → authorize → configure → work → publish → report.

Two workflows. `intake_workflow` (its id derived from the comment or labeling the signed body
names, so a redelivery is the same workflow) checks who asked, acknowledges, answers commands and
the operator's budgets; for work it enqueues
`run_workflow` on the queue partition of its target, so one run per issue or pull request is
active while other targets go on in parallel. Every step finds before it creates, so a step
repeated after a crash changes nothing twice. The enqueue functions sit beside the workflows
they enqueue.
"""

from __future__ import annotations

import logging
from typing import Any

from dbos import DBOS, SetEnqueueOptions, SetWorkflowID
from dbos import error as dbos_error

from honk_app.models import Command, Trigger, work_workflow_id
from honk_app.runs import intake, runtime, steps
from honk_app.runs.outcome import WorkResult
from honk_app.runs.runtime import Runtime

log = logging.getLogger("honk.workflow")

INTAKE_QUEUE = "honk-intake"  # not partitioned: a reply never waits behind a busy target
RUNS_QUEUE = "honk-runs"  # partitioned by target: one active run per issue or pull request
# Cancellation (`/honk stop`) must reach DBOS, not be reported as a failure.
CANCELLED = (dbos_error.DBOSWorkflowCancelledError, dbos_error.DBOSAwaitedWorkflowCancelledError)


async def enqueue_intake(trigger: Trigger) -> str:
    """Durably enqueue a trigger before the 202 goes back, under an id derived from what the
    signed body names (the comment, the labeling): a redelivery, or the same body re-sent under
    another delivery id, is the same workflow, so it is one run."""
    with SetWorkflowID(trigger.run_id):
        await DBOS.enqueue_workflow_async(INTAKE_QUEUE, intake_workflow, trigger.to_json())
    log.info(
        "queued %s: %s %s on %s by %s (delivery %s)",
        trigger.run_id,
        trigger.source,
        trigger.command.value,
        trigger.target.key,
        trigger.sender_login,
        trigger.delivery_id,
    )
    return trigger.run_id


async def enqueue_run(trigger: Trigger, comment_id: int | None) -> str:
    work_id = work_workflow_id(trigger.run_id)
    with SetWorkflowID(work_id), SetEnqueueOptions(queue_partition_key=trigger.target.key):
        await DBOS.enqueue_workflow_async(RUNS_QUEUE, run_workflow, trigger.to_json(), comment_id)
    return work_id


@DBOS.workflow(name="honk.intake")
async def intake_workflow(trigger_json: dict[str, Any]) -> str:
    rt = runtime.current()
    try:
        return await _intake(rt, trigger_json)
    except CANCELLED:
        raise
    except Exception as exc:
        log.exception("intake of %s failed", Trigger.from_json(trigger_json).run_id)
        await intake.intake_failed(rt, trigger_json, steps.describe_error(exc, rt.known_secrets))
        return "failed"


async def _intake(rt: Runtime, trigger_json: dict[str, Any]) -> str:
    trigger = Trigger.from_json(trigger_json)
    await intake.record(rt, trigger_json)
    refusal = await intake.authorize(rt, trigger_json)
    if refusal is not None:
        await intake.refuse(rt, trigger_json, refusal)
        return f"refused: {refusal}"
    if trigger.command in (Command.RUN, Command.RETRY):  # 👀 for writers only: outsiders cost quota
        await intake.react(rt, trigger_json)
    if trigger.command is Command.HELP or trigger.command is Command.UNKNOWN:
        await intake.reply_help(rt, trigger_json)
        return "help"
    if trigger.command is Command.STATUS:
        await intake.reply_status(rt, trigger_json)
        return "status"
    if trigger.command is Command.STOP:
        stopped = await intake.stop_target(rt, trigger_json)
        return f"stopped {stopped}"
    if trigger.command is Command.RETRY:
        retried = await intake.resolve_retry(rt, trigger_json)
        if retried is None:
            return "nothing to retry"
        trigger_json = retried
        trigger = Trigger.from_json(trigger_json)
    over_budget = await intake.check_budget(rt, trigger_json)
    if over_budget is not None:
        return "refused: budget"
    comment_id = await intake.announce(rt, trigger_json)
    if await intake.is_stopped(rt, trigger_json):
        return "stopped before it started"
    return await enqueue_run(trigger, comment_id)


@DBOS.workflow(name="honk.run")
async def run_workflow(trigger_json: dict[str, Any], comment_id: int | None) -> dict[str, Any]:
    rt = runtime.current()
    trigger = Trigger.from_json(trigger_json)
    try:
        config = await steps.configure(rt, trigger_json, comment_id)
        if "error" in config:
            return {"outcome": "config_error"}
        work = WorkResult.from_json(await steps.work(rt, trigger_json, comment_id, config))
        pull = await steps.publish(rt, trigger_json, work.to_json())
        await steps.report(rt, trigger_json, comment_id, work.to_json(), pull)
        return {"outcome": work.outcome, "pull": pull}
    except CANCELLED:
        raise
    except Exception as exc:
        log.exception("run %s failed", trigger.run_id)
        try:
            sentence = steps.describe_error(exc, rt.known_secrets)
            await steps.fail(rt, trigger_json, comment_id, sentence)
        except Exception:
            log.exception("could not report the failure of run %s", trigger.run_id)
        return {"outcome": "failed"}
