"""Limits on what one sandboxed command (or run) may use, and the sentence that says which it hit.

Per command: processes (threads count too), memory, CPU time, the size of any one file. Per
run: the disk used by the workspace and the sandbox's temp dir (HOME, TMPDIR) together.

How each is enforced (the README says where which applies):
- rlimits, always, set by a bash prelude inside the sandbox (`ulimit_prelude`): RLIMIT_CPU
  (SIGXCPU at the limit, SIGKILL a few seconds later), RLIMIT_FSIZE (SIGXFSZ or EFBIG),
  RLIMIT_DATA (malloc fails: a heap hog dies with its own "out of memory"), RLIMIT_STACK's hard
  limit (the stack is not data), no core files, and RLIMIT_NPROC. These are per process, except
  RLIMIT_NPROC: per user, which inside bubblewrap's user namespace means per sandbox; the kernel
  ignores it for uid 0, so when Honk runs as root only the watchdog below counts processes.
- a cgroup v2 per command where the host delegates one (`cgroup.py`): memory and processes then
  hold for the whole command, and CPU time is summed over all its processes.
- a watchdog (`Guard`) while the command runs: it counts the command's processes (every 0.1 s,
  from /proc) and the workspace's disk use (cheaply through statvfs, walking the tree only when
  the filesystem grew enough to matter), and kills the command at the first limit passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import shutil
import signal
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from honk_app.models import Limits, Reason
from honk_app.workspace.cgroup import CommandCgroup

log = logging.getLogger("honk.sandbox")

MB = 1024 * 1024
CPU_GRACE_S = 5  # SIGXCPU at the limit, SIGKILL this much later if it is caught
PROC_POLL_S = 0.1
DISK_POLL_S = 0.5
MIN_ENTRY_BYTES = 4096  # an empty file costs an inode and a directory entry all the same
# What a program prints when a limit made a call fail (looked for only if the command failed).
MARKERS: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    ("cpu", ("CPU time limit exceeded",)),
    ("file", ("File size limit exceeded", "File too large")),
    (
        "memory",
        (
            "MemoryError",
            "Cannot allocate memory",
            "std::bad_alloc",
            "JavaScript heap out of memory",
            "java.lang.OutOfMemoryError",
            "runtime: out of memory",
            "xmalloc: cannot allocate",
        ),
    ),
    (
        "procs",
        (
            "fork: retry: Resource temporarily unavailable",
            "fork: Resource temporarily unavailable",
            "can't start new thread",
            "unable to create native thread",
            "unable to create new native thread",
        ),
    ),
)


DEFAULT_LIMITS = Limits()


def _clamped(res: int, soft: int, hard: int) -> tuple[int, int]:
    """`soft` and `hard` lowered to Honk's own hard limit, which nothing it starts can raise."""
    current = resource.getrlimit(res)[1]
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
    return min(soft, hard), hard


def ulimit_prelude(limits: Limits, *, nproc: bool, cpu: bool = True) -> str:
    """bash that sets the rlimits, then becomes "$@". `nproc` only inside bubblewrap, where it
    counts the sandbox's processes; outside, it would count every process of Honk's user."""
    steps: list[tuple[str, int, int, int]] = [("c", resource.RLIMIT_CORE, 0, 0)]
    if cpu and limits.max_cpu_s:
        cpu_s = limits.max_cpu_s
        steps.append(("t", resource.RLIMIT_CPU, cpu_s, cpu_s + CPU_GRACE_S))
    if limits.max_file_mb:
        size = limits.max_file_mb * MB
        steps.append(("f", resource.RLIMIT_FSIZE, size, size))
    if limits.max_memory_mb:
        size = limits.max_memory_mb * MB
        steps.append(("d", resource.RLIMIT_DATA, size, size))
        stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
        soft = size if stack == resource.RLIM_INFINITY else min(stack, size)
        steps.append(("s", resource.RLIMIT_STACK, soft, size))
    if nproc and limits.max_procs:
        steps.append(("u", resource.RLIMIT_NPROC, limits.max_procs, limits.max_procs))
    script = []
    for flag, res, soft, hard in steps:
        soft, hard = _clamped(res, soft, hard)
        unit = 1024 if flag in "fdsc" else 1  # bash counts these in KiB
        script.append(f"ulimit -S -{flag} {soft // unit} && ulimit -H -{flag} {hard // unit}")
    # bash's exec exports SHLVL: env drops it, so "$@" gets exactly the environment Honk chose
    env = shutil.which("env") or "/usr/bin/env"
    return " && ".join([*script, f'exec {env} -u SHLVL "$@"'])


def limited(
    argv: Sequence[str], limits: Limits, *, bash: str, nproc: bool, cpu: bool = True
) -> list[str]:
    """`argv` started through the rlimit prelude."""
    return [bash, "-c", ulimit_prelude(limits, nproc=nproc, cpu=cpu), "honk-limits", *argv]


def diagnose(limits: Limits, *, returncode: int, output: str) -> Reason | None:
    """The limit a finished command most likely hit, from how it ended; None if it succeeded."""
    if returncode == 0:
        return None
    if limits.max_cpu_s and returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return "cpu"
    if limits.max_file_mb and returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        return "file"
    for reason, markers in MARKERS:
        if limits.enabled(reason) and any(marker in output for marker in markers):
            return reason
    return None


# ---- processes -----------------------------------------------------------------------------


