"""DBOS Transact setup: one durable queue for intake and one partitioned by target for runs.

- `honk-intake`: acknowledge, authorize and answer commands. Not partitioned, so a reply never
  waits behind a busy target.
- `honk-runs`: the work itself, partitioned by `owner/repo#number` with one active run per
  partition, and `HONK_MAX_RUNS` per process.

Each process has a stable executor id and a pinned application version, so a restarted process
recovers exactly its own pending workflows.
"""

from __future__ import annotations

import logging
from typing import Literal

from dbos import DBOS, DBOSConfig, SetEnqueueOptions, SetWorkflowID

from honk_app import __version__
from honk_app.models import Trigger
from honk_app.settings import Settings

log = logging.getLogger("honk.queue")

INTAKE_QUEUE = "honk-intake"
RUNS_QUEUE = "honk-runs"
Role = Literal["serve", "web", "worker"]


def dbos_config(settings: Settings, role: Role) -> DBOSConfig:
    config: DBOSConfig = {
        "name": "honk",
        "system_database_url": settings.database_url,
        "executor_id": settings.executor_id(role),
        "application_version": f"honk-{__version__}",
        "log_level": "WARNING",
    }
    return config


def init_dbos(settings: Settings, role: Role) -> None:
    """Create the DBOS instance; workflows are registered by importing honk_app.runs.workflow."""
    import honk_app.runs.work
    import honk_app.runs.workflow  # noqa: F401  (registers the workflows)

    DBOS(config=dbos_config(settings, role))
    if role == "web":
        DBOS.listen_queues([])  # accept and enqueue only; workers dequeue


def poll_intervals(settings: Settings) -> dict[str, float]:
    """Seconds between DBOS's polls of each queue."""
    interval = settings.HONK_POLL_INTERVAL_S
    return {INTAKE_QUEUE: min(interval, 0.25), RUNS_QUEUE: interval}


async def register_queues(settings: Settings) -> None:
    intervals = poll_intervals(settings)
    await DBOS.register_queue_async(
        INTAKE_QUEUE, worker_concurrency=16, polling_interval_sec=intervals[INTAKE_QUEUE]
    )
    await DBOS.register_queue_async(
        RUNS_QUEUE,
        worker_concurrency=settings.HONK_MAX_RUNS,
        partition_concurrency=1,
        polling_interval_sec=intervals[RUNS_QUEUE],
    )


async def enqueue_intake(trigger: Trigger) -> str:
    """Durably enqueue a trigger before the 202 goes back, under an id derived from the
    delivery: a redelivery is the same workflow, so it is one run."""
    from honk_app.runs.workflow import intake_workflow

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
    from honk_app.runs.workflow import run_workflow

    work_id = work_workflow_id(trigger.run_id)
    with SetWorkflowID(work_id), SetEnqueueOptions(queue_partition_key=trigger.target.key):
        await DBOS.enqueue_workflow_async(RUNS_QUEUE, run_workflow, trigger.to_json(), comment_id)
    return work_id


def work_workflow_id(run_id: str) -> str:
    return f"{run_id}-work"
