"""A work tree of many files costs Honk a bounded read of git's file listings: each `ls-files`
is cut at the workspace's cap (and git stopped), a cut listing stages nothing and blocks the
push with one sentence, and no listing is split into a list of every file. Real git, a real
workspace cloned from a local bare repository."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from honk_app.repo_config import RepoConfig
from honk_app.workspace import clone as clone_module
from honk_app.workspace import staging
from honk_app.workspace.clone import Workspace, prepare_workspace
from honk_app.workspace.git import DiffStat, GitError
from honk_app.workspace.inspection import inspect_workspace
from honk_app.workspace.staging import (
    LISTING_SENTENCE,
    changes_under,
    gitlinks,
    nested_repos,
)
from tests.workspace.hostile import BOT, FULL_NAME, TOKEN, make_upstream

CAP = 4096
FILES = 300  # 300 names of 40 characters: about three times the cap


@pytest.fixture
async def ws(tmp_path: Path) -> Workspace:
    up = make_upstream(tmp_path / "upstream")
    return await prepare_workspace(
        data_dir=tmp_path / "data", workspace_root=tmp_path / "ws", run_id="honk-run",
        full_name=FULL_NAME, clone_url=up.url, token=TOKEN, base_branch="main",
        branch="honk/1-listing",
    )  # fmt: skip


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, bool]]:
    """(git subcommand, bytes Honk got, cut) of every git command staging ran."""
    seen: list[tuple[str, int, bool]] = []
    capped, whole = staging.run_git_capped, staging.run_git_bytes

    def name(args: tuple[str, ...]) -> str:
        return next(a for a in args[4:] if not a.startswith("-"))

    async def spy_capped(*args: str, **kwargs: object) -> tuple[bytes, bool]:
        data, cut = await capped(*args, **kwargs)  # type: ignore[arg-type]
        seen.append((name(args), len(data), cut))
        return data, cut

    async def spy_whole(*args: str, **kwargs: object) -> tuple[int, bytes]:
        code, out = await whole(*args, **kwargs)  # type: ignore[arg-type]
        seen.append((name(args), len(out), False))
        return code, out

    monkeypatch.setattr(staging, "run_git_capped", spy_capped)
    monkeypatch.setattr(staging, "run_git_bytes", spy_whole)
    monkeypatch.setattr(clone_module, "run_git_bytes", spy_whole)
    return seen


def many_files(ws: Workspace, count: int = FILES) -> None:
    (ws.path / "many").mkdir()
    for i in range(count):
        (ws.path / "many" / f"{i:04d}".ljust(40, "z")).write_text("x\n")


async def test_a_listing_past_the_cap_is_cut_and_blocks_the_push(
    ws: Workspace, reads: list[tuple[str, int, bool]]
) -> None:
    ws.max_listing_bytes = CAP
    many_files(ws)

    report = await inspect_workspace(ws, RepoConfig(max_changed_files=10_000))

    assert report.blocks_push and not report.empty
    assert report.findings() == [LISTING_SENTENCE]
    listings = [r for r in reads if r[0] == "ls-files"]
    [(_, tracked, tracked_cut), others] = listings  # --stage (the repository's), --others
    assert tracked < CAP and not tracked_cut and others == ("ls-files", CAP, True)
    assert "add" not in [r[0] for r in reads]  # nothing staged from a cut listing
    assert await ws.numstat() == DiffStat(complete=False)
    await ws.restore_paths(["many"])  # nothing to go on: left alone, and the push is blocked
    assert (ws.path / "many").exists()
    with pytest.raises(GitError, match="more files than Honk lists"):
        await ws.commit("x", **BOT)


async def test_every_listing_is_read_capped(
    ws: Workspace, reads: list[tuple[str, int, bool]]
) -> None:
    many_files(ws)

    report = await inspect_workspace(ws, RepoConfig(max_changed_files=10_000))

    assert not report.blocks_push and report.files_changed == FILES
    listings = [r for r in reads if r[0] == "ls-files"]
    assert len(listings) == 3 and not any(cut for _, _, cut in listings)
    assert all(size <= ws.max_listing_bytes for _, size, _ in listings)
    assert [r[0] for r in reads if r[0] != "ls-files"] == ["add"]  # the only uncapped command


async def test_numstat_is_parsed_off_the_event_loop(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    real = clone_module.parse_numstat

    def parse(output: str) -> DiffStat:
        threads.append(threading.current_thread())
        return real(output)

    monkeypatch.setattr(clone_module, "parse_numstat", parse)
    many_files(ws, 3)
    assert len((await ws.numstat()).files) == 3
    assert threads and threads[0] is not threading.main_thread()


def test_gitlinks_are_picked_out_of_a_listing_without_splitting_it() -> None:
    sha = "a" * 40
    listing = (
        f"100644 {'b' * 40} 0\tREADME.md\0"
        f"160000 {sha} 0\tsub\0"
        f"100644 {'c' * 40} 0\tdocs/160000 {sha} 0\tnot-a-gitlink\0"
        f"160000 {sha} 0\tcut-sh"  # the last record cut short: not taken
    ).encode()
    assert gitlinks(listing) == {b"sub": sha.encode()}


def test_nested_repositories_are_the_entries_ending_in_a_slash() -> None:
    listing = b"a.txt\0vendor/lib/\0x/y.txt\0deep/er/repo/\0cut/"
    assert nested_repos(listing) == [b"vendor/lib/", b"deep/er/repo/"]
    assert nested_repos(b"") == []


def test_changes_under_takes_the_wanted_paths_and_what_lies_beneath() -> None:
    listing = b"M\0src/app.py\0A\0src/new.py\0A\0srcs/x\0D\0README.md\0A\0deploy/x.sh\0"
    assert changes_under(listing, ["src", "README.md"]) == [
        (b"M", b"src/app.py"),
        (b"A", b"src/new.py"),
        (b"D", b"README.md"),
    ]
