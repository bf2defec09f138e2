"""DBOS Transact setup: one durable queue for intake and one partitioned by target for runs.

- `honk-intake`: acknowledge, authorize and answer commands. Not partitioned, so a reply never
  waits behind a busy target.
- `honk-runs`: the work itself, partitioned by `owner/repo#number` with one active run per
  partition, and `HONK_MAX_RUNS` per process.

Each process has a stable executor id and a pinned application version, so a restarted process
recovers exactly its own pending workflows.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any, Literal

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, SetEnqueueOptions, SetWorkflowID
from sqlalchemy.engine import Engine

from honk_app import __version__
from honk_app.models import Trigger
from honk_app.runs.poll_gate import POLL_GATE
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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL, and commits that do not wait for the disk: the webhook path's enqueue is a commit.

    A crash of the process loses nothing; a power cut could lose the last deliveries answered
    202, which GitHub lets a person redeliver."""
    if isinstance(dbapi_conn, sqlite3.Connection):
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def init_dbos(settings: Settings, role: Role) -> None:
    """Create the DBOS instance; workflows are registered by importing honk_app.runs.workflow."""
    if not settings.is_postgres and not sa.event.contains(Engine, "connect", _sqlite_pragmas):
        sa.event.listen(Engine, "connect", _sqlite_pragmas)  # DBOS's engines included
    import honk_app.runs.work
    import honk_app.runs.workflow  # noqa: F401  (registers the workflows)

    DBOS(config=dbos_config(settings, role))
    if role == "web":
        DBOS.listen_queues([])  # accept and enqueue only; workers dequeue


def poll_intervals(settings: Settings) -> dict[str, float]:
    """Seconds between DBOS's polls of each queue (while it may hold work: runs/poll_gate.py)."""
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


def gate_polls(settings: Settings) -> None:
    """Embedded mode only: this process is the only one that queues work, so DBOS polls only
    when it has been told work may be there."""
    for name, interval in poll_intervals(settings).items():
        POLL_GATE.watch(name, interval)


async def enqueue_intake(trigger: Trigger) -> str:
    """Durably enqueue a trigger before the 202 goes back; a redelivery maps to the same id."""
    await hand_off_intake(trigger.run_id, trigger.to_json())
    return trigger.run_id


async def hand_off_intake(run_id: str, trigger_json: dict[str, Any]) -> None:
    """Enqueue the intake workflow under its deterministic id: doing it twice is one run.

    All of it runs in a thread: DBOS's enqueue is a few hundred microseconds of Python, which on
    the webhook server's loop would be taken from acknowledgements. Called by the inbox's
    forwarder, that thread is background work (metered during bursts: honk_app/priority.py);
    called by a Postgres-mode webhook handler, it is the delivery's own work and never waits."""
    await asyncio.to_thread(_enqueue_intake, run_id, trigger_json)


def _enqueue_intake(run_id: str, trigger_json: dict[str, Any]) -> None:
    from honk_app.runs.workflow import intake_workflow

    with SetWorkflowID(run_id):
        DBOS.enqueue_workflow(INTAKE_QUEUE, intake_workflow, trigger_json)
    POLL_GATE.signal(INTAKE_QUEUE)
    trigger = Trigger.from_json(trigger_json)
    log.info(
        "queued %s: %s %s on %s by %s (delivery %s)",
        run_id,
        trigger.source,
        trigger.command.value,
        trigger.target.key,
        trigger.sender_login,
        trigger.delivery_id,
    )


async def enqueue_run(trigger: Trigger, comment_id: int | None) -> str:
    from honk_app.runs.workflow import run_workflow

    work_id = work_workflow_id(trigger.run_id)
    with SetWorkflowID(work_id), SetEnqueueOptions(queue_partition_key=trigger.target.key):
        await DBOS.enqueue_workflow_async(RUNS_QUEUE, run_workflow, trigger.to_json(), comment_id)
    POLL_GATE.signal(RUNS_QUEUE)
    return work_id


def work_workflow_id(run_id: str) -> str:
    return f"{run_id}-work"
