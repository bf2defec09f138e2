"""During a burst of deliveries, background work gets a small CPU budget, and never stops."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from honk_app.priority import (
    ANSWERING,
    CREDIT_S,
    MAX_SLEEP_S,
    MAX_WAIT_S,
    MIN_SLEEP_S,
    QUIET_S,
    CpuBudget,
    DeliveryGauge,
    in_burst,
    meter_database_work,
    must_wait,
    next_sleep,
    pause_for,
    yield_to_deliveries,
)
from tests.waiting import wait_for

T = TypeVar("T")


# ---- pure ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_flight", "since_last_s", "expected"),
    [
        (0, 10.0, False),  # nothing going on
        (1, 10.0, True),  # a delivery is being answered
        (0, QUIET_S / 2, True),  # one just finished: the next is likely on its way
        (0, QUIET_S * 2, False),
    ],
)
def test_in_burst(in_flight: int, since_last_s: float, expected: bool) -> None:
    assert in_burst(in_flight, since_last_s) is expected


@pytest.mark.parametrize(
    ("in_flight", "since_last_s", "waited_s", "expected"),
    [
        (0, 10.0, 0.0, False),
        (3, 0.0, 0.1, True),
        (5, 0.0, MAX_WAIT_S, False),  # waited long enough: a flood must not stop it
    ],
)
def test_must_wait(in_flight: int, since_last_s: float, waited_s: float, expected: bool) -> None:
    assert must_wait(in_flight, since_last_s, waited_s) is expected


def test_a_new_burst_starts_with_a_full_budget() -> None:
    budget = CpuBudget(share=0.1, cap_s=0.002)
    assert budget.charge(burst=1, now=100.0, background_cpu=50.0) == 0.002


def test_background_cpu_is_charged_and_the_wall_clock_refills_at_the_share() -> None:
    budget = CpuBudget(share=0.1, cap_s=0.002)
    budget.charge(burst=1, now=0.0, background_cpu=0.0)
    # 10 ms of wall clock earn 1 ms; 5 ms of background CPU were used.
    assert budget.charge(burst=1, now=0.010, background_cpu=0.005) == pytest.approx(-0.002)
    # Nothing used for 30 ms: 3 ms earned.
    assert budget.charge(burst=1, now=0.040, background_cpu=0.005) == pytest.approx(0.001)
    # Nothing used for a second: refilled, but never past the cap.
    assert budget.charge(burst=1, now=1.040, background_cpu=0.005) == pytest.approx(0.002)


@pytest.mark.parametrize(
    ("wait_s", "left_s", "expected_s"),
    [
        (0.0001, 5.0, MIN_SLEEP_S),  # barely over: no storm of wake-ups, each charged anew
        (0.03, 5.0, 0.03),  # sleeps until the budget is repaid
        (3.0, 5.0, MAX_SLEEP_S),  # but looks now and then: the burst may end meanwhile
        (3.0, 0.002, 0.002),  # and never past its longest pause
        (3.0, -0.1, 0.0),
    ],
)
def test_next_sleep(wait_s: float, left_s: float, expected_s: float) -> None:
    assert next_sleep(wait_s, left_s) == pytest.approx(expected_s)


def test_the_debt_is_bounded_by_the_longest_pause() -> None:
    budget = CpuBudget(share=0.1, cap_s=0.002, max_pause_s=0.25)
    budget.charge(burst=1, now=0.0, background_cpu=0.0)
    # A unit of work that ran 3 s: the debt is what 0.25 s of waiting repays, no more.
    assert budget.charge(burst=1, now=3.0, background_cpu=3.3) == pytest.approx(-0.025)
    assert pause_for(budget.credit_s, share=0.1) == pytest.approx(0.25)


def test_the_next_burst_forgives_an_overdraft() -> None:
    budget = CpuBudget(share=0.1, cap_s=0.002)
    budget.charge(burst=1, now=0.0, background_cpu=0.0)
    assert budget.charge(burst=1, now=0.001, background_cpu=0.1) < 0
    assert budget.charge(burst=2, now=0.002, background_cpu=0.1) == 0.002


@pytest.mark.parametrize(
    ("credit_s", "expected_s"), [(0.001, 0.0), (0.0, 0.0), (-0.001, 0.01), (-0.05, 0.5)]
)
def test_pause_for_repays_an_overdraft_at_the_share(credit_s: float, expected_s: float) -> None:
    assert pause_for(credit_s, share=0.1) == pytest.approx(expected_s)


# ---- the server's own loop: cooperative pauses --------------------------------------------


async def test_an_idle_webhook_path_costs_background_work_nothing() -> None:
    assert await yield_to_deliveries(DeliveryGauge()) == 0.0


async def test_background_work_resumes_when_the_delivery_is_answered() -> None:
    gauge = DeliveryGauge()
    gauge.started()
    waiting = asyncio.create_task(yield_to_deliveries(gauge, max_wait_s=60))
    for _ in range(5):
        await asyncio.sleep(QUIET_S)
    assert not waiting.done()
    gauge.finished()
    waited = await waiting
    assert 0 < waited < 60


async def test_a_flood_of_deliveries_delays_background_work_by_the_cap_only() -> None:
    gauge = DeliveryGauge()
    gauge.started()  # never finished
    assert await yield_to_deliveries(gauge, max_wait_s=0.02) >= 0.02


# ---- background threads: the CPU budget ----------------------------------------------------

SHARE_IN_TESTS = 0.25  # Honk's own share would make these tests wait for seconds
OVERDRAW_CPU_S = 0.1  # overdraws the budget unless burning it took 0.4 s of wall clock


def _gauge(share: float = SHARE_IN_TESTS, max_pause_s: float = 0.25) -> DeliveryGauge:
    return DeliveryGauge(budget=CpuBudget(share=share, max_pause_s=max_pause_s))


def _waiting_for_budget(gauge: DeliveryGauge) -> None:
    wait_for(lambda: gauge.pauses > 0, "a background thread waiting for its budget")


def _burn(cpu_s: float) -> None:
    start = time.thread_time()
    while time.thread_time() - start < cpu_s:
        pass


def _in_thread(fn: Callable[[], T]) -> asyncio.Future[T]:
    """Run `fn` in a fresh thread (not the test loop's, which plays the webhook server's)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            result = context.run(fn)
        except BaseException as exc:
            loop.call_soon_threadsafe(future.set_exception, exc)
        else:
            loop.call_soon_threadsafe(future.set_result, result)

    threading.Thread(target=run, daemon=True).start()
    return future


