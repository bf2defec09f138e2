"""Waiting for what a server does in the background; no test asserts how long it took."""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    """Poll `probe` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def running(
    argv: list[str], *, cwd: Path, env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A Honk process (or any) logging to `log_path`; terminated and reaped on the way out."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def setup_link(log_path: Path) -> str:
    """The one-time setup link a Honk in setup mode logs."""
    found = wait_for(
        lambda: re.search(r"(http://\S+/\?token=\S+) to register", log_path.read_text()),
        "the setup link in the log",
    )
    return found.group(1)
