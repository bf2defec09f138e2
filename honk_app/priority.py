"""The webhook path goes first: background work steps aside while deliveries are being answered.

In the embedded mode the durable runs share one process with the webhook server, and Python
runs one thread at a time. Under a burst of deliveries, the intake of the triggers already
accepted (GitHub calls, each parsed by githubkit) took most of that thread, and acknowledgements
waited behind it: trigger p99 over 100 ms at 16 connections in bench/webhook_ingest.py. GitHub
gives a delivery ten seconds and a person is waiting for the 👀; a run started 200 ms later is
not noticed. So background work calls `yield_to_deliveries()` at its natural pauses (before each
GitHub call and each model turn, and before handing triggers to the run queue): it waits while
a delivery is being answered, never longer than `MAX_WAIT_S` at a time, so a flood of deliveries
slows runs down but cannot stop them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

QUIET_S = 0.005  # a delivery this recent counts as in progress (keep-alive gaps are shorter)
MAX_WAIT_S = 0.25  # the longest one pause waits, however busy the webhook path is


def must_wait(
    in_flight: int, since_last_s: float, waited_s: float, max_wait_s: float = MAX_WAIT_S
) -> bool:
    """Pure: whether background work should keep waiting for the webhook path."""
    if waited_s >= max_wait_s:
        return False
    return in_flight > 0 or since_last_s < QUIET_S


@dataclass
class DeliveryGauge:
    """Deliveries being answered now, and when the last one finished (monotonic seconds).

    Written by the webhook server's event loop only; read from any thread (the GIL makes each
    read and write of these fields whole)."""

    in_flight: int = 0
    last_done: float = float("-inf")

    def started(self) -> None:
        self.in_flight += 1

    def finished(self) -> None:
        self.in_flight -= 1
        self.last_done = time.monotonic()


GAUGE = DeliveryGauge()


async def yield_to_deliveries(
    gauge: DeliveryGauge = GAUGE, max_wait_s: float = MAX_WAIT_S
) -> float:
    """Wait while the webhook path is busy (at most `max_wait_s`); returns the seconds waited."""
    start = time.monotonic()
    now = start
    while must_wait(gauge.in_flight, now - gauge.last_done, now - start, max_wait_s):
        await asyncio.sleep(QUIET_S)
        now = time.monotonic()
    return now - start
