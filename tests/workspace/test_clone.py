"""Workspace against real git over smart HTTP (tests/fakes/git_http.py) on loopback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from honk_app.workspace.clone import Workspace, prepare_workspace
from honk_app.workspace.git import FileStat, GitError
from honk_app.workspace.pool import sweep_stale
from honk_app.workspace.sandbox import Sandbox
from tests.fakes.git_http import add_commit, branch_sha, create_bare_repo, log, make_git_app
from tests.fakes.loopback import serve
from tests.needs import require_bwrap

TOKEN = "ghs_" + "T0kenValue" * 4  # looks like a real installation token (40 chars)
REPO = "acme/widgets"
FILES = {
    "README.md": "# Widgets\n",
    "src/app.py": "def greet():\n    return 'hello'\n",
    "src/util.py": "X = 1\n",
}
BOT = {"author_name": "honk[bot]", "author_email": "123+honk[bot]@users.noreply.github.com"}


@dataclass
class GitHubGit:
    url: str
    repos: Path
    data_dir: Path
    workspace_root: Path
    requests: list[tuple[str, bytes]]

    @property
    def clone_url(self) -> str:
        return f"{self.url}/{REPO}.git"

    async def prepare(self, run_id: str = "honk-d1", **overrides: Any) -> Workspace:
        args: dict[str, Any] = {
            "data_dir": self.data_dir,
            "workspace_root": self.workspace_root,
            "run_id": run_id,
            "full_name": REPO,
            "clone_url": self.clone_url,
            "token": TOKEN,
            "base_branch": "main",
            "branch": "honk/1-add-a-feature",
        }
        return await prepare_workspace(**{**args, **overrides})

    def downloads(self) -> int:
        """Requests that asked for objects (protocol v2 `fetch`; v0 sends `want` lines)."""
        return sum(
            1
            for path, body in self.requests
            if path.endswith("/git-upload-pack") and (b"command=fetch" in body or b"want " in body)
        )


@contextlib.contextmanager
def github_over_http(tmp_path: Path) -> Iterator[GitHubGit]:
    """acme/widgets served by real git over smart HTTP on loopback, every request recorded."""
    repos = tmp_path / "repos"
    create_bare_repo(repos, REPO, FILES, commits=2)
    requests: list[tuple[str, bytes]] = []

    def authorize(repo: str, user: str | None, password: str | None, is_write: bool) -> bool:
        return user == "x-access-token" and password == TOKEN

    git_app = make_git_app(repos, authorize)

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        """Notes each request's path and body, so a test can tell a download from a ref check."""
        if scope["type"] != "http":
            return await git_app(scope, receive, send)
        body = bytearray()

        async def tapped() -> Any:
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        await git_app(scope, tapped, send)
        data = bytes(body)
        with contextlib.suppress(OSError, EOFError):
            data = gzip.decompress(data)
        requests.append((scope["path"], data))

    with serve(recording) as server:
        yield GitHubGit(server.url, repos, tmp_path / "data", tmp_path / "ws", requests)


@pytest.fixture
def github(tmp_path: Path) -> Iterator[GitHubGit]:
    with github_over_http(tmp_path) as served:
        yield served


def files_containing(root: Path, needles: list[bytes]) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(needle in data for needle in needles):
                found.append(path)
    return found


# ---- clone, mirror, token -----------------------------------------------------------------------


async def test_cold_clone_then_warm_clone_reuses_the_mirror(github: GitHubGit) -> None:
    first = await github.prepare("honk-d1")
    assert github.downloads() == 1
    assert (first.path / "src" / "app.py").read_text() == FILES["src/app.py"]
    assert first.base_sha == branch_sha(github.repos, REPO, "main")
    assert first.branch == "honk/1-add-a-feature"
    head = subprocess.run(
        ["git", "symbolic-ref", "HEAD"], cwd=first.path, capture_output=True, text=True
    )
    assert head.stdout.strip() == "refs/heads/honk/1-add-a-feature"

    second = await github.prepare("honk-d2")
    assert github.downloads() == 1, "the warm clone downloaded objects again"
    alternates = (second.git_dir / "objects" / "info" / "alternates").read_text().strip()
    assert Path(alternates) == first.mirror / "objects"
    assert not list((second.git_dir / "objects" / "pack").glob("*.pack"))
    assert second.root != first.root and second.root.name.startswith("honk-d2.")


