"""The pool of parked workspaces, through real runs against real git over smart HTTP on loopback:
a finished run parks its clone, the next run of the repository reuses it only if it is exactly
right, and the sweep drops what is old or orphaned."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from honk_app.workspace.clone import Workspace
from honk_app.workspace.pool import MAX_PARKED, POOL_DIR, sweep_stale
from tests.fakes.git_http import add_commit, log
from tests.workspace.test_clone import (
    BOT,
    REPO,
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


def pool_of(github: GitHubGit) -> Path:
    return github.workspace_root / POOL_DIR / "acme" / "widgets"


def parked(github: GitHubGit) -> list[Path]:
    pool = pool_of(github)
    return sorted(pool.iterdir()) if pool.is_dir() else []


def mark(ws: Workspace, text: str) -> None:
    """Tag the git dir (parking keeps `description`), so a later run can tell it reused it."""
    (ws.git_dir / "description").write_text(text)


def marker(ws: Workspace) -> str:
    return (ws.git_dir / "description").read_text()


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


def fresh_checkout(github: GitHubGit, tmp_path: Path, name: str) -> Path:
    """What a plain `git clone` of main writes, to compare a reused work tree with."""
    target = tmp_path / name
    source = github.repos / "acme" / "widgets.git"
    subprocess.run(["git", "clone", "-q", str(source), str(target)], env=GIT_ENV, check=True)
    return target


def leave_a_mess(ws: Workspace, outside: Path) -> None:
    """What an agent or a test run might leave: changes, untracked and ignored files, a nested
    repository, symlinks out of the tree, modes the commit lacks and unreadable directories."""
    p = ws.path
    (p / "README.md").write_text("modified\n")
    (p / "src" / "util.py").unlink()
    (p / "untracked.txt").write_text("untracked\n")
    (p / "build").mkdir()
    (p / "build" / "out.o").write_bytes(b"\x00\x01")
    (p / "debug.log").write_text("ignored\n")
    nested = p / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")
    (nested / "lib.c").write_text("int x;\n")
    git(nested, "add", "-A")
    git(nested, "commit", "-qm", "nested")
    shutil.rmtree(p / "docs")
    (p / "docs").symlink_to(outside)  # a tracked directory swapped for a link out of the tree
    (p / "escape").symlink_to(outside)
    (p / "src" / "app.py").chmod(0o777)
    locked = p / "locked" / "deeper"
    locked.mkdir(parents=True)
    (locked / "secret.txt").write_text("x\n")
    locked.chmod(0)
    (p / "locked").chmod(0)
    (p / "src").chmod(0)  # a tracked directory made unreadable
    (p / ".git").write_text("gitdir: /nonexistent\n")


async def test_a_second_run_reuses_the_parked_tree_and_ends_exactly_at_the_new_commit(
    github: GitHubGit, tmp_path: Path
) -> None:
    add_commit(
        github.repos, REPO, "main", {"docs/guide.md": "guide\n", ".gitignore": "build/\n*.log\n"}
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "guide.md").write_text("outside, not the repository's\n")
    before = tree_of(outside)

    first = await github.prepare("honk-d1")
    (first.path / "feature.txt").write_text("feature\n")
    await first.commit("Add feature", **BOT)
    await first.push(TOKEN)
    leave_a_mess(first, outside)
    mark(first, "parked by honk-d1\n")
    await first.remove()
    assert not first.root.exists() and len(parked(github)) == 1
    new_main = add_commit(
        github.repos, REPO, "main", {"README.md": "# Widgets v2\n", "NEW.md": "new\n"}
    )

    second = await github.prepare("honk-d2", branch="honk/2-next")

    assert marker(second) == "parked by honk-d1\n", "the parked tree was not reused"
    assert parked(github) == [] and second.root.name.startswith("honk-d2.")
    assert second.base_sha == second.head_sha == new_main and second.remote_sha is None
    assert tree_of(second.path) == tree_of(fresh_checkout(github, tmp_path, "expected"))
    assert tree_of(outside) == before
    assert git(second.path, "status", "--porcelain", "--ignored", "--untracked-files=all") == ""
    assert git(second.path, "rev-parse", "HEAD").strip() == new_main
    assert git(second.path, "symbolic-ref", "HEAD").strip() == "refs/heads/honk/2-next"
    assert git(second.path, "for-each-ref", "--format=%(refname)", "refs/heads").split() == [
        "refs/heads/honk/2-next"
    ]
    assert git(second.path, "rev-parse", "origin/main").strip() == new_main
    assert list(second.scratch_dir.iterdir()) == []
    assert (await second.numstat()).files == ()

    (second.path / "second.txt").write_text("2\n")
    sha = await second.commit("Second", **BOT)
    assert await second.push(TOKEN) == sha
    assert log(github.repos, REPO, "honk/2-next")[0].parents == (new_main,)


@pytest.mark.parametrize("damage", ["config", "index", "alternates", "work tree link"])
async def test_a_damaged_parked_workspace_is_deleted_and_the_run_clones_afresh(
    github: GitHubGit, tmp_path: Path, damage: str
) -> None:
    first = await github.prepare("honk-d1")
    mark(first, "parked\n")
    await first.remove()
    (entry,) = parked(github)
    outside = tmp_path / "outside"
    outside.mkdir()
    if damage == "config":
        with (entry / "git" / "config").open("a") as config:
            config.write("[core]\n\tfsmonitor = touch /tmp/pwned\n")
    elif damage == "index":
        (entry / "git" / "index").write_bytes(b"DIRC garbage")
    elif damage == "alternates":
        (entry / "git" / "objects" / "info" / "alternates").unlink()
    else:
        shutil.rmtree(entry / "repo")
        (entry / "repo").symlink_to(outside)

    second = await github.prepare("honk-d2")

    assert marker(second) == DEFAULT_DESCRIPTION, "a damaged parked tree was reused"
    assert not entry.exists() and parked(github) == []
    assert tree_of(second.path) == tree_of(fresh_checkout(github, tmp_path, "expected"))
    assert git(second.path, "status", "--porcelain", "--ignored") == ""
    assert list(outside.iterdir()) == []
    assert [p.name for p in github.workspace_root.iterdir() if p.name != POOL_DIR] == [
        second.root.name
    ]


async def test_concurrent_runs_never_share_a_parked_tree(github: GitHubGit) -> None:
    earlier = [await github.prepare(f"honk-p{number}") for number in (1, 2)]
    for number, ws in enumerate(earlier, 1):
        mark(ws, f"parked {number}\n")
        await ws.remove()
    assert len(parked(github)) == 2

    runs = await asyncio.gather(*(github.prepare(f"honk-c{n}") for n in range(3)))

    reused = sorted(marker(ws) for ws in runs)
    assert reused == sorted(["parked 1\n", "parked 2\n", DEFAULT_DESCRIPTION])
    assert len({ws.root for ws in runs}) == 3 and parked(github) == []
    for ws in runs:
        assert git(ws.path, "status", "--porcelain", "--ignored") == ""
        assert git(ws.path, "rev-parse", "HEAD").strip() == ws.base_sha


async def test_the_pool_keeps_the_newest_parked_trees_of_a_repository(github: GitHubGit) -> None:
    runs = [await github.prepare(f"honk-k{n}") for n in range(MAX_PARKED + 1)]
    for number, ws in enumerate(runs):
        mark(ws, f"run {number}\n")
        await ws.remove()
    kept = sorted((entry / "git" / "description").read_text() for entry in parked(github))
    assert kept == [f"run {n}\n" for n in range(1, MAX_PARKED + 1)]


async def test_a_workspace_git_cannot_reset_is_deleted_not_parked(github: GitHubGit) -> None:
    ws = await github.prepare()
    (ws.git_dir / "index").write_bytes(b"DIRC garbage")
    await ws.remove()
    assert not ws.root.exists() and parked(github) == []
    assert [p.name for p in github.workspace_root.iterdir() if p.name != POOL_DIR] == []


async def test_the_sweep_keeps_the_pool_but_drops_old_or_orphaned_parked_trees(
    github: GitHubGit,
) -> None:
    for ws in [await github.prepare(f"honk-s{number}") for number in (1, 2)]:
        await ws.remove()
    old, young = sorted(parked(github), key=lambda entry: entry.stat().st_mtime)
    two_days_ago = time.time() - 2 * 86_400
    os.utime(old, (two_days_ago, two_days_ago))

    assert await sweep_stale(github.workspace_root) == [old]
    assert parked(github) == [young]

    shutil.rmtree(github.data_dir / "mirrors")
    assert await sweep_stale(github.workspace_root) == [young]
    assert parked(github) == []


async def test_the_token_is_never_written_anywhere_across_reuse(github: GitHubGit) -> None:
    for number in (1, 2):
        ws = await github.prepare(f"honk-t{number}", branch=f"honk/{number}-token")
        (ws.path / f"file{number}.txt").write_text(f"{number}\n")
        await ws.commit(f"Change {number}", **BOT)
        await ws.push(TOKEN)
        await ws.remove()
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode())
    assert len(parked(github)) == 1
    assert files_containing(github.workspace_root, [TOKEN.encode(), basic]) == []
    assert files_containing(github.data_dir, [TOKEN.encode(), basic]) == []