def _overdraw_then(gauge: DeliveryGauge, then: Callable[[], None]) -> Callable[[], float]:
    """Background work that uses more CPU than its budget, then asks to go on; when it went on."""

    def work() -> float:
        gauge.admit()  # the burst's first reading
        _burn(OVERDRAW_CPU_S)
        then()
        return time.monotonic()

    return work


async def _overdraws_in_a_burst_without_pausing(gauge: DeliveryGauge) -> None:
    gauge.started()
    try:
        await _in_thread(_overdraw_then(gauge, gauge.admit))
        assert gauge.pauses == 0
    finally:
        gauge.finished()


async def test_an_overdrawn_thread_waits_until_the_burst_ends() -> None:
    gauge = _gauge(share=0.001, max_pause_s=600)  # only the burst's end lets it go on
    gauge.serve_on_this_loop()
    gauge.started()
    went_on = _in_thread(_overdraw_then(gauge, gauge.admit))
    _waiting_for_budget(gauge)
    answered_at = time.monotonic()
    gauge.finished()
    assert await went_on >= answered_at


async def test_a_burst_that_never_ends_slows_background_work_but_does_not_stop_it() -> None:
    gauge = _gauge(share=0.001, max_pause_s=0.05)  # repaying would take 100 s
    gauge.serve_on_this_loop()
    gauge.started()  # never finished
    try:
        await _in_thread(_overdraw_then(gauge, gauge.admit))  # it went on, the burst still on
        assert gauge.pauses > 0  # after waiting its longest pause
        assert gauge.busy()
    finally:
        gauge.finished()


async def test_without_the_webhook_threads_clock_nothing_is_metered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gauge = _gauge(share=0.001, max_pause_s=600)
    gauge.serve_on_this_loop()

    def ended(_clock: int) -> float:
        raise OSError(22, "Invalid argument")  # the clock of a thread that has ended

    monkeypatch.setattr(time, "clock_gettime", ended)
    await _overdraws_in_a_burst_without_pausing(gauge)


async def test_outside_a_burst_nothing_is_metered() -> None:
    gauge = _gauge()
    gauge.serve_on_this_loop()
    gauge.started()
    gauge.finished()
    gauge.last_done = float("-inf")  # long ago
    await _in_thread(_overdraw_then(gauge, gauge.admit))
    assert gauge.pauses == 0


async def test_the_webhook_paths_own_work_in_threads_is_never_metered() -> None:
    gauge = _gauge()
    gauge.serve_on_this_loop()
    gauge.started()  # never finished
    try:
        token = ANSWERING.set(True)  # as the webhook handler does; to_thread copies it
        try:
            went_on = _in_thread(_overdraw_then(gauge, gauge.admit))
        finally:
            ANSWERING.reset(token)
        await went_on
        assert gauge.pauses == 0
    finally:
        gauge.finished()


