"""Group commit of accepted triggers, handed to DBOS in the background (embedded SQLite mode).

SQLite lets one writer at a time into a file. Under load, DBOS's own checkpoints (every step of
every intake and run) are many writers, and a webhook handler that enqueued straight into DBOS
waited in SQLite's busy handler for its turn: trigger p99 over a second in
bench/webhook_ingest.py. The inbox is a SQLite file of its own with one writer thread. Every
trigger accepted while the previous commit ran goes into the next one, a single transaction for
the batch, and each 202 goes back once its row is committed (WAL, `synchronous=NORMAL`: the same
durability as DBOS's own commits here).

A forwarder hands the rows to DBOS in arrival order under their deterministic workflow ids and
deletes them afterwards, so a row handed twice (a crash between the two) is still one run, and
rows left by a crash are handed at the next start. Postgres has no file-wide write lock, so in
scale-out mode handlers enqueue into DBOS directly and there is no inbox.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from honk_app.models import Trigger
from honk_app.priority import yield_to_deliveries

log = logging.getLogger("honk.inbox")

HandOff = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Enqueue one trigger (its run id and JSON) into DBOS; must be idempotent per run id."""

T = TypeVar("T")

HAND_OFF_BATCH = 64
SCHEMA = """
CREATE TABLE IF NOT EXISTS honk_inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    trigger_json TEXT NOT NULL,
    received_at REAL NOT NULL
)
"""


class Inbox:
    """Accepted triggers: committed in batches by one thread, then handed to DBOS in order."""

    def __init__(self, path: Path, hand_off: HandOff, *, retry_delay_s: float = 1.0) -> None:
        self.path = path
        self._hand_off = hand_off
        self._retry_delay_s = retry_delay_s
        # One thread owns the connection: no two writers, so no waiting on SQLite's lock.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="honk-inbox")
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[str, str, asyncio.Future[None]]] = []
        self._wake_writer = asyncio.Event()
        self._wake_forwarder = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.commits = 0  # batch transactions so far: fewer than triggers under load

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the file, then hand over anything a previous process accepted and left."""
        await self._call(self._open)
        self._tasks = [
            asyncio.create_task(self._write_forever(), name="honk-inbox-writer"),
            asyncio.create_task(self._forward_forever(), name="honk-inbox-forwarder"),
        ]
        self._wake_forwarder.set()

    async def stop(self) -> None:
        """Stop both tasks; rows not yet handed to DBOS stay in the file for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for _, _, future in self._pending:
            if not future.done():
                future.set_exception(RuntimeError("Honk is shutting down"))
        self._pending = []
        await self._call(self._close)
        self._thread.shutdown(wait=True)

    # ---- the webhook path ---------------------------------------------------------------------
    async def put(self, trigger: Trigger) -> str:
        """Return once the trigger is committed to disk (joining the next batch commit)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((trigger.run_id, json.dumps(trigger.to_json()), future))
        self._wake_writer.set()
        await future
        return trigger.run_id

    async def backlog(self) -> int:
        """Rows accepted and not yet handed to DBOS (for health reports and tests)."""
        return await self._call(self._count)

    # ---- tasks --------------------------------------------------------------------------------
    async def _write_forever(self) -> None:
        while True:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await self._call(self._insert, [(run_id, body) for run_id, body, _ in batch])
            except Exception as exc:
                log.exception("could not commit %d trigger(s) to the inbox", len(batch))
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.commits += 1
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)
            self._wake_forwarder.set()

    async def _forward_forever(self) -> None:
        while True:
            await self._wake_forwarder.wait()
            self._wake_forwarder.clear()
            try:
                stuck = await self._forward_all()
            except Exception:  # the inbox file itself failed; try again later
                log.exception("could not read the inbox")
                stuck = True
            if stuck:
                await asyncio.sleep(self._retry_delay_s)
                self._wake_forwarder.set()

    async def _forward_all(self) -> bool:
        """Hand every row over, oldest first; True if some must be tried again later."""
        failed: set[int] = set()
        while True:
            await yield_to_deliveries()  # the runs these start can wait; acknowledgements not
            rows = await self._call(self._oldest, failed, HAND_OFF_BATCH)
            if not rows:
                return bool(failed)
            handed = []
            for seq, run_id, body in rows:
                try:
                    await self._hand_off(run_id, json.loads(body))
                except Exception:
                    log.exception("could not hand %s to the run queue; will retry", run_id)
                    failed.add(seq)
                else:
                    handed.append(seq)
            if handed:
                await self._call(self._delete, handed)

    # ---- the inbox thread: all SQLite work, one connection ------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(SCHEMA)
        self._conn = conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the inbox is not open")
        return self._conn

    def _insert(self, rows: list[tuple[str, str]]) -> None:
        now = time.time()
        with _transaction(self._db()) as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO honk_inbox (run_id, trigger_json, received_at) "
                "VALUES (?, ?, ?)",
                [(run_id, body, now) for run_id, body in rows],
            )

    def _oldest(self, skip: set[int], limit: int) -> list[tuple[int, str, str]]:
        marks = ",".join("?" * len(skip))
        where = f"WHERE seq NOT IN ({marks}) " if skip else ""
        cursor = self._db().execute(
            f"SELECT seq, run_id, trigger_json FROM honk_inbox {where}ORDER BY seq LIMIT ?",  # noqa: S608
            [*skip, limit],
        )
        return [(int(seq), str(run_id), str(body)) for seq, run_id, body in cursor.fetchall()]

    def _delete(self, seqs: list[int]) -> None:
        with _transaction(self._db()) as conn:
            conn.executemany("DELETE FROM honk_inbox WHERE seq = ?", [(s,) for s in seqs])

    def _count(self) -> int:
        (count,) = self._db().execute("SELECT count(*) FROM honk_inbox").fetchone()
        return int(count)


class _transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
