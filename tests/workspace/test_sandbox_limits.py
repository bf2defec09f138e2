"""Limits on a sandboxed command: real processes under tight limits, each bounded on its own.

Every hostile command here is bounded twice: by the limit under test (small: 64 processes,
256 MB, 10 MB files, 2 s of CPU, 24 MB of disk) and by its own shape or a time limit, so a limit
that failed would end the test, never the machine."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Literal, cast

import pytest

from honk_app.models import Limits, Reason
from honk_app.workspace.cgroup import CommandCgroup, delegated_parent
from honk_app.workspace.limits import (
    DiskMeter,
    Guard,
    count_tasks,
    diagnose,
    ulimit_prelude,
)
from honk_app.workspace.sandbox import Sandbox
from tests import needs

Mode = Literal["none", "bwrap"]
TIGHT = Limits(max_procs=64, max_memory_mb=256, max_cpu_s=2, max_file_mb=10, max_disk_mb=24)
# A fork bomb that keeps every process alive (so it cannot end on its own before the limit),
# and stops at depth 9 (at most 1023 processes) should every limit fail.
FORK_BOMB = (
    "f(){ if [ $1 -lt 9 ]; then f $(($1+1)) & f $(($1+1)) & fi; exec -a {m} sleep 30; }; f 0"
)


@pytest.fixture(params=["bwrap", "none"])
def mode(request: pytest.FixtureRequest) -> Mode:
    if request.param == "bwrap":
        needs.require_bwrap()
    return cast(Mode, request.param)


@pytest.fixture
def box(tmp_path: Path, mode: Mode) -> Sandbox:
    (tmp_path / "repo").mkdir()
    return Sandbox(tmp_path / "repo", temp_dir=tmp_path / "scratch", mode=mode, limits=TIGHT)


def live(marker: str) -> list[int]:
    """Pids of live processes whose argv[0] is `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            name = (entry / "cmdline").read_bytes().split(b"\0")[0]
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if name == marker.encode() and state != "Z":
            found.append(int(entry.name))
    return found


# (limit, command, sentence)
HITS: list[tuple[Reason, str, str]] = [
    (
        "memory",
        "python3 -c 'b = bytearray(1 << 30)'",
        "The command was stopped: it used more than 256 MB of memory.",
    ),
    (
        "file",
        "head -c 2000000000 /dev/zero > big",
        "The command was stopped: it tried to write a file larger than 10 MB.",
    ),
    (
        "file",
        'python3 -c \'open("big", "wb").write(bytes(20 << 20))\'',  # Python ignores SIGXFSZ
        "The command was stopped: it tried to write a file larger than 10 MB.",
    ),
    (
        "cpu",
        "while :; do :; done",
        "The command was stopped: it used more than 2 s of CPU.",
    ),
    (
        "disk",
        "for i in 1 2 3 4 5 6; do head -c 8000000 /dev/zero > f$i; done; sleep 20",
        "The command was stopped: the workspace grew past 24 MB.",
    ),
]


@pytest.mark.parametrize(("limit", "command", "sentence"), HITS, ids=[h[0] for h in HITS])
async def test_a_command_past_a_limit_ends_with_one_sentence(
    box: Sandbox, limit: Reason, command: str, sentence: str
) -> None:
    async with box:
        result = await box.run(command, timeout_s=30)
        sizes = [p.stat().st_size for p in box.workspace.iterdir()]
        after = await box.run("rm -f big f*; echo still here")
    assert not result.ok and not result.timed_out
    assert result.output.splitlines()[0] == sentence
    assert all(size <= 10 * 1024 * 1024 for size in sizes)
    assert after.ok and after.output == "still here\n"  # the sandbox, and the run, go on


async def test_a_fork_bomb_is_stopped_and_leaves_nothing_behind(box: Sandbox) -> None:
    marker = f"honk-bomb-{uuid.uuid4().hex[:12]}"
    async with box:
        result = await box.run(FORK_BOMB.replace("{m}", marker), timeout_s=30)
        after = await box.run("echo still here")
    assert not result.ok and not result.timed_out
    assert result.output.splitlines()[0] == (
        "The command was stopped: it started more than 64 processes at once."
    )
    assert result.duration_s < 15
    assert after.ok and after.output == "still here\n"
    for _ in range(100):
        if not live(marker):
            break
        await asyncio.sleep(0.05)
    assert not live(marker)


async def test_a_command_within_its_limits_gets_no_sentence(box: Sandbox) -> None:
    async with box:
        result = await box.run("head -c 5000000 /dev/zero > f && python3 -c 'print(len(f\"{1}\"))'")
    assert result.ok and result.output == "1\n"


async def test_a_workspace_past_its_disk_cap_may_shrink_but_not_grow(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "big").write_bytes(os.urandom(30 * 1024 * 1024))  # already past 24 MB
    async with Sandbox(tmp_path / "repo", mode="none", limits=TIGHT) as box:
        read = await box.run("wc -c < big")
        grow = await box.run("head -c 1000000 /dev/zero > more")
        shrink = await box.run("rm big more && echo gone")
    assert read.ok and grow.output.startswith("The command was stopped: the workspace grew")
    assert shrink.ok and shrink.output == "gone\n"


# ---- the rlimit prelude and the sentences (no process needed) -------------------------------


def test_the_prelude_sets_every_limit_and_nproc_only_inside_bubblewrap() -> None:
    inside = ulimit_prelude(TIGHT, nproc=True)
    assert "ulimit -S -t 2 && ulimit -H -t 7" in inside  # SIGXCPU first, SIGKILL 5 s later
    assert "ulimit -S -f 10240 && ulimit -H -f 10240" in inside
    assert "ulimit -S -d 262144 && ulimit -H -d 262144" in inside
    assert "ulimit -H -s 262144" in inside and "ulimit -H -c 0" in inside
    assert "ulimit -S -u 64 && ulimit -H -u 64" in inside
    assert inside.endswith('-u SHLVL "$@"')
    assert "-u 64" not in ulimit_prelude(TIGHT, nproc=False)  # per user outside a namespace
    assert " -t " not in ulimit_prelude(TIGHT, nproc=True, cpu=False)
    off = ulimit_prelude(Limits(0, 0, 0, 0, 0), nproc=True)
    assert off.split(" && ")[2:] == [off.split(" && ")[-1]]  # only `core 0`, then exec


def test_the_prelude_never_asks_for_more_than_honks_own_hard_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = resource.getrlimit

    def lowered(res: int) -> tuple[int, int]:
        return (100, 100) if res == resource.RLIMIT_NPROC else real(res)

    monkeypatch.setattr(resource, "getrlimit", lowered)
    assert "ulimit -S -u 100 && ulimit -H -u 100" in ulimit_prelude(Limits(), nproc=True)


DIAGNOSES: list[tuple[int, str, Reason | None]] = [
    (0, "MemoryError", None),  # a success never gets a sentence
    (128 + signal.SIGXCPU, "", "cpu"),
    (-signal.SIGXCPU, "", "cpu"),
    (128 + signal.SIGXFSZ, "", "file"),
    (1, "OSError: [Errno 27] File too large", "file"),
    (1, "Traceback...\nMemoryError", "memory"),
    (134, "terminate called after throwing an instance of 'std::bad_alloc'", "memory"),
    (254, "bash: fork: retry: Resource temporarily unavailable", "procs"),
    (1, "FAILED tests/test_x.py::test_y", None),
]


@pytest.mark.parametrize(("code", "output", "reason"), DIAGNOSES)
def test_how_a_command_ended_names_the_limit(code: int, output: str, reason: Reason | None) -> None:
    assert diagnose(TIGHT, returncode=code, output=output) == reason
    assert diagnose(Limits(0, 0, 0, 0, 0), returncode=code, output=output) is None


# ---- the watchdog's measures ---------------------------------------------------------------


def test_tasks_are_counted_over_the_whole_tree() -> None:
    script = "sleep 30 & sleep 30 & (sleep 30 & wait) & wait"
    tree = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    try:
        for _ in range(200):
            if count_tasks(tree.pid, 100) >= 5:
                break
            time.sleep(0.02)
        assert count_tasks(tree.pid, 100) == 5  # bash, 2 sleeps, a subshell and its sleep...
        assert count_tasks(tree.pid, 2) == 3  # ...and the count stops once past the cap
    finally:
        os.killpg(tree.pid, signal.SIGKILL)  # the group this test started
        tree.wait()


def test_the_disk_is_walked_only_when_the_filesystem_grew_enough(tmp_path: Path) -> None:
    meter = DiskMeter([tmp_path], cap_mb=24)
    (tmp_path / "a").write_bytes(b"x" * 10_000)
    (tmp_path / "sub").mkdir()
    os.link(tmp_path / "a", tmp_path / "sub" / "hard-link")  # counted once
    (tmp_path / "sub" / "empty").touch()  # an entry costs at least a block
    allowance = meter.start()
    assert allowance == 24 * 1024 * 1024
    assert meter.size is not None and 12_000 < meter.size < 30_000
    assert not meter.over(allowance)
    (tmp_path / "sub" / "big").write_bytes(os.urandom(25 * 1024 * 1024))
    assert meter.over(allowance)
    assert meter.over(allowance)  # still, for the final check after the watchdog's
    assert meter.stale  # measured afresh before the next command
    assert meter.start() > 25 * 1024 * 1024


# ---- cgroups v2 (the file protocol, on a stand-in directory) ---------------------------------


def test_a_command_cgroup_is_set_up_read_and_removed(tmp_path: Path) -> None:
    cgroup = CommandCgroup.create(tmp_path, TIGHT)
    assert cgroup is not None and cgroup.path.parent == tmp_path
    assert (cgroup.path / "memory.max").read_text() == str(256 * 1024 * 1024)
    assert (cgroup.path / "pids.max").read_text() == "64"
    assert (cgroup.path / "memory.swap.max").read_text() == "0"
    wrapped = cgroup.wrap(["bwrap", "--", "bash"])
    assert wrapped[-3:] == ["bwrap", "--", "bash"] and str(cgroup.path / "cgroup.procs") in wrapped
    assert cgroup.tripped() is None
    (cgroup.path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2400000\n")
    assert cgroup.tripped() == "cpu"
    (cgroup.path / "pids.events").write_text("max 3\n")
    assert cgroup.tripped() == "procs"
    (cgroup.path / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
    assert cgroup.tripped() == "memory"


async def test_the_watchdog_stops_a_command_whose_cgroup_hit_a_limit(tmp_path: Path) -> None:
    cgroup = CommandCgroup.create(tmp_path, TIGHT)
    assert cgroup is not None
    stopped: list[bool] = []
    guard = Guard(TIGHT, os.getpid(), stop=lambda: stopped.append(True), cgroup=cgroup)
    watching = asyncio.create_task(guard.watch())
    await asyncio.sleep(0.3)
    assert not stopped and not watching.done()
    (cgroup.path / "pids.events").write_text("max 1\n")
    await asyncio.wait_for(watching, timeout=5)
    assert stopped == [True] and guard.tripped == "procs"


def test_no_cgroup_is_taken_when_it_is_switched_off() -> None:
    assert delegated_parent("off") is None
