"""DBOS polls Honk's queues only when they may hold work it can start (the embedded mode).

DBOS finds queued workflows by polling: each of its queue threads runs a few transactions every
poll interval, whether or not anything was queued. An empty poll of Honk's partitioned runs
queue costs about 8 ms of CPU, because DBOS builds its SQL anew each time. At four polls a second
for each of the two queues, an idle `honk serve` used 7–10% of a core, and during a flood of
deliveries that polling was most of what the webhook path shared the interpreter with.

In the embedded mode Honk is the only process writing its queues, so it knows when a poll can
find work: after it enqueues a workflow, and after a workflow ends (once DBOS has recorded
the end and freed its partition and worker slot; a run `/honk stop` cancels ends too). Those
are signals. A signal not yet answered lets the next poll through, and for `HOT_S` after one (and
after startup) the queue is polled as DBOS wants. Otherwise a poll waits until a signal, and it
still looks every `REST_S`. So work Honk was not told of waits at most that long: what DBOS
re-enqueues after a crash, once the startup's hot window is over, is the only such work.

A poll waits at the `begin` of its first transaction after DBOS's sleep between polls, before
any lock is taken (pysqlite sends BEGIN with the first write); the poller holds one of the
pool's connections meanwhile (DBOS's pool has 20). A poll that began is never held halfway.
`open()` lets everything through, so a shutdown never waits for a resting poller. With
Postgres, other processes enqueue: no gate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from honk_app.priority import hook_every_transaction

HOT_S = 10.0  # after a signal (and after startup), a queue is polled at its own interval
REST_S = 5.0  # without one, its poller still looks this often
# A look lets this many poll intervals of transactions through: DBOS counts the slots it may
# fill before it sleeps, so the first poll after a rest may count from before it; the second
# counts afresh.
PASS_POLLS = 2.5


def poller_thread_name(queue_name: str) -> str:
    """The name DBOS gives the thread that polls `queue_name` (dbos/_queue.py)."""
    return f"queue-worker-{queue_name}"


def same_poll(now: float, last_end: float, poll_interval_s: float) -> bool:
    """Pure: whether a poller's transaction follows its previous one at once (the rest of one
    poll: DBOS sleeps a whole poll interval between polls). Only a poll's first transaction
    after that sleep is ever held, so a poll that began is never stopped halfway."""
    return now - last_end < poll_interval_s / 2


def wait_before_poll(
    now: float,
    *,
    signalled: bool,
    hot_until: float,
    pass_until: float,
    last_look: float,
    rest_s: float = REST_S,
) -> float:
    """Pure: seconds a poll waits before it may begin (0: at once).

    It goes at once after a signal it has not answered yet, while the queue is hot, and while
    the pass its last look gave lasts; otherwise when `rest_s` has passed since that look."""
    if signalled or now < hot_until or now < pass_until:
        return 0.0
    return max(0.0, last_look + rest_s - now)


@dataclass
class _Watched:
    poll_interval_s: float
    hot_until: float
    signalled: bool = True  # the first look goes at once
    last_look: float = float("-inf")
    pass_until: float = float("-inf")
    last_end: float = float("-inf")  # when the poller's last transaction ended


@dataclass(eq=False)
class PollGate:
    """The signals, and the hooks that make pollers wait for them (one per process)."""

    hot_s: float = HOT_S
    rest_s: float = REST_S
    waits: int = 0  # times a poller waited
    _resting: set[str] = field(default_factory=set)  # poller threads waiting now
    _watched: dict[str, _Watched] = field(default_factory=dict)  # by poller thread name
    _open: bool = True
    _changed: threading.Condition = field(default_factory=threading.Condition)
    begin_hook: Callable[[Any], None] = field(init=False, repr=False)
    end_hook: Callable[[Any], None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # One function each, so that installing them again changes nothing.
        def before_transaction(_connection: Any) -> None:
            self.before_poll(threading.current_thread().name)

        def after_transaction(_connection: Any) -> None:
            self.after_poll(threading.current_thread().name)

        self.begin_hook = before_transaction
        self.end_hook = after_transaction

    def watch(self, queue_name: str, poll_interval_s: float) -> None:
        """Gate `queue_name`'s poller from now on; it starts hot."""
        with self._changed:
            self._watched[poller_thread_name(queue_name)] = _Watched(
                poll_interval_s=poll_interval_s,
                hot_until=time.monotonic() + self.hot_s,
            )
            self._open = False
        hook_every_transaction(self.begin_hook, self.end_hook)

    def signal(self, queue_name: str) -> None:
        """Work may be there: a workflow was queued on `queue_name`, or one of it ended."""
        watched = self._watched.get(poller_thread_name(queue_name))
        if watched is None:
            return
        with self._changed:
            watched.hot_until = max(watched.hot_until, time.monotonic() + self.hot_s)
            watched.signalled = True
            self._changed.notify_all()

    def open(self) -> None:
        """Let every poller through from now on (shutdown)."""
        with self._changed:
            self._open = True
            self._watched.clear()
            self._changed.notify_all()

    def resting(self, queue_name: str) -> bool:
        """Whether `queue_name`'s poller is waiting for a signal now."""
        return poller_thread_name(queue_name) in self._resting

    def after_poll(self, thread_name: str) -> None:
        watched = self._watched.get(thread_name)
        if watched is not None:
            watched.last_end = time.monotonic()

    def before_poll(self, thread_name: str) -> None:
        watched = self._watched.get(thread_name)
        if watched is None:
            return  # not a poller of Honk's queues: the common case costs one lookup
        if same_poll(time.monotonic(), watched.last_end, watched.poll_interval_s):
            return
        with self._changed:
            while not self._open:
                now = time.monotonic()
                wait_s = wait_before_poll(
                    now,
                    signalled=watched.signalled,
                    hot_until=watched.hot_until,
                    pass_until=watched.pass_until,
                    last_look=watched.last_look,
                    rest_s=self.rest_s,
                )
                if wait_s <= 0:
                    if now >= watched.pass_until:  # a new look
                        watched.last_look = now
                        watched.pass_until = now + PASS_POLLS * watched.poll_interval_s
                    watched.signalled = False
                    return
                self.waits += 1
                self._resting.add(thread_name)
                try:
                    self._changed.wait(wait_s)
                finally:
                    self._resting.discard(thread_name)


POLL_GATE = PollGate()
