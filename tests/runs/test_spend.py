"""The spend ledger on real SQLite and PostgreSQL databases: reservations, settlements, windows,
and runs that start at the same moment in different threads (as runs on other targets or
processes do), which each database serialises with its own lock."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from honk_app.runs import budgets
from honk_app.runs.budgets import Limits
from honk_app.runs.spend import SpendLedger
from honk_app.runs.store import RunStore, make_engine
from tests.postgres import fresh_database

NOW = datetime(2025, 5, 20, 9, 30, tzinfo=UTC)
WHO = budgets.subjects("octo-org/hello-world", 700100200, "mona", 5550001, 31337)
OTHER_PERSON = budgets.subjects("octo-org/hello-world", 700100200, "hubot", 5550002, 31337)
OTHER_REPO = budgets.subjects("octo-org/website", 700100201, "mona", 5550001, 31337)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SpendLedger]:
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'honk.sqlite'}"
        else:
            url = stack.enter_context(fresh_database())
        engine = make_engine(url)
        stack.callback(engine.dispose)
        RunStore(engine).migrate()
        yield SpendLedger(engine)


def left(ledger: SpendLedger, limits: Limits, who: budgets.Subjects, now: datetime) -> list[float]:
    spent = ledger.spent(budgets.budgets_for(limits, who, now))
    return [round(budgets.remaining(b, used), 6) for b, used in spent]


def test_a_reservation_counts_until_the_run_settles_to_its_cost(ledger: SpendLedger) -> None:
    limits = Limits(repository_day_usd=10.0)
    assert ledger.reserve("run-1", WHO, limits, 2.0, NOW).cap_usd == 2.0
    assert left(ledger, limits, WHO, NOW) == [8.0]

    ledger.settle("run-1", 0.25)
    assert left(ledger, limits, WHO, NOW) == [9.75]
    ledger.settle("run-1", 1.75)  # a replayed or later settlement changes nothing
    assert left(ledger, limits, WHO, NOW) == [9.75]


def test_a_stopped_or_failed_run_costs_what_it_recorded_turn_by_turn(ledger: SpendLedger) -> None:
    limits = Limits(repository_day_usd=10.0)
    ledger.reserve("run-1", WHO, limits, 2.0, NOW)
    assert ledger.begin_attempt("run-1") == 0.0
    ledger.record_attempt("run-1", 0.10)
    ledger.record_attempt("run-1", 0.35)  # cumulative: the latest replaces the earlier
    assert left(ledger, limits, WHO, NOW) == [8.0]  # still reserved while it runs

    ledger.settle("run-1", None)  # /honk stop, or a failure after the work
    assert left(ledger, limits, WHO, NOW) == [9.65]
    ledger.record_attempt("run-1", 1.5)  # a late turn of the stopped run changes nothing
    assert left(ledger, limits, WHO, NOW) == [9.65]


def test_a_crashed_attempt_is_carried_so_the_restart_spends_only_what_is_left(
    ledger: SpendLedger,
) -> None:
    limits = Limits(repository_day_usd=10.0)
    ledger.reserve("run-1", WHO, limits, 2.0, NOW)
    ledger.begin_attempt("run-1")
    ledger.record_attempt("run-1", 1.25)  # then the server dies mid-run

    assert ledger.begin_attempt("run-1") == 1.25  # the work step starts again
    ledger.record_attempt("run-1", 0.5)
    ledger.settle("run-1", 0.5)  # the last attempt's own cost, as its work result says
    assert left(ledger, limits, WHO, NOW) == [8.25]  # 1.25 + 0.5 spent in all


def test_a_replayed_reservation_is_the_same_reservation(ledger: SpendLedger) -> None:
    limits = Limits(repository_day_usd=3.0)
    first = ledger.reserve("run-1", WHO, limits, 2.0, NOW)
    again = ledger.reserve("run-1", WHO, limits, 2.0, NOW)
    assert again == first
    assert left(ledger, limits, WHO, NOW) == [1.0]


def test_the_cap_is_lowered_to_what_is_left_and_the_note_kept(ledger: SpendLedger) -> None:
    limits = Limits(person_day_usd=3.0)
    ledger.reserve("run-1", WHO, limits, 2.0, NOW)
    lowered = ledger.reserve("run-2", WHO, limits, 2.0, NOW)
    assert lowered.cap_usd == pytest.approx(1.0)
    assert lowered.note is not None and "lowered from $2.00 to $1.00" in lowered.note
    assert ledger.note("run-2") == lowered.note
    assert ledger.note("run-1") is None
    refused = ledger.reserve("run-3", WHO, limits, 2.0, NOW)
    assert refused.refusal is not None and refused.cap_usd == 0.0
    assert ledger.note("run-3") is None  # nothing was reserved for it


@pytest.mark.parametrize(
    ("limits", "who", "later", "left_after"),
    [
        (Limits(repository_day_usd=5.0), OTHER_PERSON, timedelta(0), [3.0]),  # same repository
        (Limits(repository_day_usd=5.0), OTHER_REPO, timedelta(0), [5.0]),
        (Limits(person_day_usd=5.0), OTHER_REPO, timedelta(0), [3.0]),  # same person
        (Limits(person_day_usd=5.0), OTHER_PERSON, timedelta(0), [5.0]),
        (Limits(repository_day_usd=5.0), WHO, timedelta(hours=15), [5.0]),  # the next UTC day
        (Limits(installation_month_usd=5.0), OTHER_REPO, timedelta(days=5), [3.0]),
        (Limits(installation_month_usd=5.0), WHO, timedelta(days=12), [5.0]),  # next month
    ],
    ids=[
        "repo-shared",
        "repo-separate",
        "person-shared",
        "person-separate",
        "new-day",
        "month-shared",
        "new-month",
    ],
)
def test_each_budget_counts_its_subject_in_its_window(
    ledger: SpendLedger,
    limits: Limits,
    who: budgets.Subjects,
    later: timedelta,
    left_after: list[float],
) -> None:
    ledger.reserve("run-1", WHO, limits, 2.0, NOW)
    assert left(ledger, limits, who, NOW + later) == left_after


def test_runs_starting_at_once_never_reserve_more_than_the_budget(
    ledger: SpendLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = Limits(repository_day_usd=10.0, installation_month_usd=50.0)
    read = SpendLedger._spent

    def slow_read(conn: Connection, budget: budgets.Budget) -> float:
        """Widens the gap between reading what is left and reserving, where a race would be."""
        found = read(conn, budget)
        time.sleep(0.005)
        return found

    monkeypatch.setattr(SpendLedger, "_spent", staticmethod(slow_read))

    def start(n: int) -> float:
        return ledger.reserve(f"run-{n}", WHO, limits, 2.0, NOW).cap_usd

    with ThreadPoolExecutor(max_workers=12) as pool:
        caps = list(pool.map(start, range(24)))

    assert sorted(caps, reverse=True)[:6] == [2.0] * 5 + [0.0]
    assert sum(caps) == pytest.approx(10.0)
    assert left(ledger, limits, WHO, NOW) == [0.0, 40.0]
