"""Background work steps aside for the webhook path, and never for longer than its cap."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from honk_app import priority
from honk_app.priority import MAX_WAIT_S, QUIET_S, DeliveryGauge, must_wait, yield_to_deliveries

T = TypeVar("T")


@pytest.mark.parametrize(
    ("in_flight", "since_last_s", "waited_s", "expected"),
    [
        (0, 10.0, 0.0, False),  # nothing going on: go ahead
        (1, 10.0, 0.0, True),  # a delivery is being answered
        (3, 0.0, 0.1, True),
        (0, QUIET_S / 2, 0.0, True),  # one just finished: the next is likely on its way
        (0, QUIET_S * 2, 0.0, False),
        (5, 0.0, MAX_WAIT_S, False),  # waited long enough: a flood must not stop runs
    ],
)
def test_must_wait(in_flight: int, since_last_s: float, waited_s: float, expected: bool) -> None:
    assert must_wait(in_flight, since_last_s, waited_s) is expected


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


class _BackgroundLoop:
    """An event loop in its own thread, standing in for the one DBOS runs workflows on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def _ticks(count: int) -> list[float]:
    """A stand-in workflow: records when each of its steps ran."""
    seen = []
    for _ in range(count):
        seen.append(time.monotonic())
        await asyncio.sleep(0)
    return seen


async def _register(gauge: DeliveryGauge) -> None:
    gauge.govern_this_loop()


async def test_workflows_loop_is_held_while_a_delivery_is_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(priority, "MAX_HOLD_S", 60.0)  # only the delivery's end releases it
    gauge = DeliveryGauge()
    gauge.serve_on_this_loop()
    background = _BackgroundLoop()
    try:
        background.run(_register(gauge))
        gauge.started()  # a delivery arrives: the background loop is held from its next step
        ran = asyncio.get_running_loop().run_in_executor(None, background.run, _ticks(3))
        await asyncio.sleep(0.02)
        answered_at = time.monotonic()
        gauge.finished()
        steps = await ran
        assert min(steps) >= answered_at  # nothing of the workflow ran while it was held
    finally:
        background.close()


async def test_a_flood_gives_the_workflows_loop_slices() -> None:
    gauge = DeliveryGauge()
    gauge.serve_on_this_loop()
    background = _BackgroundLoop()
    try:
        background.run(_register(gauge))
        gauge.started()  # never finished: a flood of deliveries
        steps = await asyncio.get_running_loop().run_in_executor(None, background.run, _ticks(3))
        assert len(steps) == 3  # held at most MAX_HOLD_S at a time, then it ran
    finally:
        gauge.finished()
        background.close()


async def test_the_webhook_servers_own_loop_is_never_held() -> None:
    gauge = DeliveryGauge()
    gauge.serve_on_this_loop()
    gauge.govern_this_loop()  # ignored: this is the server's loop
    gauge.started()
    assert len(await _ticks(3)) == 3
    gauge.finished()
