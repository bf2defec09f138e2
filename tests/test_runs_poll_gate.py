"""DBOS's pollers of Honk's queues look when told work may be there, and rest otherwise."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from starlette.testclient import TestClient

from honk_app.runs.poll_gate import (
    HOT_S,
    POLL_GATE,
    REST_S,
    PollGate,
    poller_thread_name,
    same_poll,
    wait_before_poll,
)
from honk_app.runs.queue import INTAKE_QUEUE, RUNS_QUEUE
from honk_app.server import create_app
from honk_app.settings import Settings
from honk_app.webhooks import sign
from tests.e2e_repo import CALC, TEST
from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, WEBHOOK_SECRET, World, world
from tests.waiting import wait_for

HONK_YML = "test: python3 -m unittest -q\n"

# ---- pure ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "signalled", "hot_until", "pass_until", "last_look", "expected"),
    [
        # a signal not answered yet: look at once, however recent the last look was
        (100.0, True, 0.0, 0.0, 99.9, 0.0),
        # hot: a signal less than HOT_S ago (or startup)
        (100.0, False, 100.0 + HOT_S / 2, 0.0, 99.9, 0.0),
        # within the pass the last look gave (the polls that follow it)
        (100.0, False, 0.0, 100.1, 99.9, 0.0),
        # cold: rest until REST_S after the last look
        (100.0, False, 0.0, 99.5, 99.0, REST_S - 1.0),
        # cold, and rested long enough: look again though nothing was said
        (100.0, False, 0.0, 0.0, 100.0 - REST_S, 0.0),
        (100.0, False, 99.0, 0.0, 100.0 - 2 * REST_S, 0.0),
    ],
)
def test_wait_before_poll(
    now: float,
    signalled: bool,
    hot_until: float,
    pass_until: float,
    last_look: float,
    expected: float,
) -> None:
    wait = wait_before_poll(
        now, signalled=signalled, hot_until=hot_until, pass_until=pass_until, last_look=last_look
    )
    assert wait == pytest.approx(expected)


@pytest.mark.parametrize(
    ("since_last_end", "expected"),
    [
        (0.001, True),  # DBOS's next transaction of the same poll
        (0.09, True),
        (0.11, False),  # after DBOS's sleep between polls (0.2 s here): a new poll
        (5.0, False),
    ],
)
def test_only_the_first_transaction_of_a_poll_is_held(
    since_last_end: float, expected: bool
) -> None:
    assert same_poll(100.0, 100.0 - since_last_end, poll_interval_s=0.2) is expected


def test_the_name_is_the_one_dbos_gives_its_queue_threads() -> None:
    assert poller_thread_name("honk-runs") == "queue-worker-honk-runs"


# ---- the gate, with real threads ------------------------------------------------------------

QUEUE = "gate-test"


class Poller:
    """A thread named as DBOS names a queue's poller, polling `polls` times in a row; with
    `between`, it stops after its first poll until that is set."""

    def __init__(
        self,
        gate: PollGate,
        polls: int,
        queue: str = QUEUE,
        between: threading.Event | None = None,
    ) -> None:
        self.done = threading.Event()
        self.paused = threading.Event()
        self.polled = 0

        def run() -> None:
            name = threading.current_thread().name
            for n in range(polls):
                gate.before_poll(name)
                self.polled += 1
                gate.after_poll(name)
                if n == 0 and between is not None:
                    self.paused.set()
                    between.wait(30)
            self.done.set()

        self.thread = threading.Thread(target=run, name=poller_thread_name(queue), daemon=True)
        self.thread.start()


def cold_gate(rest_s: float = 3600.0) -> PollGate:
    """No hot windows: only a signal, or `rest_s`, lets a poll through after the first."""
    return PollGate(hot_s=0.0, rest_s=rest_s)


@pytest.fixture
def gate() -> Iterator[PollGate]:
    # A poll interval of 0: every transaction is a poll of its own. Tests wait on the gate's
    # state, never on time (a rest of an hour is never reached).
    g = cold_gate()
    g.watch(QUEUE, poll_interval_s=0.0)
    yield g
    g.open()


def test_the_first_poll_goes_at_once_then_the_poller_rests_until_a_signal(
    gate: PollGate,
) -> None:
    poller = Poller(gate, polls=3)
    wait_for(lambda: gate.resting(QUEUE), "the poller to rest")
    assert poller.polled == 1  # a restart may have recovered work: the first look is free
    gate.signal(QUEUE)
    wait_for(lambda: poller.polled == 2 and gate.resting(QUEUE), "one more poll, then rest")
    gate.signal(QUEUE)
    assert poller.done.wait(30)
    assert poller.polled == 3


def test_a_signal_given_between_two_polls_lets_the_next_one_through(gate: PollGate) -> None:
    between = threading.Event()
    poller = Poller(gate, polls=2, between=between)
    assert poller.paused.wait(30)  # its first poll is done; it is busy elsewhere
    gate.signal(QUEUE)
    gate.signal(QUEUE)  # two signals before a poll are one poll
    between.set()
    assert poller.done.wait(30)
    assert gate.waits == 0  # the second poll did not rest
    assert not gate.resting(QUEUE)


def test_a_rested_poller_looks_again_unasked() -> None:
    gate = cold_gate(rest_s=0.05)
    gate.watch(QUEUE, poll_interval_s=0.0)
    try:
        poller = Poller(gate, polls=4)
        assert poller.done.wait(30)  # nobody signalled: every poll after the first rested
        assert gate.waits >= 3
    finally:
        gate.open()


def test_open_releases_a_resting_poller_and_everything_after(gate: PollGate) -> None:
    poller = Poller(gate, polls=5)
    wait_for(lambda: gate.resting(QUEUE), "the poller to rest")
    gate.open()
    assert poller.done.wait(30)
    assert not gate.resting(QUEUE)


def test_other_threads_and_other_queues_never_wait(gate: PollGate) -> None:
    gate.before_poll(threading.current_thread().name)
    gate.before_poll(threading.current_thread().name)
    other = Poller(gate, polls=3, queue="not-watched")
    assert other.done.wait(30)
    assert gate.waits == 0
    gate.signal("not-watched")  # a queue nobody watches: nothing to do, no error


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'gate.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def run_as_poller(engine: Engine, transactions: int, committed: list[int]) -> threading.Thread:
    def poll() -> None:
        for n in range(transactions):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            committed.append(n)

    thread = threading.Thread(target=poll, name=poller_thread_name(QUEUE), daemon=True)
    thread.start()
    return thread


def test_real_transactions_of_a_new_poll_wait_at_their_start(engine: Engine) -> None:
    """Installed as SQLAlchemy's `begin` hook: a new poll's transaction waits, before it takes
    any lock, until a signal."""
    gate = cold_gate()
    gate.watch(QUEUE, poll_interval_s=0.0)
    committed: list[int] = []
    try:
        thread = run_as_poller(engine, 2, committed)
        wait_for(lambda: gate.resting(QUEUE), "the second transaction to wait")
        assert committed == [0]
        with engine.begin() as conn:  # the database is free meanwhile: no lock is held
            conn.execute(text("INSERT INTO t VALUES (9)"))
        gate.signal(QUEUE)
        thread.join(30)
        assert committed == [0, 1]
    finally:
        gate.open()


def test_a_poll_that_began_is_never_held_halfway(engine: Engine) -> None:
    """A poll's transactions follow each other at once (DBOS sleeps only between polls): with
    a cold gate and no signal, the ones after the first still go."""
    gate = cold_gate()
    gate.watch(QUEUE, poll_interval_s=3600.0)
    committed: list[int] = []
    try:
        thread = run_as_poller(engine, 3, committed)
        thread.join(30)
        assert committed == [0, 1, 2]
        assert gate.waits == 0
    finally:
        gate.open()


# ---- with Honk's own workflows, in-process ---------------------------------------------------


@contextmanager
def honk_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[World, TestClient, threading.Event, int]]:
    """Honk with one run at a time, pollers that would rest for an hour unless signalled, and a
    first run (on the issue number it yields) whose model waits until the test sets the event
    it yields."""
    monkeypatch.setattr(POLL_GATE, "hot_s", 0.0)
    monkeypatch.setattr(POLL_GATE, "rest_s", 3600.0)
    with world(tmp_path) as w:
        w.add_repo({"calc.py": CALC, "test_calc.py": TEST}, honk_yml=HONK_YML)
        release = threading.Event()
        working = threading.Event()

        def slow_first_turn(_request: dict[str, Any]) -> fa.Reply:
            working.set()
            release.wait(60)
            return fa.text("Looked around; nothing to change.")

        w.script = [slow_first_turn]
        fields = {k: v for k, v in w.env().items() if k in Settings.model_fields}
        settings = Settings(_env_file=None, HONK_MAX_RUNS=1, **fields)  # type: ignore[call-arg]
        app = create_app(settings, role="serve", env_path=tmp_path / ".env")
        try:
            with TestClient(app) as client:
                for name in (INTAKE_QUEUE, RUNS_QUEUE):
                    wait_for(lambda name=name: POLL_GATE.resting(name), f"{name} to rest")
                first = w.github.add_issue(REPO, title="first", user=SENDER)
                label(w, client, first)
                assert working.wait(60), "the first run never reached the model"
                yield w, client, release, first
        finally:
            release.set()
        # Stopping Honk let its pollers go: none is left resting for an hour.
        assert not [t.name for t in threading.enumerate() if t.name.startswith("queue-worker-")]


def test_runs_waiting_for_their_target_or_a_slot_start_when_the_run_ahead_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Honk signals every enqueue and every end: with one run at a time, a second trigger on
    the same issue (its partition) and one on another issue (the worker slot) both start."""
    with honk_in_process(tmp_path, monkeypatch) as (w, client, release, number):
        comment(w, client, number, "/honk and then this")
        other = w.github.add_issue(REPO, title="elsewhere", user=SENDER)
        label(w, client, other)
        wait_for(
            lambda: (
                statuses(w, number) == ["running", "waiting"] and statuses(w, other) == ["queued"]
            ),
            "both to wait behind the first run",
        )
        wait_for(lambda: POLL_GATE.resting(RUNS_QUEUE), "the runs poller to rest meanwhile")
        release.set()
        wait_for(
            lambda: (
                statuses(w, number) == ["succeeded"] * 2 and statuses(w, other) == ["succeeded"]
            ),
            "all three runs to finish",
            timeout=120,
        )