async def test_without_a_webhook_server_in_the_process_nothing_is_metered() -> None:
    gauge = _gauge()  # a `honk worker`: serve_on_this_loop never called
    await _overdraws_in_a_burst_without_pausing(gauge)


async def test_database_transactions_of_background_threads_wait_for_their_budget(
    tmp_path: Path,
) -> None:
    gauge = _gauge(share=0.001, max_pause_s=600)
    gauge.serve_on_this_loop()
    engine = create_engine(f"sqlite:///{tmp_path / 'runs.sqlite'}")  # made before, as DBOS's
    meter_database_work(gauge)
    meter_database_work(gauge)  # installed once however often it is called
    try:
        assert event.contains(Engine, "begin", gauge.transaction_hook)

        def transaction() -> None:
            with engine.begin() as connection:
                connection.execute(text("SELECT 1"))

        gauge.started()
        went_on = _in_thread(_overdraw_then(gauge, transaction))
        _waiting_for_budget(gauge)  # in the hook, before the transaction began
        answered_at = time.monotonic()
        gauge.finished()
        assert await went_on >= answered_at
    finally:
        _unmeter(gauge)
        engine.dispose()


def _unmeter(gauge: DeliveryGauge) -> None:
    event.remove(Engine, "begin", gauge.transaction_hook)
    event.remove(Engine, "commit", gauge.transaction_end_hook)
    event.remove(Engine, "rollback", gauge.transaction_end_hook)


async def test_the_webhook_paths_own_transactions_are_not_charged_to_background_work(
    tmp_path: Path,
) -> None:
    gauge = _gauge()
    gauge.serve_on_this_loop()
    engine = create_engine(f"sqlite:///{tmp_path / 'runs.sqlite'}")
    meter_database_work(gauge)
    try:

        def enqueue_for_a_delivery() -> None:  # as a Postgres-mode handler's enqueue
            with engine.begin() as connection:
                connection.execute(text("SELECT 1"))
                _burn(OVERDRAW_CPU_S)

        before = gauge.background_cpu()
        token = ANSWERING.set(True)
        try:
            answered = _in_thread(enqueue_for_a_delivery)
        finally:
            ANSWERING.reset(token)
        await answered
        after = gauge.background_cpu()
        assert before is not None and after is not None
        assert gauge.exempt_cpu >= OVERDRAW_CPU_S
        # Other threads of this test process may have used a little meanwhile; not 0.1 s.
        assert after - before < OVERDRAW_CPU_S / 2
    finally:
        _unmeter(gauge)
        engine.dispose()


# ---- the workflows' loop -------------------------------------------------------------------


class _BackgroundLoop:
    """An event loop in its own thread, standing in for the one DBOS runs workflows on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def _register(gauge: DeliveryGauge) -> None:
    gauge.govern_this_loop()


async def _busy_workflow(steps: int, step_cpu_s: float) -> tuple[float, float]:
    """A stand-in workflow of CPU-bound steps: (its CPU, the wall clock it took)."""
    cpu, wall = time.thread_time(), time.monotonic()
    for _ in range(steps):
        _burn(step_cpu_s)
        await asyncio.sleep(0)
    return time.thread_time() - cpu, time.monotonic() - wall


async def test_in_a_burst_the_workflows_loop_gets_its_share_and_finishes() -> None:
    gauge = _gauge()
    gauge.serve_on_this_loop()
    background = _BackgroundLoop()
    try:
        background.run(_register(gauge))
        gauge.started()  # never finished: a flood of deliveries
        ran = asyncio.get_running_loop().run_in_executor(
            None, background.run, _busy_workflow(20, 0.005)
        )
        cpu_s, wall_s = await ran  # it finished: a flood slows runs down, never stops them
        # It used no more than its share of the wall clock, plus the burst's first credit and
        # the steps run between two of its readings (at most two).
        assert cpu_s <= SHARE_IN_TESTS * wall_s + CREDIT_S + 3 * 0.005
        assert gauge.pauses > 0
    finally:
        gauge.finished()
        background.close()


async def test_the_webhook_servers_own_loop_is_never_metered() -> None:
    gauge = _gauge()
    gauge.serve_on_this_loop()
    gauge.govern_this_loop()  # ignored: this is the server's loop
    assert not gauge.governs(asyncio.get_running_loop())
    gauge.started()
    try:
        await _busy_workflow(20, 0.005)
        assert gauge.pauses == 0
    finally:
        gauge.finished()
