"""Runs and their audit trail, in the same database as DBOS's own tables.

DBOS records what ran; this store records what a person asks about a run: its target, status,
tracking comment, pull request and spend (for `/honk status` and `/honk stop`), and an append-only
audit trail of everything the run did, redacted and size-capped before it is written.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from honk_app.safety.secret_scan import redact

AUDIT_FIELD_CAP = 4000
ACTIVE = ("queued", "waiting", "running")

metadata = sa.MetaData()

runs_table = sa.Table(
    "honk_runs",
    metadata,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("target_key", sa.String(400), nullable=False, index=True),
    sa.Column("command", sa.String(20), nullable=False),
    sa.Column("sender", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("trigger_json", sa.Text, nullable=False),
    sa.Column("comment_id", sa.BigInteger),
    sa.Column("head_sha", sa.String(64)),
    sa.Column("pr_url", sa.String(500)),
    sa.Column("outcome", sa.String(40)),
    sa.Column("summary", sa.Text),
    sa.Column("cost_usd", sa.Float, nullable=False, default=0.0),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

audit_table = sa.Table(
    "honk_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("record_json", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# What runs reserve and cost against the operator's budgets (runs/spend.py, runs/budgets.py):
# one row per run, written when it starts and settled when it ends.
spend_table = sa.Table(
    "honk_spend",
    metadata,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("repository_key", sa.String(200), nullable=False),
    sa.Column("person_key", sa.String(120), nullable=False),
    sa.Column("installation_key", sa.String(60), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),  # UTC, "2025-05-20"
    sa.Column("month", sa.String(7), nullable=False),  # UTC, "2025-05"
    sa.Column("reserved_usd", sa.Float, nullable=False),
    sa.Column("spent_usd", sa.Float),  # None until the run settles: the reservation counts
    # What earlier attempts of the work step spent (a crash re-runs it), and what this one has
    # spent so far, recorded after every model turn: a restart or a stop knows the money gone.
    sa.Column("carried_usd", sa.Float, nullable=False, server_default="0"),
    sa.Column("attempt_usd", sa.Float, nullable=False, server_default="0"),
    sa.Column("config_cap_usd", sa.Float, nullable=False),
    sa.Column("note", sa.Text),  # the sentence the report shows when a budget lowered the cap
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_honk_spend_repository_day", "repository_key", "day"),
    sa.Index("ix_honk_spend_person_day", "person_key", "day"),
    sa.Index("ix_honk_spend_installation_month", "installation_key", "month"),
)

# The one reply per issue per UTC day that people without write access get (runs/outsiders.py):
# inserting the row decides who replies, so a flood or a crash replay posts once.
outsider_replies_table = sa.Table(
    "honk_outsider_replies",
    metadata,
    sa.Column("target_key", sa.String(400), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("run_id", sa.String(200), nullable=False),
    sa.Column("comment_id", sa.BigInteger),
    sa.Column("created_at", sa.Float, nullable=False),
)


@dataclass(frozen=True)
class RunRow:
    run_id: str
    target_key: str
    command: str
    sender: str
    status: str
    trigger_json: dict[str, Any]
    comment_id: int | None
    head_sha: str | None
    pr_url: str | None
    outcome: str | None
    summary: str | None
    cost_usd: float
    created_at: datetime
    updated_at: datetime


def sqlalchemy_url(database_url: str) -> str:
    """DBOS takes `postgresql://`; SQLAlchemy needs the psycopg 3 driver named."""
    if database_url.startswith("postgres://"):
        database_url = "postgresql://" + database_url[len("postgres://") :]
    if database_url.startswith("postgresql://"):
        return "postgresql+psycopg://" + database_url[len("postgresql://") :]
    return database_url


def make_engine(database_url: str) -> Engine:
    url = sqlalchemy_url(database_url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the webhook path
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _cap(value: Any, known_secrets: list[str]) -> Any:
    """Redact and size-cap every string inside an audit record."""
    if isinstance(value, str):
        text = redact(value, known_secrets)
        if len(text) > AUDIT_FIELD_CAP:
            cut = len(text) - AUDIT_FIELD_CAP
            text = text[:AUDIT_FIELD_CAP] + f"\n[… {cut} characters cut]"
        return text
    if isinstance(value, dict):
        return {str(k): _cap(v, known_secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cap(v, known_secrets) for v in value]
    return value


class RunStore:
    """Thin synchronous store; async wrappers push the work to a thread, off the event loop."""

    def __init__(self, engine: Engine, known_secrets: list[str] | None = None) -> None:
        self.engine = engine
        self.known_secrets = known_secrets or []

    def migrate(self) -> None:
        metadata.create_all(self.engine)

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True

    # ---- runs ---------------------------------------------------------------------------
    def record(
        self, run_id: str, target_key: str, command: str, sender: str, trigger: dict[str, Any]
    ) -> None:
        """Insert a run once; a repeated step after a crash finds it and changes nothing."""
        now = time.time()
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(runs_table.c.run_id).where(runs_table.c.run_id == run_id)
            ).first()
            if exists is None:
                conn.execute(
                    runs_table.insert().values(
                        run_id=run_id,
                        target_key=target_key,
                        command=command,
                        sender=sender,
                        status="queued",
                        trigger_json=json.dumps(trigger),
                        cost_usd=0.0,
                        created_at=now,
                        updated_at=now,
                    )
                )

    def update(self, run_id: str, **fields: Any) -> None:
        fields = {
            k: redact(v, self.known_secrets) if isinstance(v, str) else v for k, v in fields.items()
        }
        fields["updated_at"] = time.time()
        with self.engine.begin() as conn:
            conn.execute(runs_table.update().where(runs_table.c.run_id == run_id).values(**fields))

    def get(self, run_id: str) -> RunRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs_table).where(runs_table.c.run_id == run_id)).first()
        return _row(row._mapping) if row is not None else None

    def for_target(self, target_key: str, limit: int = 10) -> list[RunRow]:
        """Newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs_table)
                .where(runs_table.c.target_key == target_key)
                .order_by(runs_table.c.created_at.desc())
                .limit(limit)
            ).all()
        return [_row(r._mapping) for r in rows]

    def active_for_target(self, target_key: str) -> list[RunRow]:
        return [r for r in self.for_target(target_key, limit=50) if r.status in ACTIVE]

    # ---- audit --------------------------------------------------------------------------
    def audit(self, run_id: str, kind: str, record: dict[str, Any]) -> None:
        payload = json.dumps(_cap(record, self.known_secrets), default=str)
        with self.engine.begin() as conn:
            conn.execute(
                audit_table.insert().values(
                    run_id=run_id, kind=kind, record_json=payload, created_at=time.time()
                )
            )

    def audit_trail(self, run_id: str) -> list[tuple[str, dict[str, Any]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_table.c.kind, audit_table.c.record_json)
                .where(audit_table.c.run_id == run_id)
                .order_by(audit_table.c.id)
            ).all()
        return [(r.kind, json.loads(r.record_json)) for r in rows]

    def is_cancelled(self, run_id: str) -> bool:
        """`/honk stop` marked this run; a step that has not begun its work must not begin it."""
        row = self.get(run_id)
        return row is not None and row.status == "cancelled"

    # ---- async wrappers: the work goes to a thread, off the event loop ----------------------
    async def aget(self, run_id: str) -> RunRow | None:
        return await asyncio.to_thread(self.get, run_id)

    async def afor_target(self, target_key: str, limit: int = 10) -> list[RunRow]:
        return await asyncio.to_thread(self.for_target, target_key, limit)

    async def aactive_for_target(self, target_key: str) -> list[RunRow]:
        return await asyncio.to_thread(self.active_for_target, target_key)

    async def ais_cancelled(self, run_id: str) -> bool:
        return await asyncio.to_thread(self.is_cancelled, run_id)

    async def arecord(self, *args: Any) -> None:
        await asyncio.to_thread(self.record, *args)

    async def aupdate(self, run_id: str, **fields: Any) -> None:
        await asyncio.to_thread(self.update, run_id, **fields)

    async def aaudit(self, run_id: str, kind: str, record: dict[str, Any]) -> None:
        await asyncio.to_thread(self.audit, run_id, kind, record)


def _row(m: Any) -> RunRow:
    return RunRow(
        run_id=m["run_id"],
        target_key=m["target_key"],
        command=m["command"],
        sender=m["sender"],
        status=m["status"],
        trigger_json=json.loads(m["trigger_json"]),
        comment_id=m["comment_id"],
        head_sha=m["head_sha"],
        pr_url=m["pr_url"],
        outcome=m["outcome"],
        summary=m["summary"],
        cost_usd=float(m["cost_usd"] or 0.0),
        created_at=datetime.fromtimestamp(m["created_at"], tz=UTC),
        updated_at=datetime.fromtimestamp(m["updated_at"], tz=UTC),
    )
