"""DBOS's pollers of Honk's queues look when told work may be there, and rest otherwise."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from honk_app.runs.poll_gate import (
    HOT_S,
    POLL_GATE,
    REST_S,
    PollGate,
    poller_thread_name,
    wait_before_poll,
)
from honk_app.runs.queue import INTAKE_QUEUE, RUNS_QUEUE
from honk_app.server import create_app
from honk_app.settings import Settings
from honk_app.webhooks import sign
from tests.e2e_repo import CALC, TEST
from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, WEBHOOK_SECRET, world
from tests.waiting import wait_for

HONK_YML = "test: python3 -m unittest -q\n"

# ---- pure ----------------------------------------------------------------------------------

PASS_S = 0.5


@pytest.mark.parametrize(
    ("now", "signalled", "last_signal", "passed_at", "expected"),
    [
        # a signal not answered yet: look at once, however long ago the last look was
        (100.0, True, 0.0, 99.9, 0.0),
        # hot: a signal less than HOT_S ago
        (100.0, False, 100.0 - HOT_S / 2, 0.0, 0.0),
        # within the pass a look began (the rest of that poll's transactions)
        (100.0, False, 0.0, 100.0 - PASS_S / 2, 0.0),
        # cold, and the pass is over: rest until REST_S after it began
        (100.0, False, 0.0, 99.0, REST_S - 1.0),
        # cold, and rested long enough: look again though nothing was said
        (100.0, False, 0.0, 100.0 - REST_S, 0.0),
        (100.0, False, 0.0, 100.0 - 2 * REST_S, 0.0),
    ],
)
def test_wait_before_poll(
    now: float, signalled: bool, last_signal: float, passed_at: float, expected: float
) -> None:
    wait = wait_before_poll(
        now, signalled=signalled, last_signal=last_signal, passed_at=passed_at, pass_s=PASS_S
    )
    assert wait == pytest.approx(expected)


def test_the_name_is_the_one_dbos_gives_its_queue_threads() -> None:
    assert poller_thread_name("honk-runs") == "queue-worker-honk-runs"


# ---- the gate, with real threads ------------------------------------------------------------

QUEUE = "gate-test"


class Poller:
    """A thread named as DBOS names a queue's poller, looking `looks` times in a row."""

    def __init__(self, gate: PollGate, looks: int, queue: str = QUEUE) -> None:
        self.done = threading.Event()
        self.looked = 0

        def run() -> None:
            for _ in range(looks):
                gate.before_poll(threading.current_thread().name)
                self.looked += 1
            self.done.set()

        self.thread = threading.Thread(target=run, name=poller_thread_name(queue), daemon=True)
        self.thread.start()


@pytest.fixture
def gate() -> Iterator[PollGate]:
    # No hot window and a pass of no time: only signals let a second look through (a rest of
    # an hour is never reached in a test). Tests wait on the gate's state, never on time.
    g = PollGate(hot_s=0.0, rest_s=3600.0)
    g.watch(QUEUE, poll_interval_s=0.0)
    yield g
    g.open()


def test_the_first_look_goes_at_once_then_the_poller_rests_until_a_signal(
    gate: PollGate,
) -> None:
    poller = Poller(gate, looks=3)
    wait_for(lambda: gate.resting(QUEUE), "the poller to rest")
    assert poller.looked == 1  # a restart may have recovered work: the first look is free
    gate.signal(QUEUE)
    wait_for(lambda: poller.looked == 2 and gate.resting(QUEUE), "one more look, then rest")
    gate.signal(QUEUE)
    assert poller.done.wait(30)
    assert poller.looked == 3


def test_a_signal_given_while_the_poller_is_busy_is_not_lost(gate: PollGate) -> None:
    gate.signal(QUEUE)  # before the poller even asks
    gate.signal(QUEUE)  # two signals before a look are one look
    poller = Poller(gate, looks=2)
    wait_for(lambda: gate.resting(QUEUE), "the poller to rest after its looks")
    assert poller.looked == 1


def test_a_rested_poller_looks_again_unasked() -> None:
    gate = PollGate(hot_s=0.0, rest_s=0.05)
    gate.watch(QUEUE, poll_interval_s=0.0)
    try:
        poller = Poller(gate, looks=4)
        assert poller.done.wait(30)  # nobody signalled: every look after the first rested
        assert gate.waits >= 3
    finally:
        gate.open()


