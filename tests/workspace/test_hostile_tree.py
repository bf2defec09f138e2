"""Nothing a hostile agent writes in its work tree makes Honk's own git (outside the sandbox,
holding Honk's environment) run a command, in this run or the next one of the repository.

Each case plants something (tests/workspace/hostile.py), runs every git operation Honk runs on a
workspace (diff and numstat for the policy, restoring protected paths, commit, push to a local
bare repository, removal, and a second run's prepare, diff, commit and push on the branch the
first pushed) and asserts that no planted command left its marker. A control then shows the
plant is live: plain git, run as a user would, does trip it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from honk_app.repo_config import RepoConfig
from honk_app.safety.policy import evaluate, parse_unified_diff
from honk_app.workspace.clone import Workspace, prepare_workspace
from honk_app.workspace.pool import POOL_DIR
from tests.workspace.hostile import (
    BOT,
    FULL_NAME,
    PLANTS,
    TOKEN,
    Upstream,
    git,
    gitlinks_on,
    make_upstream,
)

BRANCH = "honk/1-plant"


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return make_upstream(tmp_path / "upstream")


async def prepare(tmp_path: Path, up: Upstream, run_id: str) -> Workspace:
    return await prepare_workspace(
        data_dir=tmp_path / "data",
        workspace_root=tmp_path / "ws",
        run_id=run_id,
        full_name=FULL_NAME,
        clone_url=up.url,
        token=TOKEN,
        base_branch="main",
        branch=BRANCH,
    )


def ran(markers: Path) -> list[str]:
    return sorted(path.name for path in markers.iterdir())


def nested_git_entries(top: Path) -> list[str]:
    """Every `.git` below the top of the work tree (the top's own `.git` file aside)."""
    return sorted(str(p.relative_to(top)) for p in top.rglob(".git") if p != top / ".git")


@pytest.mark.parametrize(
    "names", [[name] for name in PLANTS] + [list(PLANTS)], ids=[*PLANTS, "all at once"]
)
async def test_nothing_planted_in_the_work_tree_runs_in_honks_git(
    tmp_path: Path, upstream: Upstream, names: list[str]
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    ws = await prepare(tmp_path, upstream, "honk-run-1")
    (ws.path / "src" / "app.py").write_text("def greet():\n    return 'protected'\n")
    (ws.path / "feature.txt").write_text("feature\n")
    controls = [PLANTS[name](ws, upstream, markers) for name in names]
    for marker in markers.iterdir():  # planting one thing over another ran the first's commands
        marker.unlink()

    diff = (await ws.diff()).text
    changed = {f.path for f in (await ws.numstat()).files}
    for command in (["status", "--porcelain", "--ignored", "--untracked-files=all"], ["diff"]):
        # Honk runs neither, but its config must hold (a `!command` in .gitmodules may fail them)
        await ws.git(*command, action="look", check=False)
    await ws.restore_paths(["src/"])
    sha = await ws.commit("Plant", **BOT)
    assert sha is not None
    assert await ws.push(TOKEN) == sha

    assert ran(markers) == [], "a planted command ran in Honk's git"
    report = evaluate(parse_unified_diff(diff), RepoConfig())
    assert report.submodules == [] and "Subproject commit" not in diff
    assert "feature.txt" in changed
    assert not [p for p in changed if p == "sub" or p.startswith(("sub/", "vendor/lib"))]
    assert gitlinks_on(upstream.bare, BRANCH) == {"sub": upstream.sub_sha}, "a gitlink was pushed"
    assert "src/app.py" not in {f.path for f in (await ws.numstat()).files}

    if len(names) == 1:  # the plant is live: plain git, as a user runs it, trips it
        controls[0](ws)
        assert ran(markers) != [], "the control did not trip the plant: the case proves nothing"
        for marker in markers.iterdir():
            marker.unlink()

    await ws.remove()
    assert not ws.root.exists()
    assert not (tmp_path / "ws" / POOL_DIR).exists(), "a workspace was parked for reuse"

    second = await prepare(tmp_path, upstream, "honk-run-2")  # continues the branch run 1 pushed
    assert second.base_sha == sha and second.root != ws.root
    assert nested_git_entries(second.path) == []
    (second.path / "README.md").write_text("# Widgets, again\n")
    (second.path / "tools").mkdir(exist_ok=True)
    (second.path / "tools" / "again.c").write_text("int y;\n")
    assert "+# Widgets, again" in (await second.diff()).text
    await second.numstat()
    again = await second.commit("Again", **BOT)
    assert again is not None and await second.push(TOKEN) == again
    await second.remove()

    assert ran(markers) == [], "a command planted in run 1 ran in run 2"
    assert gitlinks_on(upstream.bare, BRANCH) == {"sub": upstream.sub_sha}


async def test_an_agent_cannot_move_or_add_a_submodule_pointer(
    tmp_path: Path, upstream: Upstream
) -> None:
    """A repository at the submodule path at another commit, and a new one elsewhere: neither
    reaches the index, the policy's diff or the pushed tree; the submodule's files stay out."""
    ws = await prepare(tmp_path, upstream, "honk-run-1")
    sub = ws.path / "sub"
    for where in (sub, ws.path / "libs" / "new"):
        where.mkdir(parents=True, exist_ok=True)
        (where / "x.txt").write_text("x\n")
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "moved"]):
            git(where, *args)
    (ws.path / "ok.txt").write_text("ok\n")

    diff = (await ws.diff()).text
    assert [c.path for c in parse_unified_diff(diff)] == ["ok.txt"]
    assert ws.left_out == ("libs/new/",)  # for the run's report; `sub` is the repository's own
    await ws.commit("Moved", **BOT)
    await ws.push(TOKEN)
    assert gitlinks_on(upstream.bare, BRANCH) == {"sub": upstream.sub_sha}
