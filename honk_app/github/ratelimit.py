"""GitHub's API quota per installation, and how fast Honk's runs may spend it.

Every repository of an installation shares one quota (5,000 calls an hour and up for an
installation token), and GitHub states what is left on every answer (`x-ratelimit-*`). Runs would
otherwise spend it at full speed (tracking-comment edits above all) until every call of every
run fails. So Honk keeps the latest quota per installation and paces runs by what is left:

- normal: more than the *slow* threshold left;
- slow: at or under `max(10% of the limit, 500)`: the tracking comment is edited at most every
  `SLOW_EDIT_INTERVAL_S` (phase changes still show at once);
- wait: at or under `max(2% of the limit, 100)`, about what one run needs to finish and report:
  a run that has not started waits (at most `MAX_WAIT_S`) for the reset, and one already working
  edits its comment at most every `WAIT_EDIT_INTERVAL_S`.

The floors are capped (at half and a tenth of the limit) so that a small limit still leaves a
normal pace. A quota whose reset time has passed says nothing any more: the pace is normal until
GitHub answers again. Everything here but `QuotaBook` (a lock around a dict) is pure.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

SLOW_FRACTION, SLOW_FLOOR = 0.10, 500
WAIT_FRACTION, WAIT_FLOOR = 0.02, 100
SLOW_EDIT_INTERVAL_S = 30.0
WAIT_EDIT_INTERVAL_S = 120.0
RESET_MARGIN_S = 1.0  # GitHub's clock and ours differ; waking a second late costs nothing
MAX_WAIT_S = 3660.0  # a primary window lasts an hour: a reset further away is a wrong clock


@dataclass(frozen=True)
class Quota:
    """What GitHub last said about an installation's core REST quota."""

    limit: int
    remaining: int
    reset_at: int  # Unix time (seconds) when the window resets, by GitHub's clock


class Pace(StrEnum):
    NORMAL = "normal"
    SLOW = "slow"
    WAIT = "wait"


@dataclass(frozen=True)
class Decision:
    """How a run goes on: its pace, the sentence for its tracking comment ("" when normal), the
    least time between progress edits, and how long to wait before starting (0: start now)."""

    pace: Pace
    note: str = ""
    edit_interval_s: float = 0.0
    wait_s: float = 0.0


NORMAL = Decision(Pace.NORMAL)


def quota_from_headers(headers: Mapping[str, str]) -> Quota | None:
    """The core quota an answer reports; None for other resources (GraphQL, search each have
    their own) and for answers without usable headers (GitHub Enterprise with limits off)."""
    if headers.get("x-ratelimit-resource", "core").strip().lower() != "core":
        return None
    try:
        limit = int(headers["x-ratelimit-limit"])
        remaining = int(headers["x-ratelimit-remaining"])
        reset_at = int(headers["x-ratelimit-reset"])
    except (KeyError, ValueError):
        return None
    if limit <= 0 or remaining < 0 or reset_at <= 0:
        return None
    return Quota(limit, min(remaining, limit), reset_at)


def latest(known: Quota | None, seen: Quota) -> Quota:
    """Answers to parallel calls arrive in any order: a later window wins, and within one window
    the lowest count (what is left only goes down until the reset)."""
    if known is None or seen.reset_at > known.reset_at:
        return seen
    if seen.reset_at < known.reset_at:
        return known
    return seen if seen.remaining <= known.remaining else known


def thresholds(limit: int) -> tuple[int, int]:
    """(slow, wait): the pace changes when what is left is at or under these."""
    slow = min(max(int(limit * SLOW_FRACTION), SLOW_FLOOR), limit // 2)
    wait = min(max(int(limit * WAIT_FRACTION), WAIT_FLOOR), limit // 10)
    return slow, wait


def _clock(reset_at: int) -> str:
    return datetime.fromtimestamp(reset_at, UTC).strftime("%H:%M UTC")


def decide(
    quota: Quota | None, now: float, *, starting: bool = False, base_interval_s: float = 0.0
) -> Decision:
    """The pace for a run at `now` (Unix time); `starting`: the run has not begun its work yet."""
    if quota is None or now >= quota.reset_at:
        return Decision(Pace.NORMAL, edit_interval_s=base_interval_s)
    slow, wait = thresholds(quota.limit)
    left = f"{quota.remaining:,} of {quota.limit:,} left, resets {_clock(quota.reset_at)}"
    if quota.remaining <= wait:
        head = f"GitHub's API quota for this installation is nearly used up ({left}): Honk"
        if starting:
            wait_s = min(quota.reset_at - now + RESET_MARGIN_S, MAX_WAIT_S)
            note = f"{head} is waiting for it to reset before starting."
            return Decision(Pace.WAIT, note, max(base_interval_s, WAIT_EDIT_INTERVAL_S), wait_s)
        note = f"{head} updates this comment rarely until then."
        return Decision(Pace.WAIT, note, max(base_interval_s, WAIT_EDIT_INTERVAL_S))
    if quota.remaining <= slow:
        note = (
            f"GitHub's API quota for this installation is low ({left}): "
            "Honk updates this comment less often."
        )
        return Decision(Pace.SLOW, note, max(base_interval_s, SLOW_EDIT_INTERVAL_S))
    return Decision(Pace.NORMAL, edit_interval_s=base_interval_s)


class QuotaBook:
    """The latest quota of each installation, shared by every run of this process (DBOS runs
    workflows on threads of its own, hence the lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._quotas: dict[int, Quota] = {}

    def observe(self, installation_id: int, headers: Mapping[str, str]) -> None:
        seen = quota_from_headers(headers)
        if seen is None:
            return
        with self._lock:
            self._quotas[installation_id] = latest(self._quotas.get(installation_id), seen)

    def get(self, installation_id: int) -> Quota | None:
        with self._lock:
            return self._quotas.get(installation_id)
