"""Git for one run: a cheap clone per run of the repository's mirror, commit and push.

Git runs through workspace/git.py, which keeps the installation token out of every file and keeps
the shared mirrors. Each run's git directory sits beside its work tree, not inside it: the sandbox
can read it (so the agent may run `git diff`) but not write it, so hooks or config the agent plants
are never run by Honk's own git, which is the one that holds the token. Layout:
`<workspace_root>/<run_id>.<random>/{repo,git,scratch,lock}` (the lock is held while the workspace
is in use, so a sweep never removes a live one).

The agent can still write anything in the work tree, nested repositories included. Honk's git
reads that tree (to diff and commit it) but never looks inside a submodule or a nested repository:
either would make git run itself there, with config the agent wrote (a filter, fsmonitor), outside
the sandbox; and a nested repository would otherwise be committed as a gitlink, a submodule
pointing anywhere. A work tree is never reused by another run: a finished workspace is deleted.
(Reusing one would hand the next run's git a tree the agent wrote; making that safe means hashing
every file against the mirror first, which costs about what a fresh checkout does: 5,000 files
check out in 0.2-0.6 s on a fast file system.)
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from honk_app.safety.push_rules import OWN_PREFIX
from honk_app.workspace.git import (
    LOCAL_TIMEOUT_S,
    MAX_DIFF_BYTES,
    NETWORK_TIMEOUT_S,
    DiffRead,
    DiffStat,
    GitError,
    check_branch,
    mirror_lock,
    mirror_path,
    parse_numstat,
    parse_shortstat,
    ref_sha,
    refresh_mirror,
    run_git,
    run_git_bytes,
    run_git_capped,
)
from honk_app.workspace.pool import delete_tree, safe_id
from honk_app.workspace.staging import DIFF, MAX_LISTING_BYTES, restore, stage

PushMode = Literal["own", "pr_head"]


# ---- the workspace ------------------------------------------------------------------------------


@dataclass
class Workspace:
    """One run's clone. `path` is the work tree (given to the sandbox), `git_dir` lies beside it."""

    root: Path
    full_name: str
    clone_url: str
    branch: str
    base_branch: str
    mode: PushMode  # "own": Honk's branch, pushed with a lease; "pr_head": fast-forward only
    base_sha: str  # where this run started: diffs are against it
    remote_sha: str | None  # the branch on GitHub as Honk last saw it (the lease)
    mirror: Path
    head_sha: str = ""  # Honk's last commit in this run (base_sha until the first commit)
    left_out: tuple[str, ...] = ()  # nested repositories the last diff or commit did not take
    default_branch: str = ""  # the repository's; never pushed to, whatever the caller decided
    max_listing_bytes: int = field(default=MAX_LISTING_BYTES, repr=False)  # per `ls-files`
    _lock_fd: int | None = field(default=None, repr=False)
    _config: bytes = field(default=b"", repr=False)

    @property
    def path(self) -> Path:
        return self.root / "repo"

    @property
    def git_dir(self) -> Path:
        return self.root / "git"

    @property
    def scratch_dir(self) -> Path:
        """For the sandbox's temp dir (HOME, TMPDIR, reports): outside the diff, swept with us."""
        return self.root / "scratch"

    @property
    def readonly_paths(self) -> tuple[Path, ...]:
        """What a sandbox must be able to read for `git` to work inside it."""
        return (self.git_dir, self.mirror)

    async def git(
        self,
        *args: str,
        action: str,
        env: Mapping[str, str] | None = None,
        input_text: str | None = None,
        token: str | None = None,
        timeout_s: float = LOCAL_TIMEOUT_S,
        check: bool = True,
    ) -> tuple[int, str]:
        """Run git on this workspace, naming its git dir and work tree explicitly (so a `.git`
        the agent replaced in the work tree is never followed)."""
        data = None if input_text is None else input_text.encode()
        code, out = await self._git_bytes(
            *args, action=action, env=env, input_data=data, token=token, timeout_s=timeout_s,
            check=check,
        )  # fmt: skip
        return code, out.decode("utf-8", "replace")

    async def _git_bytes(
        self,
        *args: str,
        action: str,
        env: Mapping[str, str] | None = None,
        input_data: bytes | None = None,
        token: str | None = None,
        timeout_s: float = LOCAL_TIMEOUT_S,
        check: bool = True,
    ) -> tuple[int, bytes]:
        url = self.clone_url if token else None
        return await run_git_bytes(
            *self._where(), *args, action=action, cwd=self.path, env=env, input_data=input_data,
            token=token, url=url, timeout_s=timeout_s, check=check,
        )  # fmt: skip

    def _where(self) -> tuple[str, ...]:
        return ("--git-dir", str(self.git_dir), "--work-tree", str(self.path))

    async def _stage(self, env: Mapping[str, str] | None = None) -> bool:
        """`git add -A` as workspace/staging.py does it: never inside a submodule or a nested
        repository, never a gitlink. False when the work tree lists more files than Honk reads
        (`max_listing_bytes`): then the index is not what `commit` would commit."""
        await self._restore_config()
        left_out = await stage(self._where(), self.path, env=env, max_bytes=self.max_listing_bytes)
        if left_out is None:
            return False
        self.left_out = left_out
        return True

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[dict[str, str] | None]:
        """A throwaway index holding the whole work tree (untracked files too), staged exactly
        as `commit` stages it: the environment naming it, or None when the work tree lists more
        files than Honk reads (nothing then may be pushed)."""
        index = self.git_dir / f"honk-snapshot-{secrets.token_hex(4)}.index"
        if (self.git_dir / "index").is_file():
            # copy2 keeps the index's mtime, which git's racy-clean check compares file times to
            await asyncio.to_thread(shutil.copy2, self.git_dir / "index", index)
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            yield env if await self._stage(env) else None
        finally:
            index.unlink(missing_ok=True)

    async def diff(self, max_bytes: int = MAX_DIFF_BYTES) -> DiffRead:
        """The unified diff of what `commit` would commit, against `base_sha`: every byte as
        text, whatever `.gitattributes` says (the policy must see what is pushed). At most
        `max_bytes` of it; a longer one comes with the totals of `--shortstat` instead."""
        async with self._snapshot() as env:
            if env is None:
                return DiffRead(b"", complete=False, listing_cut=True)
            args = (*self._where(), *DIFF, "--text", self.base_sha)
            data, cut = await run_git_capped(
                *args, action="diff", max_bytes=max_bytes, cwd=self.path, env=env
            )
            if not cut:
                return DiffRead(data)
            args = (*DIFF, "--text", "--shortstat", self.base_sha)
            _, out = await self.git(*args, action="count the changes", env=env)
        return DiffRead(data, complete=False, totals=parse_shortstat(out))

    async def numstat(self, max_bytes: int = MAX_DIFF_BYTES) -> DiffStat:
        """Files changed against `base_sha`, with lines added and removed, as far as `max_bytes`
        of listing go (a cut listing means a cut diff, which is never pushed). Parsed in a
        thread: 8 MiB of listing is half a million files."""
        async with self._snapshot() as env:
            if env is None:
                return DiffStat(complete=False)
            args = (*self._where(), *DIFF, "--numstat", "-z", self.base_sha)
            data, cut = await run_git_capped(
                *args, action="count the changes", max_bytes=max_bytes, cwd=self.path, env=env
            )
        if cut:  # the last record may be cut short
            data = data[: data.rfind(b"\0") + 1]
        stat = await asyncio.to_thread(lambda: parse_numstat(data.decode("utf-8", "replace")))
        return DiffStat(stat.files, complete=not cut)

    async def restore_paths(self, paths: Sequence[str]) -> None:
        """Undo every change under `paths` (files or directories), deleting new files there."""
        wanted = [p.strip("/") for p in paths if p.strip("/")]
        if not wanted:
            return
        async with self._snapshot() as env:
            if env is None:
                return  # the change is not inspected, so never pushed
            await restore(self._where(), self.path, env=env, base_sha=self.base_sha, wanted=wanted)

    async def commit(
        self, message: str, *, author_name: str, author_email: str, co_author: str | None = None
    ) -> str | None:
        """Commit the whole work tree as the bot on top of Honk's last commit; None if unchanged.

        Commits the agent may have made itself are folded in (their authorship is not kept)."""
        await self._restore_config()
        await self.git("symbolic-ref", "HEAD", f"refs/heads/{self.branch}", action="commit")
        await self.git("reset", "--quiet", "--soft", self.head_sha, action="commit")
        if not await self._stage():
            raise GitError(
                "The work tree holds more files than Honk lists, so Honk did not commit."
            )
        code, _ = await self.git(
            "diff", "--cached", "--quiet", self.head_sha, action="commit", check=False
        )
        if code == 0:
            return None
        text = message.strip() or "Honk changes"
        if co_author:
            text += f"\n\nCo-authored-by: {' '.join(co_author.split())}"
        who = {"NAME": author_name, "EMAIL": author_email}
        identity = {
            f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER") for k, v in who.items()
        }
        args = ("commit", "--quiet", "--no-verify", "--cleanup=whitespace", "-F", "-")
        await self.git(*args, action="commit", env=identity, input_text=text + "\n")
        _, sha = await self.git("rev-parse", "HEAD", action="commit")
        self.head_sha = sha.strip()
        return self.head_sha

    async def push(self, token: str, *, branch: str | None = None) -> str:
        """Push Honk's commits to the workspace's own branch; returns the pushed sha.

        Honk's branch is pushed with a lease on what Honk last saw there; a pull request's head
        branch only fast-forwards. Any other branch is refused, and so, in any letter case, are
        the base and default branches and (for Honk's own mode) a name outside `honk/`: the run
        decided where it may push before it cloned (safety/push_rules.py); this is the last
        line."""
        target = self.branch if branch is None else branch
        if target != self.branch:
            raise GitError(
                f"Honk refuses to push to {target!r}: this workspace may only push "
                f"to {self.branch!r}."
            )
        guarded = {self.base_branch.casefold(), self.default_branch.casefold()} - {""}
        if target.casefold() in guarded or (
            self.mode == "own" and not target.startswith(OWN_PREFIX)
        ):
            raise GitError(
                f"Honk refuses to push to {target!r}: it is a base or default branch, or not "
                f"one of Honk's own {OWN_PREFIX!r} branches."
            )
        await self._restore_config()
        refspec = f"{self.head_sha}:refs/heads/{self.branch}"
        lease: tuple[str, ...] = ()
        if self.mode == "own":
            lease = (f"--force-with-lease=refs/heads/{self.branch}:{self.remote_sha or ''}",)
        action = f"push {self.branch} to {self.full_name}"
        args = ("push", "--quiet", *lease, self.clone_url, refspec)
        await self.git(*args, action=action, token=token, timeout_s=NETWORK_TIMEOUT_S)
        self.remote_sha = self.head_sha
        return self.head_sha

    async def _restore_config(self) -> None:
        """Put back the git config Honk wrote, should anything have changed it."""
        config = self.git_dir / "config"
        if self._config and (not config.is_file() or config.read_bytes() != self._config):
            config.write_bytes(self._config)

    async def remove(self) -> None:
        """Delete the workspace (work tree, git dir, scratch) and release its lock. Never parked
        for another run: the agent wrote this tree."""
        lock_fd, self._lock_fd = self._lock_fd, None
        try:
            await asyncio.to_thread(delete_tree, self.root)
        finally:
            if lock_fd is not None:
                os.close(lock_fd)

    async def _check_out(self) -> None:
        args = ("checkout", "--quiet", "--force", "--no-track", "-B", self.branch, self.base_sha)
        await self.git(*args, action=f"check out {self.branch}")

    async def _finish(self) -> None:
        await self.git("remote", "set-url", "origin", self.clone_url, action="configure the clone")
        await asyncio.to_thread(self.scratch_dir.mkdir, exist_ok=True)
        self._config = (self.git_dir / "config").read_bytes()

    async def _discard(self) -> None:
        """Delete a workspace that could not be set up, releasing its lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        await asyncio.to_thread(delete_tree, self.root)


async def prepare_workspace(
    *,
    data_dir: Path,
    workspace_root: Path,
    run_id: str,
    full_name: str,
    clone_url: str,
    token: str,
    base_branch: str,
    branch: str,
    existing_branch: bool = False,
    default_branch: str = "",
) -> Workspace:
    """Refresh the mirror, clone it into a new workspace and check out `branch`.

    `existing_branch` means `branch` is a pull request's head, which must exist on GitHub.
    Otherwise `branch` is Honk's own: continued if it exists on GitHub, else made from the head
    of `base_branch`. `default_branch` (the repository's) is never pushed to."""
    mirror = mirror_path(data_dir, full_name)
    check_branch(branch)
    check_branch(base_branch)
    async with mirror_lock(mirror):
        await refresh_mirror(mirror, clone_url, token, full_name)
        remote_sha = await ref_sha(mirror, branch)
        if existing_branch and remote_sha is None:
            raise GitError(f"The branch {branch!r} does not exist in {full_name}.")
        start = remote_sha or await ref_sha(mirror, base_branch)
        if start is None:
            raise GitError(f"The branch {base_branch!r} does not exist in {full_name}.")
        root, lock_fd = await _clone(mirror, workspace_root, run_id)
    mode: PushMode = "pr_head" if existing_branch else "own"
    ws = Workspace(root, full_name, clone_url, branch, base_branch, mode, start, remote_sha,
                   mirror, head_sha=start, default_branch=default_branch,
                   _lock_fd=lock_fd)  # fmt: skip
    try:
        await ws._check_out()
        await ws._finish()
    except BaseException:
        await ws._discard()
        raise
    return ws


async def _clone(mirror: Path, workspace_root: Path, run_id: str) -> tuple[Path, int]:
    """A new root holding a clone of the mirror without a checkout, and its held lock."""
    root, lock_fd = await asyncio.to_thread(_new_root, workspace_root, run_id)
    try:
        clone = ("clone", "--quiet", "--shared", "--no-checkout")
        git_dir = f"--separate-git-dir={root / 'git'}"
        await run_git(
            *clone, git_dir, str(mirror), str(root / "repo"), action="clone", allow_file=True
        )
    except BaseException:
        os.close(lock_fd)
        await asyncio.to_thread(delete_tree, root)
        raise
    return root, lock_fd


def _new_root(workspace_root: Path, run_id: str) -> tuple[Path, int]:
    """A fresh directory named after the run, and the held lock that marks it in use."""
    workspace_root.mkdir(parents=True, exist_ok=True)
    root = workspace_root / f"{safe_id(run_id)}.{secrets.token_hex(4)}"
    root.mkdir()
    lock_fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return root, lock_fd
