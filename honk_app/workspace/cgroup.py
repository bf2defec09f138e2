"""A cgroup (v2) of its own for each sandboxed command, where the host delegates one to Honk.

Where it applies, the kernel enforces the command's memory (`memory.max`, no swap, the whole
command killed on OOM) and its number of processes (`pids.max`) across everything it starts,
and `cpu.stat` gives its total CPU time; `memory.events` and `pids.events` say which limit it
hit. Elsewhere (cgroup v1, nothing delegated) Honk relies on rlimits (see `limits.py`).

Honk never takes a cgroup it was not given. `HONK_SANDBOX_CGROUP` empty: Honk's own cgroup, if
it is writable and already passes `memory` and `pids` to its children (a host that runs Honk in
the root cgroup). A path: that cgroup, delegated to Honk (systemd: `Delegate=memory pids` with
`DelegateSubgroup=main`, and the path of the unit's cgroup); Honk enables the two controllers
there if needed. `off`: rlimits only.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from honk_app.models import Limits, Reason

log = logging.getLogger("honk.sandbox")

CGROUP_ROOT = Path("/sys/fs/cgroup")
NEEDED = frozenset({"memory", "pids"})
# The command's first process moves itself into its cgroup, then becomes the command: nothing
# it starts can run outside it (Python's subprocess cannot spawn straight into a cgroup).
ENTER = 'echo $$ > "$1" && shift && exec "$@"'


def own_cgroup() -> Path | None:
    """Honk's own cgroup v2 directory, from /proc/self/cgroup."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return CGROUP_ROOT / line[3:].lstrip("/")
    return None


def _words(path: Path) -> set[str]:
    try:
        return set(path.read_text().split())
    except OSError:
        return set()


def _counter(path: Path, key: str) -> int:
    """One `key value` line of a cgroup file such as memory.events; 0 if absent."""
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def _can_enter(parent: Path) -> bool:
    """Whether a process of ours can move itself into a child of `parent` (it needs write access
    to cgroup.procs up to the common ancestor), tried once with a throwaway child."""
    probe = parent / f"honk-probe-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
        sh = shutil.which("sh") or "/bin/sh"
        done = subprocess.run(
            [sh, "-c", ENTER, "honk-cgroup", str(probe / "cgroup.procs"), "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        return done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        _rmdir(probe)


@functools.cache
def delegated_parent(setting: str) -> Path | None:
    """The cgroup under which each command gets a child of its own, or None: rlimits only."""
    if setting == "off" or not (CGROUP_ROOT / "cgroup.controllers").is_file():
        return None
    parent = Path(setting) if setting else own_cgroup()
    if parent is None or not os.access(parent, os.W_OK):
        if setting:
            log.warning("HONK_SANDBOX_CGROUP %s is not a writable cgroup: rlimits only", setting)
        return None
    if not _words(parent / "cgroup.subtree_control") >= NEEDED:
        if not setting:
            return None
        try:
            (parent / "cgroup.subtree_control").write_text("+memory +pids")
        except OSError as exc:
            log.warning("cannot enable memory and pids in %s (%s): rlimits only", parent, exc)
            return None
    if not _can_enter(parent):
        log.warning("cannot move commands into cgroups under %s: rlimits only", parent)
        return None
    log.info("each sandboxed command gets a cgroup of its own under %s", parent)
    return parent


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


class CommandCgroup:
    """The cgroup of one command: created before it starts, removed after it ends."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path = path
        self.limits = limits

    @classmethod
    def create(cls, parent: Path, limits: Limits) -> CommandCgroup | None:
        path = parent / f"honk-{secrets.token_hex(6)}"
        memory = str(limits.max_memory_mb * 1024 * 1024) if limits.max_memory_mb else "max"
        values = {
            "memory.max": memory,
            "pids.max": str(limits.max_procs) if limits.max_procs else "max",
            "memory.swap.max": "0" if limits.max_memory_mb else "max",
            "memory.oom.group": "1",  # an OOM kill ends the whole command, not one process
        }
        try:
            path.mkdir()
            for name, value in values.items():
                try:
                    (path / name).write_text(value)
                except OSError:
                    if name in ("memory.max", "pids.max"):
                        raise
        except OSError as exc:
            log.warning("no cgroup for this command (%s): rlimits only", exc)
            _rmdir(path)
            return None
        return cls(path, limits)

    def wrap(self, argv: list[str]) -> list[str]:
        sh = shutil.which("sh") or "/bin/sh"
        return [sh, "-c", ENTER, "honk-cgroup", str(self.path / "cgroup.procs"), *argv]

    def tripped(self) -> Reason | None:
        """The limit the command has hit, read from the cgroup's counters."""
        if _counter(self.path / "memory.events", "oom_kill"):
            return "memory"
        if _counter(self.path / "pids.events", "max"):
            return "procs"
        cpu_us = _counter(self.path / "cpu.stat", "usage_usec")
        if self.limits.max_cpu_s and cpu_us > self.limits.max_cpu_s * 1_000_000:
            return "cpu"
        return None

    def kill(self) -> None:
        """SIGKILL everything in the cgroup, even what left the command's process group."""
        try:
            (self.path / "cgroup.kill").write_text("1")
        except OSError:
            for pid in _words(self.path / "cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)

    def remove(self) -> None:
        """Kill what is left and remove the cgroup (blocking: call it in a thread)."""
        for _ in range(100):
            self.kill()
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)  # killed processes take a moment to leave
        log.warning("could not remove the command's cgroup %s", self.path)
