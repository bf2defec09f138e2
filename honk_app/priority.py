"""The webhook path goes first: background work steps aside while deliveries are being answered.

In the embedded mode the durable runs share one process with the webhook server, and Python
runs one thread at a time. Under a burst of deliveries the intake and runs of triggers already
accepted took most of that thread, and acknowledgements waited behind them (trigger p99 over
100 ms at 16 connections in bench/webhook_ingest.py). GitHub gives a delivery ten seconds and a
person is waiting for the 👀; a run that starts 100 ms later is not noticed. Two mechanisms:

- Workflows run on DBOS's own event loop. While a delivery is being answered, that whole loop is
  held (a blocking sleep, which lets the webhook server's thread have the interpreter) for at
  most `MAX_HOLD_S` at a time, then gets a slice of `SLICE_S`: a flood of deliveries slows runs
  down but cannot stop them. It costs nothing while no delivery is in flight.
- Background work on the webhook server's own loop (handing triggers to the run queue, model
  checks) awaits `yield_to_deliveries()` at its natural pauses.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

QUIET_S = 0.005  # a delivery this recent counts as in progress (keep-alive gaps are shorter)
MAX_WAIT_S = 0.25  # the longest one cooperative pause waits, however busy the webhook path is
MAX_HOLD_S = 0.1  # the longest the workflows' loop is held at a time
SLICE_S = 0.005  # then it runs at least this long before it is held again


def must_wait(
    in_flight: int, since_last_s: float, waited_s: float, max_wait_s: float = MAX_WAIT_S
) -> bool:
    """Pure: whether background work should keep waiting for the webhook path."""
    if waited_s >= max_wait_s:
        return False
    return in_flight > 0 or since_last_s < QUIET_S


@dataclass(eq=False)
class DeliveryGauge:
    """Deliveries being answered now, and when the last one finished (monotonic seconds).

    `started`/`finished` run on the webhook server's loop only; the fields are read from any
    thread (the GIL makes each read and write of them whole)."""

    in_flight: int = 0
    last_done: float = float("-inf")
    front_loop: asyncio.AbstractEventLoop | None = None
    # The workflows' loops (one per process in practice) and whether each is being held.
    _held: dict[asyncio.AbstractEventLoop, bool] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _quiet: threading.Event = field(default_factory=threading.Event)

    def started(self) -> None:
        self.in_flight += 1
        if self.in_flight == 1 and self._held:  # per delivery: keep the common case cheap
            self._quiet.clear()
            for loop, holding in list(self._held.items()):
                if loop.is_closed():
                    self._held.pop(loop, None)
                elif not holding:
                    self._held[loop] = True
                    loop.call_soon_threadsafe(self._hold, loop)

    def finished(self) -> None:
        self.in_flight -= 1
        self.last_done = time.monotonic()
        if self.in_flight == 0:
            self._quiet.set()

    def serve_on_this_loop(self) -> None:
        """Called by the webhook server at startup: its loop is never held."""
        self.front_loop = asyncio.get_running_loop()

    def govern_this_loop(self) -> None:
        """Called where workflows run: hold this loop while deliveries are being answered."""
        loop = asyncio.get_running_loop()
        if self.front_loop is None or loop is self.front_loop or loop in self._held:
            return  # no webhook server in this process, its own loop, or known already
        with self._lock:
            self._held.setdefault(loop, False)

    def _hold(self, loop: asyncio.AbstractEventLoop) -> None:
        """A callback on a workflows' loop: block it while the webhook path is busy."""
        start = now = time.monotonic()
        while must_wait(self.in_flight, now - self.last_done, now - start, MAX_HOLD_S):
            # Sleep until the webhook path goes idle (or the hold's time is up): no wake-ups,
            # so this thread does not ask for the interpreter while deliveries are answered.
            if self.in_flight > 0:
                if self._quiet.is_set():  # set before this loop was registered: stale
                    self._quiet.clear()
                self._quiet.wait(MAX_HOLD_S - (now - start))
            else:
                time.sleep(max(0.0, QUIET_S - (now - self.last_done)))
            now = time.monotonic()
        if now - start >= MAX_HOLD_S:
            loop.call_later(SLICE_S, self._hold, loop)  # still busy: a slice, then hold again
        else:
            self._held[loop] = False


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