def test_a_run_waiting_for_the_slot_starts_when_stop_cancels_the_run_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with honk_in_process(tmp_path, monkeypatch) as (w, client, release, number):
        other = w.github.add_issue(REPO, title="elsewhere", user=SENDER)
        label(w, client, other)
        wait_for(lambda: statuses(w, other) == ["queued"], "the other run to wait for the slot")
        wait_for(lambda: POLL_GATE.resting(RUNS_QUEUE), "the runs poller to rest meanwhile")
        comment(w, client, number, "/honk stop")
        wait_for(lambda: "cancelled" in statuses(w, number), "the first run to be stopped")
        release.set()  # the fake model answers again (the stopped run no longer listens)
        wait_for(
            lambda: statuses(w, other) == ["succeeded"], "the other run to finish", timeout=120
        )


def statuses(w: World, number: int) -> list[str]:
    return [str(r["status"]) for r in w.store_rows(number)]


def label(w: World, client: TestClient, number: int) -> None:
    assert deliver(client, "issues", w.point(payloads.labeled("honk"), number)) == 202


def comment(w: World, client: TestClient, number: int, body: str) -> None:
    posted = w.github.add_comment(REPO, number, body=body, user=SENDER)
    payload = w.point(payloads.issue_comment(body, comment_id=posted.id), number)
    assert deliver(client, "issue_comment", payload) == 202


def deliver(client: TestClient, event: str, payload: dict[str, Any]) -> int:
    body = json.dumps(payload).encode()
    response = client.post(
        "/api/github/webhooks",
        content=body,
        headers={
            "content-type": "application/json",
            "x-github-event": event,
            "x-github-delivery": str(uuid.uuid4()),
            "x-hub-signature-256": sign(WEBHOOK_SECRET.encode(), body),
        },
    )
    return response.status_code
