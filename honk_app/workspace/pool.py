"""The pool of parked workspaces: where a finished run's clone waits for the next run of its
repository, so that run's checkout only rewrites the files that differ.

A parked entry is `<workspace_root>/.pool/<owner>/<repo>/<random>/` holding the run's
`{repo,git,lock}` and the git config Honk recorded. Only the holder of an entry's fcntl lock moves
or deletes it, so no two runs ever share one. Everything here blocks on the file system and is
called through `asyncio.to_thread`; it never runs git and imports nothing from the workspace
module, which drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Set
from pathlib import Path

POOL_DIR = ".pool"  # under workspace_root; a run's directory name never starts with "."
MAX_PARKED = 2  # per repository
PARKED_MAX_AGE_S = 86_400.0
PARKED_CONFIG = "honk-config"  # beside `lock`: the git config Honk recorded, checked on reuse


def pool_path(workspace_root: Path, full_name: str) -> Path:
    """Where the parked workspaces of repository `owner/repo` wait (names in lowercase)."""
    owner, repo = full_name.lower().split("/")
    return workspace_root / POOL_DIR / owner / repo


_GIT_DIR_KEPT = frozenset(
    {"HEAD", "config", "description", "index", "objects", "refs", "packed-refs", "info", "hooks"}
)


def is_real_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _entries(directory: Path) -> list[Path]:
    try:
        return [child for child in directory.iterdir() if is_real_dir(child)]
    except OSError:
        return []


def _mtime(path: Path) -> float:
    try:
        return os.lstat(path).st_mtime
    except OSError:
        return 0.0


def _umask() -> int:
    """The process umask, read without setting it (os.umask would race other threads)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


def open_up_tree(top: Path, *, files: bool = True) -> None:
    """Give every directory under `top` (and, with `files`, every file) the mode git creates it
    with, so a `chmod 000` the agent left cannot stop a reset, clean or delete, and no file
    keeps a mode the commit does not have. Symlinks are never followed; no agent process runs
    while this does."""
    mask = ~_umask()
    pending = [str(top)]
    while pending:
        directory = pending.pop()
        with contextlib.suppress(OSError):
            mode = os.lstat(directory).st_mode
            if not stat.S_ISDIR(mode):
                continue
            if stat.S_IMODE(mode) != 0o777 & mask:
                os.chmod(directory, 0o777 & mask)
            with os.scandir(directory) as children:
                for child in children:
                    if child.is_dir(follow_symlinks=False):
                        pending.append(child.path)
                    elif files and child.is_file(follow_symlinks=False):
                        mode = child.stat(follow_symlinks=False).st_mode
                        wanted = (0o777 if mode & stat.S_IXUSR else 0o666) & mask
                        if stat.S_IMODE(mode) != wanted:
                            os.chmod(child.path, wanted)


def delete_tree(path: Path) -> None:
    """Delete `path`, even through directories the agent made unreadable; a symlink is unlinked,
    never followed."""
    if not os.path.lexists(path):
        return
    if not is_real_dir(path):
        path.unlink(missing_ok=True)
        return
    open_up_tree(path, files=False)
    shutil.rmtree(path, ignore_errors=True)


def _strip_git_dir(git_dir: Path) -> None:
    """Back to what a fresh shared clone holds: no reflogs or objects of its own (the mirror has
    every object a new run needs), only the stock hooks and info files."""
    kept = {git_dir / "objects" / "info": {"alternates"}, git_dir / "info": {"exclude"}}
    for directory in (git_dir, git_dir / "objects", *kept, git_dir / "objects" / "pack"):
        for child in directory.iterdir() if is_real_dir(directory) else ():
            if directory == git_dir:
                keep = child.name in _GIT_DIR_KEPT
            elif directory == git_dir / "objects":
                keep = child.name in ("info", "pack")
            else:
                keep = child.name in kept.get(directory, set())
            if not keep:
                delete_tree(child)
    for hook in (git_dir / "hooks").iterdir() if is_real_dir(git_dir / "hooks") else ():
        if not hook.name.endswith(".sample"):
            delete_tree(hook)


