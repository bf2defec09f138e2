"""The webhook path goes first: background work gets a small share of the interpreter in a burst.

In the embedded mode the durable runs share one process with the webhook server, and Python
runs one thread at a time. A person is waiting for the 👀 and GitHub gives a delivery ten
seconds; a run that starts a few milliseconds later is not noticed. So while deliveries are
being answered (a burst), everything else in the process (DBOS's workflow loop, its executor
threads that checkpoint steps, its queue pollers) shares a CPU budget of `SHARE` of the wall
clock, metered as the process's CPU time minus the webhook server thread's. Outside bursts it
costs nothing and limits nothing. A burst that never ends slows runs down but cannot stop them:
the debt is bounded, so one wait for the budget lasts at most `MAX_PAUSE_S`.

Background threads are metered where they can stop safely: the workflows' loop between two of
its iterations, and every database transaction before it begins (so no lock is held while
waiting; it may hold a pooled connection, which is why transactions are metered only in the
embedded SQLite mode, where deliveries never need DBOS's pool, and why a wait is bounded).
Work the webhook path does in threads itself (the health check's ping; a Postgres enqueue) is
never made to wait, and the CPU of its transactions is not counted as background. Background
work on the webhook server's own loop (the inbox's forwarder, model checks) awaits
`yield_to_deliveries()` at its natural pauses instead.

Measured in bench/webhook_ingest.py: an earlier design held only the workflows' loop, with a
100 ms hold and a 5 ms slice; DBOS's executor threads still took 28% of the CPU and the loop
18%, and the webhook thread got 49% of it during a burst of triggers. With the budget, the
background took 10% (then 5%) as designed. Bounding one wait at 0.25 s let DBOS's queue pollers
through every 0.25 s, and non-trigger throughput fell from 0.88 to 0.80 of the minimal app's.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

SHARE = 0.05  # background work's share of the wall clock during a burst of deliveries
CREDIT_S = 0.002  # CPU seconds background work may use at the start of a burst, unmetered
QUIET_S = 0.005  # a delivery this recent counts as in progress (keep-alive gaps are shorter)
MAX_SLEEP_S = 0.1  # a metered thread looks again this often (a burst may end meanwhile)
# ... and no more often than this: each look costs CPU charged to the budget, so short sleeps
# fed each other (a thread slightly over budget woke thousands of times a second, and each wake
# took the interpreter from the webhook thread: non-trigger throughput 0.6 of the minimal app's).
MIN_SLEEP_S = 0.005
MAX_PAUSE_S = 5.0  # the longest one wait for the budget lasts; the debt is bounded to match
RECHECK_S = 0.002  # while a burst lasts, the workflows' loop is metered this often
MAX_WAIT_S = 0.25  # the longest one cooperative pause on the server's loop waits

# Set by the webhook path itself: its own work in threads (a Postgres enqueue, the health
# check's ping) is never metered, or a delivery would wait for itself.
ANSWERING: contextvars.ContextVar[bool] = contextvars.ContextVar("honk_answering", default=False)


def in_burst(in_flight: int, since_last_s: float) -> bool:
    """Pure: whether deliveries are being answered now (or one has just been)."""
    return in_flight > 0 or since_last_s < QUIET_S


def must_wait(
    in_flight: int, since_last_s: float, waited_s: float, max_wait_s: float = MAX_WAIT_S
) -> bool:
    """Pure: whether background work on the server's loop should keep waiting."""
    return waited_s < max_wait_s and in_burst(in_flight, since_last_s)


def pause_for(credit_s: float, share: float = SHARE) -> float:
    """Pure: how long background work waits until an overdrawn budget is back to zero."""
    return 0.0 if credit_s >= 0 else -credit_s / share


def next_sleep(wait_s: float, left_s: float) -> float:
    """Pure: how long a thread over budget sleeps before it looks again, `left_s` being what is
    left of its longest pause."""
    return max(0.0, min(max(wait_s, MIN_SLEEP_S), MAX_SLEEP_S, left_s))


@dataclass
class CpuBudget:
    """Pure: a token bucket of CPU seconds that refills at `share` of the wall clock.

    Fed readings of (burst number, wall clock, background CPU); a new burst starts full, and
    the debt is bounded (one unit of work that ran long must not stall runs for seconds)."""

    share: float = SHARE
    cap_s: float = CREDIT_S
    max_pause_s: float = MAX_PAUSE_S  # the debt never exceeds what this much waiting repays
    credit_s: float = CREDIT_S
    _last: tuple[int, float, float] = (-1, 0.0, 0.0)  # burst, wall clock, background CPU

    def charge(self, burst: int, now: float, background_cpu: float) -> float:
        """The credit left after the background CPU used since the last reading."""
        last_burst, then, cpu_then = self._last
        if burst != last_burst:
            self.credit_s = self.cap_s
        else:
            earned = self.share * (now - then)
            credit_s = self.credit_s + earned - (background_cpu - cpu_then)
            self.credit_s = max(-self.share * self.max_pause_s, min(self.cap_s, credit_s))
        self._last = (burst, now, background_cpu)
        return self.credit_s


