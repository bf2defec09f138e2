"""The workspace's last line of defence: whatever the run decided, `push` never updates a base or
default branch (in any letter case), nor, in Honk's own mode, a branch outside `honk/`. The guard
holds before git runs, so these workspaces need no repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from honk_app.workspace.clone import PushMode, Workspace
from honk_app.workspace.git import GitError


def workspace(tmp_path: Path, branch: str, base: str, mode: PushMode, default: str) -> Workspace:
    return Workspace(
        tmp_path, "acme/widgets", "https://github.invalid/acme/widgets.git", branch, base, mode,
        "a" * 40, None, tmp_path / "mirror", default_branch=default,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("branch", "base", "mode", "default"),
    [
        ("main", "release", "pr_head", "main"),
        ("MAIN", "release", "pr_head", "main"),
        ("release", "Release", "pr_head", "main"),
        ("feature", "main", "own", "main"),
        ("honk/1-x", "honk/1-x", "own", "main"),
    ],
    ids=["default", "default-other-case", "base-other-case", "own-outside-prefix", "own-is-base"],
)
async def test_push_refuses_guarded_branches_before_git_runs(
    tmp_path: Path, branch: str, base: str, mode: PushMode, default: str
) -> None:
    ws = workspace(tmp_path, branch, base, mode, default)
    with pytest.raises(GitError, match="Honk refuses to push"):
        await ws.push("ghs_token")
    assert not (tmp_path / "git").exists()  # nothing was run
