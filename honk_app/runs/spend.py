"""The spend ledger behind the operator's budgets: a reservation when a run starts, its cost when
it ends, in Honk's database so that every process and every restart sees the same money.

Reading what is left and reserving happen under one lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL:
a transaction-scoped advisory lock), so runs starting at once on other targets or in other
processes cannot all take the last dollar. A reservation counts in full until the run settles.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from honk_app.models import Trigger
from honk_app.runs import budgets
from honk_app.runs.budgets import Budget, Subjects
from honk_app.runs.store import spend_table
from honk_app.settings import Settings

LOCK_KEY = 0x686F6E6B  # "honk": the advisory lock PostgreSQL serialises reservations on

_SUBJECT = {
    "repository": spend_table.c.repository_key,
    "person": spend_table.c.person_key,
    "installation": spend_table.c.installation_key,
}


def limits_of(settings: Settings) -> budgets.Limits:
    return budgets.Limits(
        repository_day_usd=settings.HONK_BUDGET_REPO_DAY_USD,
        person_day_usd=settings.HONK_BUDGET_PERSON_DAY_USD,
        installation_month_usd=settings.HONK_BUDGET_INSTALLATION_MONTH_USD,
    )


def subjects_of(trigger: Trigger) -> Subjects:
    return budgets.subjects(
        trigger.target.full_name,
        trigger.repository.id,
        trigger.sender_login,
        trigger.sender_id,
        trigger.installation_id,
    )


@dataclass(frozen=True)
class Reserved:
    """What a run may spend, or the sentence that refuses it."""

    cap_usd: float
    note: str | None = None  # for the report, when a budget lowered the cap
    refusal: str | None = None


class SpendLedger:
    """Thin synchronous ledger over Honk's engine; async wrappers push the work to a thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before the first read
            else:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            yield conn
            conn.commit()

    @staticmethod
    def _spent(conn: Connection, budget: Budget) -> float:
        window = spend_table.c.month if budget.scope == "installation" else spend_table.c.day
        cost = sa.func.coalesce(spend_table.c.spent_usd, spend_table.c.reserved_usd)
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(cost), 0.0)).where(
                _SUBJECT[budget.scope] == budget.subject_key, window == budget.window.key
            )
        ).scalar_one()
        return float(total)

    def spent(self, applying: Sequence[Budget]) -> list[tuple[Budget, float]]:
        """What each budget has spent or reserved in its window (a read: no lock)."""
        with self.engine.connect() as conn:
            return [(b, self._spent(conn, b)) for b in applying]

    def reserve(
        self,
        run_id: str,
        who: Subjects,
        limits: budgets.Limits,
        config_cap_usd: float,
        now: datetime,
    ) -> Reserved:
        """Reserve the run's cost limit, lowered to what the budgets have left; once per run
        (a replay finds its reservation). Nothing is reserved for a refused run."""
        with self._locked() as conn:
            row = conn.execute(sa.select(spend_table).where(spend_table.c.run_id == run_id)).first()
            if row is not None:
                return Reserved(float(row.reserved_usd), note=row.note)
            applying = budgets.budgets_for(limits, who, now)
            decision = budgets.decide(config_cap_usd, [(b, self._spent(conn, b)) for b in applying])
            if decision.refused:
                return Reserved(0.0, refusal=budgets.refusal(decision))
            note = budgets.lowered_note(decision, config_cap_usd)
            stamp = time.time()
            conn.execute(
                spend_table.insert().values(
                    run_id=run_id,
                    repository_key=who.repository_key,
                    person_key=who.person_key,
                    installation_key=who.installation_key,
                    day=budgets.day_window(now).key,
                    month=budgets.month_window(now).key,
                    reserved_usd=decision.cap_usd,
                    spent_usd=None,
                    config_cap_usd=config_cap_usd,
                    note=note,
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
            return Reserved(decision.cap_usd, note=note)

    def begin_attempt(self, run_id: str) -> float:
        """The work step starts (again, after a crash): what earlier attempts spent is carried,
        and returned, so this attempt may spend only what the run has left."""
        with self.engine.begin() as conn:
            conn.execute(
                spend_table.update()
                .where(spend_table.c.run_id == run_id, spend_table.c.spent_usd.is_(None))
                .values(
                    carried_usd=spend_table.c.carried_usd + spend_table.c.attempt_usd,
                    attempt_usd=0.0,
                    updated_at=time.time(),
                )
            )
            carried = conn.execute(
                sa.select(spend_table.c.carried_usd).where(spend_table.c.run_id == run_id)
            ).scalar_one_or_none()
        return float(carried or 0.0)

    def record_attempt(self, run_id: str, attempt_usd: float) -> None:
        """This attempt's spend so far (cumulative), after each model turn."""
        with self.engine.begin() as conn:
            conn.execute(
                spend_table.update()
                .where(spend_table.c.run_id == run_id, spend_table.c.spent_usd.is_(None))
                .values(attempt_usd=max(0.0, attempt_usd), updated_at=time.time())
            )

    def settle(self, run_id: str, spent_usd: float | None) -> None:
        """The run's cost, once known: `spent_usd` of the last attempt plus what earlier attempts
        spent. None settles to what was recorded so far (a stopped or failed run: at most the
        request in flight when it ended goes uncounted). A settled run is not settled again."""
        carried = spend_table.c.carried_usd
        if spent_usd is None:
            cost: Any = carried + spend_table.c.attempt_usd
        else:
            cost = carried + max(0.0, spent_usd)
        with self.engine.begin() as conn:
            conn.execute(
                spend_table.update()
                .where(spend_table.c.run_id == run_id, spend_table.c.spent_usd.is_(None))
                .values(spent_usd=cost, updated_at=time.time())
            )

    def note(self, run_id: str) -> str | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(spend_table.c.note).where(spend_table.c.run_id == run_id)
            ).scalar_one_or_none()
        return str(found) if found else None

    # ---- async wrappers ---------------------------------------------------------------------
    async def aspent(self, applying: Sequence[Budget]) -> list[tuple[Budget, float]]:
        return await asyncio.to_thread(self.spent, applying)

    async def areserve(
        self,
        run_id: str,
        who: Subjects,
        limits: budgets.Limits,
        config_cap_usd: float,
        now: datetime,
    ) -> Reserved:
        return await asyncio.to_thread(self.reserve, run_id, who, limits, config_cap_usd, now)

    async def abegin_attempt(self, run_id: str) -> float:
        return await asyncio.to_thread(self.begin_attempt, run_id)

    async def arecord_attempt(self, run_id: str, attempt_usd: float) -> None:
        await asyncio.to_thread(self.record_attempt, run_id, attempt_usd)

    async def asettle(self, run_id: str, spent_usd: float | None) -> None:
        await asyncio.to_thread(self.settle, run_id, spent_usd)

    async def anote(self, run_id: str) -> str | None:
        return await asyncio.to_thread(self.note, run_id)