@dataclass(eq=False)
class DeliveryGauge:
    """Deliveries being answered now, and the CPU budget of everything else while they are.

    `started`/`finished` run on the webhook server's loop only; the counters are read from any
    thread (the GIL makes each read and write of them whole); the budget has a lock."""

    in_flight: int = 0
    last_done: float = float("-inf")
    bursts: int = 0  # bursts seen so far: a new one resets the budget
    pauses: int = 0  # times a background thread waited for its budget
    front_loop: asyncio.AbstractEventLoop | None = None
    _front_thread: int | None = None
    _front_clock: int | None = None  # the CPU clock of the webhook server's thread
    # The workflows' loops (one per process in practice) and whether each is being metered.
    _loops: dict[asyncio.AbstractEventLoop, bool] = field(default_factory=dict)
    _loops_lock: threading.Lock = field(default_factory=threading.Lock)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the budget's
    budget: CpuBudget = field(default_factory=CpuBudget)
    exempt_cpu: float = 0.0  # CPU of the webhook path's own transactions in threads
    _exempt_since: threading.local = field(default_factory=threading.local)
    transaction_hook: Callable[[Any], None] = field(init=False, repr=False)
    transaction_end_hook: Callable[[Any], None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # One function each, so that installing them again changes nothing.
        def meter_transaction(_connection: Any) -> None:
            if ANSWERING.get():
                self._exempt_since.cpu = time.thread_time()
            else:
                self.admit()

        def end_transaction(_connection: Any) -> None:
            since = getattr(self._exempt_since, "cpu", None)
            if since is not None:
                self._exempt_since.cpu = None
                with self._lock:
                    self.exempt_cpu += time.thread_time() - since

        self.transaction_hook = meter_transaction
        self.transaction_end_hook = end_transaction

    def started(self) -> None:
        if self.in_flight == 0 and time.monotonic() - self.last_done >= QUIET_S:
            self.bursts += 1
        self.in_flight += 1  # before the look: a loop's meter that stops after this sees it
        # Per delivery, so the common case (every loop already metered) takes no lock.
        if self.in_flight == 1 and not all(self._loops.values()):
            with self._loops_lock:
                for loop, metering in list(self._loops.items()):
                    if metering:
                        continue
                    try:
                        loop.call_soon_threadsafe(self._meter_loop, loop)
                    except RuntimeError:  # that loop has been closed (a shutdown)
                        self._loops.pop(loop, None)
                    else:
                        self._loops[loop] = True

    def finished(self) -> None:
        self.in_flight -= 1
        self.last_done = time.monotonic()

    def busy(self) -> bool:
        return in_burst(self.in_flight, time.monotonic() - self.last_done)

    def serve_on_this_loop(self) -> None:
        """Called by the webhook server at startup: its loop and thread are never metered."""
        self.front_loop = asyncio.get_running_loop()
        self._front_thread = threading.get_ident()
        try:
            self._front_clock = time.pthread_getcpuclockid(self._front_thread)
        except (AttributeError, OSError):  # no per-thread CPU clock here: nothing is metered
            self._front_clock = None

    def govern_this_loop(self) -> None:
        """Called where workflows run: meter this loop during bursts of deliveries."""
        loop = asyncio.get_running_loop()
        if self._front_clock is None or loop is self.front_loop or loop in self._loops:
            return  # no webhook server in this process, its own loop, or known already
        with self._loops_lock:
            self._loops.setdefault(loop, False)

    def governs(self, loop: asyncio.AbstractEventLoop) -> bool:
        return loop in self._loops

    def admit(self) -> None:
        """Block a background thread while it is over budget in a burst (a no-op outside one)."""
        clock = self._front_clock
        if clock is None or threading.get_ident() == self._front_thread or ANSWERING.get():
            return
        waited_s = 0.0
        while self.busy() and waited_s < self.budget.max_pause_s:
            with self._lock:
                try:
                    background_cpu = self._background_cpu(clock)
                except OSError:  # that thread has ended: no webhook server to give way to
                    return
                credit_s = self.budget.charge(self.bursts, time.monotonic(), background_cpu)
                wait_s = pause_for(credit_s, self.budget.share)
                if wait_s <= 0:
                    return
                self.pauses += 1
            pause_s = next_sleep(wait_s, self.budget.max_pause_s - waited_s)
            time.sleep(pause_s)
            waited_s += pause_s

    def background_cpu(self) -> float | None:
        """CPU seconds the process has used on anything but the webhook path (None: unknown)."""
        if self._front_clock is None:
            return None
        with self._lock:
            return self._background_cpu(self._front_clock)

    def _background_cpu(self, clock: int) -> float:
        return time.process_time() - (time.clock_gettime(clock) + self.exempt_cpu)

    def _meter_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """A callback on a workflows' loop: meter it between iterations while a burst lasts."""
        self.admit()
        with self._loops_lock:  # with `started`: a burst that begins now is not missed
            if not self.busy():
                self._loops[loop] = False
                return
        loop.call_later(RECHECK_S, self._meter_loop, loop)


GAUGE = DeliveryGauge()


def hook_every_transaction(begin: Callable[[Any], None], end: Callable[[Any], None]) -> None:
    """Call `begin` as each SQLAlchemy transaction of any engine (DBOS's and Honk's) begins, and
    `end` as it commits or rolls back; installing the same functions again changes nothing."""
    for name, hook in (("begin", begin), ("commit", end), ("rollback", end)):
        if not event.contains(Engine, name, hook):
            event.listen(Engine, name, hook)


def meter_database_work(gauge: DeliveryGauge = GAUGE) -> None:
    """Meter every database transaction of background threads (DBOS's and Honk's) at its start,
    and count the CPU of the webhook path's own ones as not background."""
    hook_every_transaction(gauge.transaction_hook, gauge.transaction_end_hook)


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