def move_to_pool(root: Path, pool: Path, config: bytes) -> bool:
    """Move a reset root into the pool (its lock is held by the caller), keeping the newest
    MAX_PARKED entries of the repository."""
    delete_tree(root / "scratch")
    delete_tree(root / "repo" / ".git")
    _strip_git_dir(root / "git")
    (root / PARKED_CONFIG).write_bytes(config)
    os.utime(root)
    pool.mkdir(parents=True, exist_ok=True)
    entry = pool / secrets.token_hex(8)
    os.rename(root, entry)
    others = sorted((e for e in _entries(pool) if e != entry), key=_mtime)
    for old in others[: max(0, len(others) + 1 - MAX_PARKED)]:
        _try_delete_entry(old)  # one being claimed right now leaves the pool anyway
    sweep_pool(pool.parent.parent)
    return True


def claim_parked(pool: Path, workspace_root: Path, run_prefix: str) -> tuple[Path, int] | None:
    """Take the newest parked workspace of a repository: lock it, then rename it to a root of
    this run (`<run_prefix>.<random>`). Only the holder of an entry's lock moves or deletes it,
    so no two runs share one."""
    for entry in sorted(_entries(pool), key=_mtime, reverse=True):
        try:
            lock_fd = os.open(entry / "lock", os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            root = workspace_root / f"{run_prefix}.{secrets.token_hex(4)}"
            os.rename(entry, root)
        except OSError:  # taken or deleted by someone else meanwhile
            os.close(lock_fd)
            continue
        return root, lock_fd
    return None


def parked_problem(root: Path, mirror: Path) -> str | None:
    """Why a claimed root is not as Honk parked it (one sentence), or None if it is: real
    directories, the config Honk recorded, and objects borrowed from this repository's mirror.
    A file that cannot be read raises OSError."""
    git_dir = root / "git"
    config = git_dir / "config"
    if not (is_real_dir(root / "repo") and is_real_dir(git_dir)):
        return "A parked workspace lost its work tree or git directory."
    recorded = (root / PARKED_CONFIG).read_bytes()
    if not (stat.S_ISREG(os.lstat(config).st_mode) and recorded == config.read_bytes()):
        return "A parked workspace's git config is not the one Honk recorded."
    alternates = (git_dir / "objects" / "info" / "alternates").read_text().strip()
    if Path(alternates).resolve() != (mirror / "objects").resolve():
        return "A parked workspace borrows objects from another mirror."
    return None


def renew_dirs(root: Path) -> None:
    """What a claimed root lacks: a `.git` file naming its git dir at the new path, an empty
    scratch dir."""
    dot_git = root / "repo" / ".git"
    delete_tree(dot_git)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(dot_git, flags, 0o666), "w") as file:
        file.write(f"gitdir: {root / 'git'}\n")
    delete_tree(root / "scratch")
    (root / PARKED_CONFIG).unlink(missing_ok=True)


def _try_delete_entry(entry: Path) -> bool:
    """Delete a parked entry unless someone holds its lock (claiming or parking it)."""
    try:
        lock_fd = os.open(entry / "lock", os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        if not is_real_dir(entry):
            return False  # claimed or deleted meanwhile
        delete_tree(entry)  # parked entries always hold a lock file: this one is damaged
        return True
    except OSError:
        return False
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        delete_tree(entry)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(lock_fd)


def sweep_pool(pool_root: Path) -> list[Path]:
    """Delete parked workspaces older than PARKED_MAX_AGE_S or whose mirror is gone."""
    removed = []
    now = time.time()
    for repo_dir in [repo for owner in _entries(pool_root) for repo in _entries(owner)]:
        for entry in _entries(repo_dir):
            alternates = entry / "git" / "objects" / "info" / "alternates"
            try:
                mirror_there = Path(alternates.read_text().strip()).is_dir()
            except OSError:
                mirror_there = False
            stale = now - _mtime(entry) >= PARKED_MAX_AGE_S or not mirror_there
            if stale and _try_delete_entry(entry):
                removed.append(entry)
    return removed


def safe_id(run_id: str) -> str:
    """A run id as a directory name."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", run_id)[:100]


# ---- startup sweep ---------------------------------------------------------------------------


async def sweep_stale(workspace_root: Path, keep: Set[str] = frozenset()) -> list[Path]:
    """Remove workspaces of runs not in `keep` whose lock no process holds, and stale parked
    ones (call at startup)."""
    return await asyncio.to_thread(_sweep, workspace_root, {safe_id(k) for k in keep})


def _sweep(workspace_root: Path, keep: set[str]) -> list[Path]:
    removed: list[Path] = []
    if not workspace_root.is_dir():
        return removed
    for child in workspace_root.iterdir():
        if child.name == POOL_DIR or not child.is_dir() or child.name.rsplit(".", 1)[0] in keep:
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
    return removed + sweep_pool(workspace_root / POOL_DIR)
