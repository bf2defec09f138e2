"""Workspaces on disk: deleting them (whatever modes the agent left) and sweeping the ones no live
run holds.

There is no pool of parked workspaces any more (the module keeps its name for its importers): a
tree the agent wrote is never handed to another run, because a later git command on it, outside
the sandbox, would read what the agent planted. `<workspace_root>/.pool`, where older versions
parked trees, is deleted by the sweep. Everything here blocks on the file system and is called
through `asyncio.to_thread`; it never runs git.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import stat
import time
from collections.abc import Set
from pathlib import Path

POOL_DIR = ".pool"  # where older versions parked workspaces: swept, never used


def is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _umask() -> int:
    """The process umask, read without setting it (os.umask would race other threads)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def _open_up_dirs(top: Path) -> None:
    """Give every directory under `top` the mode git creates it with, so a `chmod 000` the
    agent left cannot stop a delete. Symlinks are never followed; no agent process runs while
    this does."""
    wanted = 0o777 & ~_umask()
    pending = [str(top)]
    while pending:
        directory = pending.pop()
        with contextlib.suppress(OSError):
            if not stat.S_ISDIR(os.lstat(directory).st_mode):
                continue
            os.chmod(directory, wanted)
            with os.scandir(directory) as children:
                pending += [c.path for c in children if c.is_dir(follow_symlinks=False)]


def delete_tree(path: Path) -> None:
    """Delete `path`, even through directories the agent made unreadable; a symlink is unlinked,
    never followed."""
    if not os.path.lexists(path):
        return
    if not is_real_dir(path):
        path.unlink(missing_ok=True)
        return
    _open_up_dirs(path)
    shutil.rmtree(path, ignore_errors=True)


def safe_id(run_id: str) -> str:
    """A run id as a directory name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", run_id)[:100]


# ---- startup sweep ---------------------------------------------------------------------------


async def sweep_stale(workspace_root: Path, keep: Set[str] = frozenset()) -> list[Path]:
    """Remove workspaces of runs not in `keep` whose lock no process holds, and any parked by an
    older version (call at startup)."""
    return await asyncio.to_thread(_sweep, workspace_root, {safe_id(k) for k in keep})


def _sweep(workspace_root: Path, keep: set[str]) -> list[Path]:
    removed: list[Path] = []
    if not workspace_root.is_dir():
        return removed
    pool = workspace_root / POOL_DIR
    if os.path.lexists(pool):
        delete_tree(pool)
        removed.append(pool)
    for child in workspace_root.iterdir():
        if not child.is_dir() or child.name.rsplit(".", 1)[0] in keep:
            continue
        lock = child / "lock"
        if not lock.exists():
            if time.time() - child.stat().st_mtime >= 60:  # else: being created right now
                delete_tree(child)
                removed.append(child)
            continue
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # in use by a live process
        try:
            delete_tree(child)
            removed.append(child)
        finally:
            os.close(fd)
    return removed
