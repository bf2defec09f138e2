"""Configure and launch DBOS Transact for Honk's workflows, and stop it.

Two durable queues: `honk-intake` (acknowledge, authorize, answer commands) and `honk-runs` (the
work, one active run per target, `HONK_MAX_RUNS` per process). Each process has a stable executor
id and a pinned application version, so a restarted process recovers exactly its own pending
workflows. Only DBOS's public configuration is used.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from dbos import DBOS, DBOSConfig

from honk_app import __version__
from honk_app.models import Role
from honk_app.runs.runtime import RedactingSerializer, Runtime, close_runtime, open_runtime
from honk_app.runs.workflow import INTAKE_QUEUE, RUNS_QUEUE
from honk_app.settings import Settings

INTAKE_CONCURRENCY = 16
SQLITE_BUSY_TIMEOUT_S = 30  # one SQLite file has one writer at a time: wait, do not fail


def dbos_config(settings: Settings, role: Role) -> DBOSConfig:
    config: DBOSConfig = {
        "name": "honk",
        "system_database_url": settings.database_url,
        "executor_id": settings.executor_id(role),
        "application_version": f"honk-{__version__}",
        "log_level": "WARNING",
    }
    if not settings.is_postgres:
        config["db_engine_kwargs"] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return config


async def start(settings: Settings, role: Role, env_file: Path) -> Runtime:
    """Open the runtime, then launch DBOS, which recovers this executor's pending workflows."""
    rt = await open_runtime(settings, role, env_file)
    config = dbos_config(settings, role)
    config["serializer"] = RedactingSerializer(lambda: rt.known_secrets)  # no secret at rest
    DBOS(config=config)
    if role == "web":
        DBOS.listen_queues([])  # accept and enqueue only; workers dequeue
    await asyncio.to_thread(DBOS.launch)
    interval = settings.HONK_POLL_INTERVAL_S
    await DBOS.register_queue_async(
        INTAKE_QUEUE, worker_concurrency=INTAKE_CONCURRENCY, polling_interval_sec=interval
    )
    await DBOS.register_queue_async(
        RUNS_QUEUE,
        worker_concurrency=settings.HONK_MAX_RUNS,
        partition_concurrency=1,
        polling_interval_sec=interval,
    )
    return rt


async def stop(rt: Runtime) -> None:
    await asyncio.to_thread(DBOS.destroy, workflow_completion_timeout_sec=0)
    await close_runtime(rt)
