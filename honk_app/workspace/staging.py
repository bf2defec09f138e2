"""Staging a work tree the agent wrote, and undoing its changes to some paths (for
workspace/clone.py: `git` names the workspace's git dir and work tree in `where`).

The file listings this reads (`git ls-files`, `git diff --name-status`) name files the agent
made, as many as it likes: Honk reads them capped (workspace/git.py `run_git_capped`) and picks
out what it needs without splitting them into a list of every file. A listing longer than its
cap leaves the change "not inspected": nothing is staged from it and the push is blocked
(LISTING_SENTENCE).
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from honk_app.workspace.git import MAX_DIFF_BYTES, run_git_bytes, run_git_capped

# Of one `git ls-files` listing, Honk reads this much: `--stage` lists every tracked file (about
# 80 bytes each: a 200,000-file repository), `--others` every untracked one.
MAX_LISTING_BYTES = 16 << 20
LISTING_SENTENCE = (
    "The work tree holds more files than Honk lists, so Honk could not check the change for "
    "credentials and did not push it."
)
_GITLINK = b"160000 "
# What the policy reads: every byte as text (a `-diff` or `binary` attribute must not turn an added
# line into "Binary files differ"), no textconv or external driver, gitlink changes shown.
DIFF = (
    "diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv", "--no-renames",
    "--ignore-submodules=none", "--src-prefix=a/", "--dst-prefix=b/",
)  # fmt: skip


def _records_at(data: bytes, marker: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each NUL-terminated record of `data` that contains `marker`."""
    at = data.find(marker)
    while at != -1:
        start = data.rfind(b"\0", 0, at) + 1
        end = data.find(b"\0", at)
        if end == -1:
            return  # a record cut short
        yield start, end
        at = data.find(marker, end)


def gitlinks(ls_files_stage: bytes) -> dict[bytes, bytes]:
    """Path → commit of every gitlink (submodule entry) in `git ls-files --stage -z` output."""
    found = {}
    for start, end in _records_at(ls_files_stage, _GITLINK):
        meta, _, path = ls_files_stage[start:end].partition(b"\t")
        fields = meta.split(b" ")
        if path and fields[0] == _GITLINK.strip() and len(fields) == 3:
            found[path] = fields[1]
    return found


def nested_repos(ls_files_others: bytes) -> list[bytes]:
    """The repositories (`path/`) in `git ls-files --others -z` output."""
    return [ls_files_others[s:e] for s, e in _records_at(ls_files_others, b"/\0") if e > s]


def changes_under(name_status: bytes, wanted: Sequence[str]) -> list[tuple[bytes, bytes]]:
    """(status, path) of each change in `git diff --name-status -z --no-renames` output that is
    one of `wanted` or lies under one of them (a directory)."""
    prefixes = tuple(w + "/" for w in wanted)
    exact = set(wanted)
    fields = name_status.split(b"\0")
    found = []
    for status, path in zip(fields[0::2], fields[1::2], strict=False):
        name = path.decode("utf-8", "replace")
        if name in exact or name.startswith(prefixes):
            found.append((status, path))
    return found


def remove_files(root: Path, paths: Sequence[bytes]) -> None:
    """Delete the files (or symbolic links) at `paths` under `root`, following no symbolic link
    on the way there: a path whose directory is not a real one under `root` is not git's to
    list, so it is left alone, and so is a directory."""
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for path in paths:
            try:
                _remove_in(top, path.split(b"/"))
            except OSError as exc:
                if exc.errno not in _LEFT_ALONE:
                    raise
    finally:
        os.close(top)


# gone, not a directory, a directory (EISDIR; EPERM on Linux), a symbolic link on the way (ELOOP),
# or not Honk's to delete (EACCES): left as it is, the change still names it (and is not pushed)
_LEFT_ALONE = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EPERM, errno.ELOOP, errno.EACCES}
)


def _remove_in(top: int, parts: Sequence[bytes]) -> None:
    if any(part in (b"", b".", b"..") for part in parts):
        return  # not a name git lists
    fds: list[int] = []
    try:
        where = top
        for part in parts[:-1]:
            where = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=where)
            fds.append(where)
        os.unlink(parts[-1], dir_fd=where)
    finally:
        for fd in fds:
            os.close(fd)


