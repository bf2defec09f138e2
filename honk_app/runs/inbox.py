"""Group commit of accepted triggers, handed to DBOS in the background (embedded SQLite mode).

SQLite lets one writer at a time into a file. Under load, DBOS's own checkpoints (every step of
every intake and run) are many writers, and a webhook handler that enqueued straight into DBOS
waited in SQLite's busy handler for its turn: trigger p99 over a second in
bench/webhook_ingest.py. The inbox is a SQLite file of its own with a single writer. Every
trigger accepted since the last commit goes into the next one, one transaction for the batch,
and each 202 goes back once its row is committed (WAL, `synchronous=NORMAL`: the same durability
as DBOS's own commits here).

The writer is the event loop itself. Such a commit appends to the WAL without waiting for the
disk (0.2 ms for 16 rows here); handed to a thread instead, it waited for Python's GIL at each
SQLite step while the loop was busy, and trigger p99 was 20% worse. What could stall it is
SQLite's automatic checkpoint, which runs inside a commit every thousand pages (p99 of a 16-row
commit: 26 ms with it, 0.4 ms without): it is off, and a second connection checkpoints in a
thread of its own while commits go on (a checkpoint in WAL mode does not block the writer).

A forwarder hands the rows to DBOS in arrival order under their deterministic workflow ids and
deletes them afterwards, so a row handed twice (a crash between the two) is still one run, and
rows left by a crash are handed at the next start. Postgres has no file-wide write lock, so in
scale-out mode handlers enqueue into DBOS directly and there is no inbox.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from honk_app import json_codec
from honk_app.models import Trigger
from honk_app.priority import yield_to_deliveries

log = logging.getLogger("honk.inbox")

HandOff = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Enqueue one trigger (its run id and JSON) into DBOS; must be idempotent per run id."""

T = TypeVar("T")

HAND_OFF_BATCH = 64
CHECKPOINT_INTERVAL_S = 1.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS honk_inbox (
    seq INTEGER PRIMARY KEY,  -- the rowid: new rows always sort after the ones present
    run_id TEXT NOT NULL UNIQUE,
    trigger_json TEXT NOT NULL,
    received_at REAL NOT NULL
)
"""


class Inbox:
    """Accepted triggers: committed in batches on the event loop, then handed to DBOS in order."""

    def __init__(self, path: Path, hand_off: HandOff, *, retry_delay_s: float = 1.0) -> None:
        self.path = path
        self._hand_off = hand_off
        self._retry_delay_s = retry_delay_s
        # The event loop owns the writing connection: one writer, so no waiting on SQLite's lock.
        self._conn: sqlite3.Connection | None = None
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="honk-inbox-ckpt")
        self._ckpt_conn: sqlite3.Connection | None = None
        self._pending: list[tuple[str, str, asyncio.Future[None]]] = []
        self._wake_writer = asyncio.Event()
        self._wake_forwarder = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.commits = 0  # batch transactions so far: fewer than triggers under load
        self.checkpoints = 0

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the file, then hand over anything a previous process accepted and left."""
        self._open()
        self._ckpt_conn = await self._on_checkpointer(_connect, self.path)
        self._tasks = [
            asyncio.create_task(self._write_forever(), name="honk-inbox-writer"),
            asyncio.create_task(self._forward_forever(), name="honk-inbox-forwarder"),
            asyncio.create_task(self._checkpoint_forever(), name="honk-inbox-checkpoint"),
        ]
        self._wake_forwarder.set()

    async def stop(self) -> None:
        """Stop the tasks; rows not yet handed to DBOS stay in the file for the next start."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for _, _, future in self._pending:
            if not future.done():
                future.set_exception(RuntimeError("Honk is shutting down"))
        self._pending = []
        self._close()
        if self._ckpt_conn is not None:
            await self._on_checkpointer(self._ckpt_conn.close)
            self._ckpt_conn = None
        self._checkpointer.shutdown(wait=True)

    # ---- the webhook path ---------------------------------------------------------------------
    async def put(self, trigger: Trigger) -> str:
        """Return once the trigger is committed to disk (joining the next batch commit)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((trigger.run_id, json_codec.dumps(trigger.to_json()).decode(), future))
        self._wake_writer.set()
        await future
        return trigger.run_id

    def backlog(self) -> int:
        """Rows accepted and not yet handed to DBOS (for health reports and tests)."""
        return self._count()

    # ---- tasks --------------------------------------------------------------------------------
    async def _write_forever(self) -> None:
        while True:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                self._insert([(run_id, body) for run_id, body, _ in batch])
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
            rows = self._oldest(failed, HAND_OFF_BATCH)
            if not rows:
                return bool(failed)
            handed = []
            for seq, run_id, body in rows:
                # Each run this starts costs far more than an acknowledgement: while deliveries
                # are arriving, hand over one per pause of the webhook path, not a batch.
                await yield_to_deliveries()
                try:
                    await self._hand_off(run_id, json_codec.loads(body))
                except Exception:
                    log.exception("could not hand %s to the run queue; will retry", run_id)
                    failed.add(seq)
                else:
                    handed.append(seq)
            if handed:
                self._delete(handed)

    async def _checkpoint_forever(self) -> None:
        """Copy the WAL into the database now and then, off the writer's thread."""
        done = self.commits
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            if self.commits == done:
                continue
            done = self.commits
            try:
                await self._on_checkpointer(self._checkpoint)
                self.checkpoints += 1
            except sqlite3.Error:
                log.exception("could not checkpoint the inbox")

    def _checkpoint(self) -> None:
        if self._ckpt_conn is not None:
            self._ckpt_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def _on_checkpointer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._checkpointer, fn, *args)

    # ---- the writing connection, used on the event loop ---------------------------------------
    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(self.path)
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


def _connect(path: Path) -> sqlite3.Connection:
    """WAL, commits without fsync, and no checkpoint inside a commit (see the module's text).

    Nothing else writes to the file, so a lock held for long means a second Honk on the same
    data directory: fail within a second (a 500 GitHub can redeliver) rather than stall."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=1.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    return conn


class _transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")