async def test_a_new_upstream_commit_is_fetched_into_the_mirror(github: GitHubGit) -> None:
    await github.prepare("honk-d1")
    new_sha = add_commit(github.repos, REPO, "main", {"NEW.md": "new\n"})
    ws = await github.prepare("honk-d2")
    assert ws.base_sha == new_sha
    assert (ws.path / "NEW.md").read_text() == "new\n"


async def test_concurrent_runs_share_one_mirror_safely(github: GitHubGit) -> None:
    a, b = await asyncio.gather(github.prepare("honk-a"), github.prepare("honk-b"))
    assert a.base_sha == b.base_sha
    assert a.mirror == b.mirror


async def test_the_token_is_never_written_anywhere(github: GitHubGit) -> None:
    ws = await github.prepare()
    (ws.path / "feature.txt").write_text("feature\n")
    await ws.commit("Add feature", **BOT)
    await ws.push(TOKEN)

    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode())
    assert files_containing(ws.root, [TOKEN.encode(), basic]) == []
    assert files_containing(github.data_dir, [TOKEN.encode(), basic]) == []
    listing = subprocess.run(
        ["git", "config", "--list", "--show-origin"],
        cwd=ws.path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert TOKEN not in listing.stdout and basic.decode() not in listing.stdout
    assert f"remote.origin.url={github.clone_url}" in listing.stdout


async def test_a_wrong_token_gives_a_readable_error_and_leaves_nothing_behind(
    github: GitHubGit,
) -> None:
    wrong = "ghs_" + "WrongToken" * 4
    with pytest.raises(GitError) as caught:
        await github.prepare(token=wrong)
    message = str(caught.value)
    assert message == f"GitHub refused the installation token while trying to fetch {REPO}."
    assert wrong not in message
    assert list(github.workspace_root.glob("*")) == []


async def test_unknown_base_branch_and_missing_pr_branch_are_readable_errors(
    github: GitHubGit,
) -> None:
    with pytest.raises(GitError, match="The branch 'develop' does not exist in acme/widgets"):
        await github.prepare(base_branch="develop")
    with pytest.raises(GitError, match="The branch 'feature/x' does not exist"):
        await github.prepare(branch="feature/x", existing_branch=True)


# ---- diff, restore, commit ----------------------------------------------------------------------


async def test_diff_and_numstat_include_untracked_deleted_and_modified_files(
    github: GitHubGit,
) -> None:
    ws = await github.prepare()
    (ws.path / "README.md").write_text("# Widgets\n\nBetter.\n")
    (ws.path / "src" / "util.py").unlink()
    (ws.path / "notes").mkdir()
    (ws.path / "notes" / "new.txt").write_text("one\ntwo\n")

    diff = (await ws.diff()).text
    assert "+++ b/notes/new.txt" in diff
    assert "--- a/src/util.py" in diff and "+++ /dev/null" in diff
    assert "+Better." in diff
    stat = await ws.numstat()
    assert {f.path: (f.added, f.removed) for f in stat.files} == {
        "README.md": (2, 0),
        "notes/new.txt": (2, 0),
        "src/util.py": (0, 1),
    }
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ws.path, capture_output=True, text=True
    )
    assert "?? notes/" in status.stdout, "diff must not stage anything in the real index"


async def test_restore_paths_reverts_changes_and_deletes_new_files(github: GitHubGit) -> None:
    ws = await github.prepare()
    (ws.path / "README.md").write_text("changed\n")
    (ws.path / "src" / "app.py").write_text("broken\n")
    (ws.path / "src" / "extra.py").write_text("new\n")
    (ws.path / "src" / "util.py").unlink()
    (ws.path / "keep.txt").write_text("keep\n")

    await ws.restore_paths(["src/", "README.md", "does/not/exist"])

    assert (ws.path / "README.md").read_text() == FILES["README.md"]
    assert (ws.path / "src" / "app.py").read_text() == FILES["src/app.py"]
    assert not (ws.path / "src" / "extra.py").exists()
    assert (ws.path / "src" / "util.py").read_text() == FILES["src/util.py"]
    assert [f.path for f in (await ws.numstat()).files] == ["keep.txt"]