def test_open_releases_a_resting_poller_and_everything_after(gate: PollGate) -> None:
    poller = Poller(gate, looks=5)
    wait_for(lambda: gate.resting(QUEUE), "the poller to rest")
    gate.open()
    assert poller.done.wait(30)
    assert not gate.resting(QUEUE)


def test_other_threads_and_other_queues_never_wait(gate: PollGate) -> None:
    gate.before_poll(threading.current_thread().name)
    gate.before_poll(threading.current_thread().name)
    other = Poller(gate, looks=3, queue="not-watched")
    assert other.done.wait(30)
    assert gate.waits == 0
    gate.signal("not-watched")  # a queue nobody watches: nothing to do, no error


def test_real_transactions_of_a_poller_wait_at_their_start(tmp_path: Path) -> None:
    """Installed as SQLAlchemy's `begin` hook: the poller's second transaction waits, before it
    takes any lock, until a signal."""
    engine = create_engine(f"sqlite:///{tmp_path / 'gate.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    gate = PollGate(hot_s=0.0, rest_s=3600.0)
    gate.watch(QUEUE, poll_interval_s=0.0)
    committed: list[int] = []

    def poll() -> None:
        for n in range(2):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            committed.append(n)

    thread = threading.Thread(target=poll, name=poller_thread_name(QUEUE), daemon=True)
    try:
        thread.start()
        wait_for(lambda: gate.resting(QUEUE), "the second transaction to wait")
        assert committed == [0]
        with engine.begin() as conn:  # the database is free meanwhile: no lock is held
            conn.execute(text("INSERT INTO t VALUES (9)"))
        gate.signal(QUEUE)
        thread.join(30)
        assert committed == [0, 1]
    finally:
        gate.open()
        engine.dispose()


# ---- with Honk's own workflows, in-process ---------------------------------------------------


def test_with_resting_pollers_a_run_and_the_run_waiting_behind_it_still_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Honk signals every enqueue and every end: with pollers that would otherwise rest for an
    hour, a label starts a run, and a second trigger queued behind it starts when it ends."""
    monkeypatch.setattr(POLL_GATE, "hot_s", 2.0)
    monkeypatch.setattr(POLL_GATE, "rest_s", 3600.0)
    with world(tmp_path) as w:
        w.add_repo({"calc.py": CALC, "test_calc.py": TEST}, honk_yml=HONK_YML)
        working = threading.Event()
        release = threading.Event()

        def slow_first_turn(_request: dict[str, Any]) -> fa.Reply:
            working.set()
            release.wait(60)
            return fa.text("Looked around; nothing to change.")

        w.script = [slow_first_turn]
        fields = {k: v for k, v in w.env().items() if k in Settings.model_fields}
        settings = Settings(_env_file=None, **fields)  # type: ignore[call-arg]
        app = create_app(settings, role="serve", env_path=tmp_path / ".env")
        with TestClient(app) as client:
            for name in (INTAKE_QUEUE, RUNS_QUEUE):
                wait_for(lambda name=name: POLL_GATE.resting(name), f"{name}'s poller to rest")
            number = w.github.add_issue(REPO, title="look around", user=SENDER)
            assert deliver(client, "issues", w.point(payloads.labeled("honk"), number)) == 202
            assert working.wait(60), "the first run never reached the model"

            posted = w.github.add_comment(REPO, number, body="/honk and then this", user=SENDER)
            payload = payloads.issue_comment("/honk and then this", comment_id=posted.id)
            assert deliver(client, "issue_comment", w.point(payload, number)) == 202
            wait_for(
                lambda: [r["status"] for r in w.store_rows(number)] == ["running", "waiting"],
                "the second run to wait behind the first",
            )
            wait_for(lambda: POLL_GATE.resting(RUNS_QUEUE), "the runs poller to rest meanwhile")
            release.set()
            wait_for(
                lambda: [r["status"] for r in w.store_rows(number)] == ["succeeded"] * 2,
                "both runs to finish",
                timeout=120,
            )


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
