"""A small cache of collaborators' permissions, for reading a task's comments.

A run reads the permission of everyone whose comment might reach the agent; asking GitHub once per
comment spends the installation's shared rate limit on answers it already has. Answers live for a
few minutes and the cache holds a bounded number, so a long run or a busy issue cannot grow it.
Only text filtering uses it: whether someone may *ask* Honk is always asked of GitHub afresh.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

TTL_S = 600.0
MAX_ENTRIES = 512


class PermissionCache:
    """(repository, login) → permission level, case-insensitive, for `ttl_s` seconds."""

    def __init__(
        self,
        *,
        ttl_s: float = TTL_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    @staticmethod
    def _key(full_name: str, login: str) -> tuple[str, str]:
        return full_name.lower(), login.lower()

    def get(self, full_name: str, login: str) -> str | None:
        key = self._key(full_name, login)
        found = self._entries.get(key)
        if found is None:
            return None
        stored_at, level = found
        if self._clock() - stored_at >= self._ttl_s:
            del self._entries[key]
            return None
        return level

    def put(self, full_name: str, login: str, level: str) -> None:
        key = self._key(full_name, login)
        self._entries.pop(key, None)
        self._entries[key] = (self._clock(), level)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)  # the oldest answer goes first

    def __len__(self) -> int:
        return len(self._entries)
