"""A work tree full of changes costs Honk a bounded read: git's diff is cut at a byte cap (and
git stopped), the whole change's totals come from `--shortstat`, the verdict is reached off the
event loop and blocks the push, and a verdict that takes too long is cut short. Real git, a
real workspace cloned from a local bare repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from honk_app.repo_config import RepoConfig
from honk_app.safety.policy import timeout_sentence
from honk_app.workspace import git as git_module
from honk_app.workspace.clone import Workspace, prepare_workspace
from honk_app.workspace.inspection import inspect_workspace
from tests.workspace.hostile import FULL_NAME, TOKEN, Upstream, make_upstream

CAP = 64 * 1024
LINES = 300_000  # 600 KB of "x\n": about ten times the cap


@pytest.fixture
async def ws(tmp_path: Path) -> Workspace:
    up: Upstream = make_upstream(tmp_path / "upstream")
    return await prepare_workspace(
        data_dir=tmp_path / "data", workspace_root=tmp_path / "ws", run_id="honk-run",
        full_name=FULL_NAME, clone_url=up.url, token=TOKEN, base_branch="main",
        branch="honk/1-bounds",
    )  # fmt: skip


async def test_a_diff_past_the_cap_is_cut_and_counted_by_shortstat(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks: list[int] = []
    real_capped = git_module.run_git_capped

    async def spying(*args: str, **kwargs: object) -> tuple[bytes, bool]:
        data, cut = await real_capped(*args, **kwargs)  # type: ignore[arg-type]
        chunks.append(len(data))
        return data, cut

    monkeypatch.setattr("honk_app.workspace.clone.run_git_capped", spying)
    (ws.path / "big.txt").write_text("x\n" * LINES)
    (ws.path / "small.txt").write_text("one\n")

    read = await ws.diff(CAP)

    assert not read.complete and len(read.data) == CAP == chunks[0]
    assert read.totals == (2, LINES + 1, 0)
    assert read.text.startswith("diff --git a/big.txt b/big.txt")


async def test_a_diff_under_the_cap_is_whole(ws: Workspace) -> None:
    (ws.path / "small.txt").write_text("one\n")
    read = await ws.diff(CAP)
    assert (read.complete, read.totals) == (True, None)
    assert "+one" in read.text


async def test_a_cut_diff_is_not_pushed_and_says_why(ws: Workspace) -> None:
    (ws.path / "big.txt").write_text("x\n" * LINES)
    config = RepoConfig(max_changed_lines=10_000_000)

    report = await inspect_workspace(ws, config, max_bytes=CAP)

    assert report.blocks_push and not report.empty
    assert (report.files_changed, report.lines_changed) == (1, LINES)
    assert report.findings() == [
        "The change's diff is larger than the 64 KiB Honk reads, so Honk could not check all of "
        "it for credentials and did not push it."
    ]


async def test_a_verdict_past_its_deadline_is_stopped_and_blocks(ws: Workspace) -> None:
    """The worker thread is told to stop at its next poll; its cut-short verdict blocks."""
    (ws.path / "big.txt").write_text("x\n" * LINES)

    report = await inspect_workspace(ws, RepoConfig(), timeout_s=0)

    assert report.blocks_push and report.uninspected == timeout_sentence(0)


async def test_numstat_past_the_cap_keeps_whole_records_and_says_it_was_cut(
    ws: Workspace,
) -> None:
    for i in range(400):
        (ws.path / f"file-{i:04d}.txt").write_text("x\n")
    stat = await ws.numstat(max_bytes=1024)
    assert not stat.complete
    assert 0 < len(stat.files) < 400
    assert all(f.path.startswith("file-") and f.added == 1 for f in stat.files)
    whole = await ws.numstat()
    assert whole.complete and len(whole.files) == 400