async def test_commit_uses_the_bot_identity_and_a_co_author_trailer(github: GitHubGit) -> None:
    ws = await github.prepare()
    assert await ws.commit("Nothing yet", **BOT) is None

    (ws.path / "feature.txt").write_text("feature\n")
    sha = await ws.commit("#1 Add the feature", co_author="Ada Lovelace <ada@example.com>", **BOT)
    assert sha is not None
    pushed = await ws.push(TOKEN)
    assert pushed == sha == branch_sha(github.repos, REPO, ws.branch)
    entry = log(github.repos, REPO, ws.branch)[0]
    assert (entry.author_name, entry.committer_name) == ("honk[bot]", "honk[bot]")
    assert entry.author_email == entry.committer_email == BOT["author_email"]
    assert entry.message == "#1 Add the feature\n\nCo-authored-by: Ada Lovelace <ada@example.com>"
    assert entry.parents == (ws.base_sha,)
    assert await ws.commit("Again", **BOT) is None


async def test_commits_the_agent_made_are_folded_into_the_bots_commit(github: GitHubGit) -> None:
    ws = await github.prepare()
    (ws.path / "a.txt").write_text("a\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "Mallory", "GIT_AUTHOR_EMAIL": "m@example.com"}
    for command in (["add", "a.txt"], ["commit", "-qm", "agent commit"]):
        subprocess.run(["git", *command], cwd=ws.path, env=env, check=True)
    sha = await ws.commit("Add a", **BOT)
    await ws.push(TOKEN)
    history = log(github.repos, REPO, ws.branch)
    assert history[0].sha == sha and history[0].author_name == "honk[bot]"
    assert history[0].parents == (ws.base_sha,)


# ---- push ---------------------------------------------------------------------------------------


async def test_a_retry_continues_from_honks_existing_remote_branch(github: GitHubGit) -> None:
    previous = add_commit(github.repos, REPO, "honk/1-add-a-feature", {"first.txt": "1\n"})
    ws = await github.prepare()
    assert ws.base_sha == previous == ws.remote_sha
    assert (ws.path / "first.txt").read_text() == "1\n"
    (ws.path / "second.txt").write_text("2\n")
    sha = await ws.commit("Second round", **BOT)
    assert await ws.push(TOKEN) == sha
    assert log(github.repos, REPO, ws.branch)[1].sha == previous


async def test_push_with_lease_refuses_when_someone_else_moved_the_branch(
    github: GitHubGit,
) -> None:
    ws = await github.prepare()
    (ws.path / "mine.txt").write_text("mine\n")
    await ws.commit("Mine", **BOT)
    theirs = add_commit(github.repos, REPO, ws.branch, {"theirs.txt": "theirs\n"})
    with pytest.raises(GitError, match="changed on GitHub since Honk fetched it"):
        await ws.push(TOKEN)
    assert branch_sha(github.repos, REPO, ws.branch) == theirs


async def test_pushing_twice_in_one_run_moves_the_lease_along(github: GitHubGit) -> None:
    ws = await github.prepare()
    (ws.path / "one.txt").write_text("1\n")
    await ws.commit("One", **BOT)
    await ws.push(TOKEN)
    (ws.path / "two.txt").write_text("2\n")
    second = await ws.commit("Two", **BOT)
    assert await ws.push(TOKEN) == second == branch_sha(github.repos, REPO, ws.branch)


async def test_a_pull_request_head_branch_only_fast_forwards(github: GitHubGit) -> None:
    head = add_commit(github.repos, REPO, "feature/login", {"login.py": "x = 1\n"})
    ws = await github.prepare(branch="feature/login", existing_branch=True)
    assert ws.mode == "pr_head" and ws.base_sha == head
    (ws.path / "login.py").write_text("x = 2\n")
    sha = await ws.commit("Fix review comment", **BOT)
    assert await ws.push(TOKEN) == sha

    theirs = add_commit(github.repos, REPO, "feature/login", {"other.py": "y\n"})
    (ws.path / "login.py").write_text("x = 3\n")
    await ws.commit("Another fix", **BOT)
    with pytest.raises(GitError, match="changed on GitHub"):
        await ws.push(TOKEN)
    assert branch_sha(github.repos, REPO, "feature/login") == theirs


async def test_push_refuses_any_branch_but_its_own(github: GitHubGit) -> None:
    ws = await github.prepare()
    (ws.path / "x.txt").write_text("x\n")
    await ws.commit("X", **BOT)
    main = branch_sha(github.repos, REPO, "main")
    for other in ("main", "honk/2-something-else"):
        with pytest.raises(GitError, match="Honk refuses to push"):
            await ws.push(TOKEN, branch=other)
    assert branch_sha(github.repos, REPO, "main") == main
    assert branch_sha(github.repos, REPO, "honk/2-something-else") is None


async def test_hooks_and_config_planted_in_the_git_dir_never_run_or_redirect(
    github: GitHubGit, tmp_path: Path
) -> None:
    create_bare_repo(github.repos, "acme/other", {"x.txt": "x\n"})
    ws = await github.prepare()
    proof = tmp_path / "hook-ran"
    for hook in ("pre-commit", "commit-msg", "post-commit", "pre-push", "reference-transaction"):
        script = ws.git_dir / "hooks" / hook
        script.write_text(f"#!/bin/sh\nenv >> {proof}\n")
        script.chmod(0o755)
    with (ws.git_dir / "config").open("a") as config:
        config.write(f'[url "{github.url}/acme/other.git"]\n\tinsteadOf = {github.clone_url}\n')
    (ws.path / ".git").write_text("gitdir: /nonexistent\n")  # the agent replaced the .git file
    (ws.path / "x.txt").write_text("x\n")

    sha = await ws.commit("X", **BOT)
    await ws.push(TOKEN)

    assert not proof.exists()
    assert branch_sha(github.repos, REPO, ws.branch) == sha
    assert branch_sha(github.repos, "acme/other", ws.branch) is None
    assert "insteadOf" not in (ws.git_dir / "config").read_text()


# ---- lifecycle ----------------------------------------------------------------------------------


async def test_remove_and_sweep_leave_live_and_kept_workspaces_alone(github: GitHubGit) -> None:
    live = await github.prepare("honk-live")
    kept = await github.prepare("honk-kept")
    gone = await github.prepare("honk-gone")
    for dead in (kept, gone):  # as if their process had died, releasing the lock
        assert dead._lock_fd is not None
        os.close(dead._lock_fd)
        dead._lock_fd = None

    removed = await sweep_stale(github.workspace_root, keep={"honk-kept"})

    assert removed == [gone.root]
    assert live.path.is_dir() and kept.path.is_dir() and not gone.root.exists()
    await live.remove()
    assert not live.root.exists()


async def test_inside_the_sandbox_git_can_read_the_workspace_but_not_change_its_git_dir(
    github: GitHubGit,
) -> None:
    require_bwrap()
    ws = await github.prepare()
    (ws.path / "README.md").write_text("changed\n")
    config = (ws.git_dir / "config").read_text()
    async with Sandbox(ws.path, temp_dir=ws.scratch_dir, readonly_paths=ws.readonly_paths) as box:
        status = await box.run("git status --short && git log --oneline | wc -l")
        tamper = await box.run(f"echo '[core]\n\thooksPath = /tmp' >> {ws.git_dir / 'config'}")
        commit = await box.run("git add -A && git -c user.name=a -c user.email=b commit -qm x")
    assert status.ok, status.output
    assert status.output.split() == ["M", "README.md", "2"]
    assert tamper.exit_code != 0 and (ws.git_dir / "config").read_text() == config
    assert commit.exit_code != 0
    assert (await ws.numstat()).files == (FileStat("README.md", 1, 1),)
