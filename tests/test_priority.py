"""Background work steps aside for the webhook path, and never for longer than its cap."""

from __future__ import annotations

import asyncio

import pytest

from honk_app.priority import MAX_WAIT_S, QUIET_S, DeliveryGauge, must_wait, yield_to_deliveries


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