# ---- git ----------------------------------------------------------------------------------------


async def stage(
    where: Sequence[str],
    cwd: Path,
    *,
    env: Mapping[str, str] | None,
    max_bytes: int = MAX_LISTING_BYTES,
) -> tuple[str, ...] | None:
    """`git add -A` of the whole tree that never looks inside a submodule or
    a nested repository, and never stages a gitlink; the nested repositories it left out, or
    None when a file listing was longer than Honk reads (the index is then not what `commit`
    would commit).

    For a submodule whose commit is unchanged, `add` runs `git status` inside it, which reads
    the config found there (the agent's: a filter, an fsmonitor) and runs it outside the
    sandbox; and `add` records a nested repository as a gitlink, a submodule pointing at any
    commit anywhere. So both are left out by pathspec (which needs every one of them: a cut
    listing stages nothing), and a gitlink that appears anyway (a repository made while this
    ran) is dropped from the index again."""
    action = "read the changes"

    async def ls_files(*args: str) -> tuple[bytes, bool]:
        return await run_git_capped(
            *where, "ls-files", *args, "-z", action=action, max_bytes=max_bytes,
            cwd=cwd, env=env,
        )  # fmt: skip

    async def git(*args: str, input_data: bytes) -> None:
        await run_git_bytes(*where, *args, action=action, cwd=cwd, env=env, input_data=input_data)

    staged, cut = await ls_files("--stage")
    if cut:
        return None
    kept = gitlinks(staged)
    others, cut = await ls_files("--others", "--exclude-standard")
    if cut:
        return None
    nested = nested_repos(others)
    del staged, others
    specs = [b":(top)", *(b":(exclude,literal)" + path for path in (*kept, *nested))]
    await git(
        "add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul", input_data=b"\0".join(specs)
    )
    staged, cut = await ls_files("--stage")
    if cut:
        return None
    if added := [path for path, sha in gitlinks(staged).items() if kept.get(path) != sha]:
        await git("update-index", "--force-remove", "-z", "--stdin", input_data=_nul(added))
    return tuple(path.decode("utf-8", "replace") for path in nested)


async def restore(
    where: Sequence[str], cwd: Path, *, env: Mapping[str, str], base_sha: str, wanted: Sequence[str]
) -> None:
    """Undo every change under `wanted` (files or directories) against `base_sha`, as the
    snapshot index named by `env` shows them: the work tree and the workspace's own index.

    A file the base commit does not have is deleted directly (and dropped from the index):
    `git restore` fails on a path git does not know, and `add -A` with an exclude pathspec (a
    repository with a submodule) does not stage an untracked file in a subdirectory."""
    listing, cut = await run_git_capped(
        *where, *DIFF, "--name-status", "-z", base_sha, action="list the changes",
        max_bytes=MAX_DIFF_BYTES, cwd=cwd, env=env,
    )  # fmt: skip
    if cut:  # the last name may be cut short (the diff is then cut too: never pushed)
        listing = listing[: listing.rfind(b"\0") + 1]
    targets = await asyncio.to_thread(changes_under, listing, wanted)
    action = "restore files"
    if new := [path for status, path in targets if status == b"A"]:
        await asyncio.to_thread(remove_files, cwd, new)
        remove = ("update-index", "--force-remove", "-z", "--stdin")
        await run_git_bytes(*where, *remove, action=action, cwd=cwd, input_data=_nul(new))
    if known := [b":(literal)" + path for status, path in targets if status != b"A"]:
        back = ("restore", f"--source={base_sha}", "--staged", "--worktree")
        await run_git_bytes(
            *where, *back, "--pathspec-from-file=-", "--pathspec-file-nul", action=action,
            cwd=cwd, input_data=_nul(known),
        )  # fmt: skip


def _nul(paths: Sequence[bytes]) -> bytes:
    return b"".join(path + b"\0" for path in paths)
