"""A finished run's workspace is deleted, never parked for the next run of its repository (a
tree the agent wrote must not reach a later run's git); deleting survives whatever the agent left;
the sweep drops workspaces no live run holds, and the pool older versions kept. Real runs against
real git over smart HTTP on loopback."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from honk_app.workspace.clone import Workspace
from honk_app.workspace.pool import POOL_DIR, delete_tree, sweep_stale
from tests.fakes.git_http import add_commit
from tests.workspace.test_clone import (
    BOT,
    TOKEN,
    GitHubGit,
    files_containing,
    github_over_http,
)


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubGit]:
    with github_over_http(tmp_path) as served:
        yield served


DEFAULT_DESCRIPTION = "Unnamed repository; edit this file 'description' to name the repository.\n"
GIT_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C", "GIT_AUTHOR_NAME": "A",
           "GIT_AUTHOR_EMAIL": "a@example.com", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@example.com"}  # fmt: skip


def git(cwd: Path, *args: str) -> str:
    """Plain git as the agent would run it in the work tree (through its `.git` file)."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return done.stdout


def tree_of(top: Path) -> dict[str, tuple[object, ...]]:
    """Every path under `top` (its `.git` aside) with its kind, permission bits and content;
    symlinks are read, never followed."""
    found: dict[str, tuple[object, ...]] = {}
    for path in sorted(top.rglob("*")):
        rel = path.relative_to(top).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        mode = path.lstat().st_mode & 0o7777
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", oct(mode))
        else:
            found[rel] = ("file", oct(mode), path.read_bytes())
    return found


def fresh_checkout(github: GitHubGit, tmp_path: Path, name: str, branch: str) -> Path:
    """What a plain `git clone` of `branch` writes, to compare a workspace with."""
    target = tmp_path / name
    source = github.repos / "acme" / "widgets.git"
    clone = ["git", "clone", "-q", "-b", branch, str(source), str(target)]
    subprocess.run(clone, env=GIT_ENV, check=True)
    return target


def leave_a_mess(ws: Workspace, outside: Path) -> None:
    """What an agent or a test run might leave: changes, untracked files, a nested repository,
    symlinks out of the tree, unreadable directories and a replaced `.git`."""
    p = ws.path
    (p / "README.md").write_text("modified\n")
    (p / "untracked.txt").write_text("untracked\n")
    nested = p / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    (nested / "lib.c").write_text("int x;\n")
    (p / "escape").symlink_to(outside)
    (outside / "keep.txt").write_text("outside, not the repository's\n")
    locked = p / "locked" / "deeper"
    locked.mkdir(parents=True)
    (locked / "secret.txt").write_text("x\n")
    locked.chmod(0)
    (p / "locked").chmod(0)
    (p / "src").chmod(0)  # a tracked directory made unreadable
    (p / ".git").write_text("gitdir: /nonexistent\n")


async def test_a_finished_workspace_is_deleted_and_the_next_run_clones_afresh(
    github: GitHubGit, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    first = await github.prepare("honk-d1")
    (first.path / "feature.txt").write_text("feature\n")
    await first.commit("Add feature", **BOT)
    await first.push(TOKEN)
    leave_a_mess(first, outside)
    (first.git_dir / "description").write_text("written by run 1\n")
    before = tree_of(outside)

    await first.remove()

    assert not first.root.exists(), "a finished workspace was kept"
    assert not (github.workspace_root / POOL_DIR).exists(), "a finished workspace was parked"
    assert list(github.workspace_root.iterdir()) == []
    assert tree_of(outside) == before, "deleting followed a link out of the tree"

    new_main = add_commit(github.repos, "acme/widgets", "main", {"NEW.md": "new\n"})
    second = await github.prepare("honk-d2", branch="honk/2-next")
    assert (second.git_dir / "description").read_text() == DEFAULT_DESCRIPTION
    assert second.base_sha == new_main and second.root.name.startswith("honk-d2.")
    expected = fresh_checkout(github, tmp_path, "expected", "main")
    assert tree_of(second.path) == tree_of(expected)
    assert git(second.path, "status", "--porcelain", "--ignored", "--untracked-files=all") == ""
    assert git(second.path, "symbolic-ref", "HEAD").strip() == "refs/heads/honk/2-next"
    assert list(second.scratch_dir.iterdir()) == []
    await second.remove()


async def test_the_sweep_drops_what_no_live_run_holds_and_the_old_pool(
    github: GitHubGit,
) -> None:
    live = await github.prepare("honk-live")
    parked = github.workspace_root / POOL_DIR / "acme" / "widgets" / "0123abcd"
    shutil.copytree(live.root, parked, symlinks=True)  # as an older version parked one
    (parked / "repo" / "src").chmod(0)

    removed = await sweep_stale(github.workspace_root)

    assert removed == [github.workspace_root / POOL_DIR]
    assert not (github.workspace_root / POOL_DIR).exists()
    assert live.path.is_dir(), "the sweep removed a live workspace"
    await live.remove()
    assert list(github.workspace_root.iterdir()) == []


def test_delete_tree_unlinks_a_symlink_and_never_follows_it(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("keep\n")
    link = tmp_path / "link"
    link.symlink_to(target)
    delete_tree(link)
    assert not os.path.lexists(link) and (target / "keep.txt").read_text() == "keep\n"
    delete_tree(tmp_path / "missing")  # nothing there: nothing to do


async def test_the_token_is_never_written_anywhere_across_runs(github: GitHubGit) -> None:
    for number in (1, 2):
        ws = await github.prepare(f"honk-t{number}", branch=f"honk/{number}-token")
        (ws.path / f"file{number}.txt").write_text(f"{number}\n")
        await ws.commit(f"Change {number}", **BOT)
        await ws.push(TOKEN)
        basic = base64.b64encode(f"x-access-token:{TOKEN}".encode())
        assert files_containing(github.workspace_root, [TOKEN.encode(), basic]) == []
        await ws.remove()
    assert files_containing(github.data_dir, [TOKEN.encode(), basic]) == []
