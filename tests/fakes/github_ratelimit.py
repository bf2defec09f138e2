"""The fake GitHub's API quotas: one per caller and resource, counted down in hour-long windows.

Every API answer carries its window's `x-ratelimit-*` headers, as GitHub's do, and a call beyond
the limit gets GitHub's 403. `set_rate_limit` puts an installation's quota anywhere, so a test
can show what Honk does when it runs low. Git traffic spends no API quota, as on GitHub.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tests.fakes.github_auth import credentials
from tests.fakes.github_state import Injection

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub


@dataclass
class RateWindow:
    """One quota (who, resource) in its current hour: GitHub's `x-ratelimit-*` headers."""

    limit: int
    reset_at: int  # Unix seconds
    used: int = 0

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def headers(self, resource: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset_at).encode()),
            (b"x-ratelimit-used", str(self.used).encode()),
            (b"x-ratelimit-resource", resource.encode()),
        ]


def rate_bucket(authorization: str | None, fake: FakeGitHub) -> tuple[str, int]:
    secret = credentials(authorization)
    if secret is None:
        return "anonymous", 60
    issued = fake.tokens_by_value.get(secret)
    if issued is not None:
        return f"installation:{issued.installation_id}", 5000
    return "app", 5000


def spend(fake: FakeGitHub, bucket: str, limit: int, resource: str) -> RateWindow:
    """Count one call in its window (a new hour-long window once the reset has passed, as on
    GitHub); the caller holds the lock."""
    key = f"{bucket}:{resource}"
    window = fake.rate_windows.get(key)
    now = time.time()
    if window is None or now >= window.reset_at:
        first = int(fake.started_at + 3600) if window is None else int(now) + 3600
        window = RateWindow(limit, first)
        fake.rate_windows[key] = window
    window.used += 1
    return window


def set_rate_limit(
    fake: FakeGitHub,
    installation_id: int,
    *,
    remaining: int,
    reset_in_s: float | None = None,
    limit: int = 5000,
    resource: str = "core",
) -> None:
    """Make an installation's quota `remaining` of `limit`; each call then counts down from
    there, and a call beyond the limit gets GitHub's 403. GitHub never moves a window's reset, so
    `reset_in_s` (from now) is for a test to set before the client's first call; None keeps it."""
    key = f"installation:{installation_id}:{resource}"
    with fake.lock:
        current = fake.rate_windows.get(key)
        if reset_in_s is not None:
            reset_at = int(time.time() + reset_in_s)
        elif current is not None:
            reset_at = current.reset_at
        else:
            reset_at = int(fake.started_at + 3600)
        fake.rate_windows[key] = RateWindow(limit, reset_at, used=limit - remaining)


def exhausted(window: RateWindow) -> Injection:
    """GitHub's answer to a call over the quota (a 403 whose headers say remaining 0)."""
    reset = {"x-ratelimit-reset": str(window.reset_at)}
    return Injection("*", re.compile(".*"), 403, None, reset, times=1)