def count_tasks(root: int, stop_above: int) -> int:
    """Threads of `root` and of all its descendants (bubblewrap's pid 1 inherits orphans, so a
    sandbox's processes stay in the tree), counting no further than `stop_above + 1`."""
    count, stack, seen = 0, [root], {root}
    while stack:
        pid = stack.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        count += len(tids)
        if count > stop_above:
            return count
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                    children = [int(c) for c in f.read().split()]
            except (OSError, ValueError):
                continue
            stack.extend(c for c in children if c not in seen)
            seen.update(children)
    return count


# ---- disk ----------------------------------------------------------------------------------


def tree_bytes(roots: Sequence[Path], stop_above: int) -> int:
    """Bytes allocated under `roots` (at least MIN_ENTRY_BYTES an entry, hard links once),
    without following symlinks; stops counting once past `stop_above`."""
    total, stack, seen, opened = 0, [str(r) for r in roots], set(), set()
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except PermissionError:  # a directory the command made unreadable: it is Honk's user's
            if directory not in opened:
                opened.add(directory)
                with contextlib.suppress(OSError):
                    os.chmod(directory, os.stat(directory).st_mode | stat.S_IRWXU)
                    stack.append(directory)
            continue
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
            total += max(info.st_blocks * 512, MIN_ENTRY_BYTES)
            if total > stop_above:
                return total
            if stat.S_ISDIR(info.st_mode):
                stack.append(entry.path)
    return total


class DiskMeter:
    """The disk a run's workspace and temp dir use, re-measured only when it could matter: a
    walk happens when the filesystems holding them grew by more than the room left."""

    def __init__(self, roots: Sequence[Path], cap_mb: int) -> None:
        self.roots = list(roots)
        self.cap = cap_mb * MB
        self.size: int | None = None  # bytes at the last walk
        self.used_then = 0  # the filesystems' use at that walk
        self.stale = False  # the last walk stopped early: a lower bound only
        self.lock = threading.Lock()  # the watchdog's walk and the final one may overlap

    def fs_used(self) -> int:
        used, devices = 0, set()
        for root in self.roots:
            with contextlib.suppress(OSError):
                device = os.stat(root).st_dev
                if device not in devices:
                    devices.add(device)
                    fs = os.statvfs(root)
                    used += (fs.f_blocks - fs.f_bfree) * fs.f_frsize
        return used

    def start(self) -> int:
        """Before a command (blocking): the size it may grow to. A workspace already past the
        cap may not grow, but may shrink, so the agent can clean up."""
        with self.lock:
            if self.size is None or self.stale:
                self.used_then = self.fs_used()
                self.size = tree_bytes(self.roots, stop_above=2**62)
                self.stale = False
            return max(self.cap, self.size)

    def over(self, allowance: int) -> bool:
        """Whether the tree is now larger than `allowance` (blocking: walks when needed)."""
        with self.lock:
            if self.size is None:
                return False
            used = self.fs_used()
            if self.size + used - self.used_then <= allowance:
                return False
            size = tree_bytes(self.roots, stop_above=allowance)
            self.size, self.used_then = size, used
            self.stale = size > allowance
            return self.stale


# ---- the watchdog --------------------------------------------------------------------------


class Guard:
    """Watches one running command and stops it at the first limit it passes."""

    def __init__(
        self,
        limits: Limits,
        pid: int,
        *,
        stop: Callable[[], None],
        cgroup: CommandCgroup | None = None,
        disk: DiskMeter | None = None,
        allowance: int = 0,
    ) -> None:
        self.limits, self.pid, self.stop = limits, pid, stop
        self.cgroup, self.disk, self.allowance = cgroup, disk, allowance
        self.tripped: Reason | None = None

    def trip(self, reason: Reason) -> None:
        if self.tripped is None:
            self.tripped = reason
            self.stop()
            if self.cgroup is not None:
                self.cgroup.kill()

    async def watch(self) -> None:
        """Until cancelled (the command ended) or a limit is passed."""
        try:
            await asyncio.gather(self._processes(), self._disk())
        except Exception:  # the command goes on; its rlimits and time limit still hold
            log.exception("the sandbox's watchdog failed")

    async def _processes(self) -> None:
        cap = self.limits.max_procs
        while self.tripped is None:
            if self.cgroup is not None:
                reason = await asyncio.to_thread(self.cgroup.tripped)
                if reason is not None:
                    self.trip(reason)
            elif cap and await asyncio.to_thread(count_tasks, self.pid, cap) > cap:
                self.trip("procs")
            await asyncio.sleep(PROC_POLL_S)

    async def _disk(self) -> None:
        if self.disk is None:
            return
        while self.tripped is None:
            began = time.monotonic()
            if await asyncio.to_thread(self.disk.over, self.allowance):
                self.trip("disk")
            # a slow walk (a huge tree) is not repeated back to back
            await asyncio.sleep(max(DISK_POLL_S, 4 * (time.monotonic() - began)))

    async def final(self, returncode: int, output: str) -> Reason | None:
        """After the command ended: the limit it hit, if any."""
        if self.tripped is None and self.cgroup is not None:
            self.tripped = await asyncio.to_thread(self.cgroup.tripped)
        disk = self.disk
        if self.tripped is None and disk and await asyncio.to_thread(disk.over, self.allowance):
            self.tripped = "disk"
        return self.tripped or diagnose(self.limits, returncode=returncode, output=output)
