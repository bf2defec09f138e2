"""DBOS polls Honk's queues only when they may hold work it can start (the embedded mode).

DBOS finds queued workflows by polling: each of its queue threads runs a few transactions every
poll interval, whether or not anything was queued. An empty poll of Honk's partitioned runs
queue costs about 8 ms of CPU, because DBOS builds its SQL anew each time. At four polls a second
for each of the two queues, an idle `honk serve` used 7–10% of a core, and during a flood of
deliveries that polling was most of what the webhook path shared the interpreter with.

In the embedded mode Honk is the only process writing its queues, so it knows when a poll can
find work: after it enqueues a workflow, and after a workflow ends (the partition or worker slot
it held frees the next one). Those are signals. For `HOT_S` after one, the queue is polled as
DBOS wants. Otherwise its poller's transactions wait at their start until a signal, and it still
looks every `REST_S`, so work Honk was not told of (none is known) waits at most that long.

Waiting happens at a transaction's `begin`, before any lock is taken; the poller holds one of the
pool's connections meanwhile (DBOS's pool has 20). `open()` lets everything through, so a
shutdown never waits for a resting poller. With Postgres, other processes enqueue: no gate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

HOT_S = 5.0  # after a signal, a queue is polled at its own interval for this long
REST_S = 5.0  # without one, its poller still looks this often
PASS_POLLS = 2.0  # a poller let through may finish this many poll intervals of transactions


def poller_thread_name(queue_name: str) -> str:
    """The name DBOS gives the thread that polls `queue_name` (dbos/_queue.py)."""
    return f"queue-worker-{queue_name}"


def wait_before_poll(
    now: float,
    *,
    signalled: bool,
    last_signal: float,
    passed_at: float,
    pass_s: float,
    hot_s: float = HOT_S,
    rest_s: float = REST_S,
) -> float:
    """Pure: seconds a poller's transaction waits before it may begin (0: at once).

    It goes at once after a signal it has not answered yet, while the queue is hot (a signal
    less than `hot_s` ago) and while the pass it was given lasts (`pass_s`, one whole poll);
    otherwise when `rest_s` has passed since that pass began."""
    if signalled or now - last_signal < hot_s or now - passed_at < pass_s:
        return 0.0
    return max(0.0, passed_at + rest_s - now)


@dataclass
class _Watched:
    pass_s: float
    last_signal: float
    signalled: bool = True  # a restart may have recovered queued work: look at once
    passed_at: float = float("-inf")


@dataclass(eq=False)
class PollGate:
    """The signals, and the hook that makes pollers wait for them (one per process)."""

    hot_s: float = HOT_S
    rest_s: float = REST_S
    waits: int = 0  # times a poller waited
    _resting: set[str] = field(default_factory=set)  # poller threads waiting now
    _watched: dict[str, _Watched] = field(default_factory=dict)  # by poller thread name
    _open: bool = True
    _changed: threading.Condition = field(default_factory=threading.Condition)
    transaction_hook: Callable[[Any], None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        def before_transaction(_connection: Any) -> None:
            self.before_poll(threading.current_thread().name)

        self.transaction_hook = before_transaction  # one function: installing twice is once

    def watch(self, queue_name: str, poll_interval_s: float) -> None:
        """Gate `queue_name`'s poller from now on (its first look goes at once)."""
        with self._changed:
            self._watched[poller_thread_name(queue_name)] = _Watched(
                pass_s=PASS_POLLS * poll_interval_s, last_signal=time.monotonic()
            )
            self._open = False
        if not event.contains(Engine, "begin", self.transaction_hook):
            event.listen(Engine, "begin", self.transaction_hook)

    def signal(self, queue_name: str) -> None:
        """Work may be there: a workflow was queued on `queue_name`, or one of it ended."""
        watched = self._watched.get(poller_thread_name(queue_name))
        if watched is None:
            return
        with self._changed:
            watched.last_signal = time.monotonic()
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

    def before_poll(self, thread_name: str) -> None:
        watched = self._watched.get(thread_name)
        if watched is None:
            return  # not a poller of Honk's queues: the common case costs one lookup
        with self._changed:
            while not self._open:
                now = time.monotonic()
                wait_s = wait_before_poll(
                    now,
                    signalled=watched.signalled,
                    last_signal=watched.last_signal,
                    passed_at=watched.passed_at,
                    pass_s=watched.pass_s,
                    hot_s=self.hot_s,
                    rest_s=self.rest_s,
                )
                if wait_s <= 0:
                    if watched.signalled or now - watched.passed_at >= watched.pass_s:
                        watched.passed_at = now  # a new pass: this look and the poll it starts
                    watched.signalled = False
                    return
                self.waits += 1
                self._resting.add(thread_name)
                try:
                    self._changed.wait(wait_s)
                finally:
                    self._resting.discard(thread_name)


POLL_GATE = PollGate()
