"""The `honk` command as a self-hoster runs it: a wrong setting is one line and exit 2, a worker
on SQLite says what to run instead, and a started Honk keeps its files to its own user."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fakes.github_auth import generate_private_key_pem
from tests.fakes.loopback import free_port
from tests.waiting import wait_for

PEM = generate_private_key_pem()
SECRET = "webhook-secret-value-123"
APP = {
    "APP_ID": "12345",
    "PRIVATE_KEY": PEM.strip().replace("\n", "\\n"),
    "WEBHOOK_SECRET": SECRET,
    "GITHUB_API_URL": "http://127.0.0.1:9",  # nothing listens: startup must not need GitHub
}


def honk_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """A clean environment: only what the test sets, so the developer's own settings stay out."""
    (tmp_path / "home").mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "HONK_DATA_DIR": str(tmp_path / "data"),
        "HONK_WORKSPACE_DIR": str(tmp_path / "workspaces"),
        **values,
    }


def run_honk(tmp_path: Path, *args: str, **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "honk_app", *args],
        cwd=tmp_path,
        env=honk_env(tmp_path, **values),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("command", "name", "value"),
    [
        ("serve", "PORT", "abc"),
        ("serve", "HONK_MAX_RUNS", "999"),
        ("serve", "HONK_AGENT", "foo"),
        ("serve", "HONK_POLL_INTERVAL_S", "0"),
        ("serve", "LOG_LEVEL", "verbose"),
        ("serve", "HONK_DATABASE_URL", "mysql://honk:hunter2@db.internal/honk"),
        ("serve", "PRIVATE_KEY", "hunter2-not-a-key"),
        ("worker", "HONK_DATABASE_URL", "mysql://honk:hunter2@db.internal/honk"),
        ("worker", "PORT", "abc"),
    ],
)
def test_a_wrong_setting_is_one_line_and_exit_2(
    tmp_path: Path, command: str, name: str, value: str
) -> None:
    done = run_honk(tmp_path, command, **{**APP, name: value})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"honk: {name} must be ")
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
    assert SECRET not in done.stderr and "BEGIN" not in done.stderr


def test_the_database_url_names_the_two_databases_honk_supports(tmp_path: Path) -> None:
    done = run_honk(tmp_path, "serve", **APP, HONK_DATABASE_URL="mysql://honk:pw@db/honk")
    assert "only SQLite and PostgreSQL are supported" in done.stderr
    assert "ModuleNotFoundError" not in done.stderr


@pytest.mark.parametrize(
    ("args", "command"),
    [(["worker"], "honk worker"), (["serve", "--no-worker"], "honk serve --no-worker")],
)
@pytest.mark.parametrize("app", [APP, {}], ids=["configured", "fresh"])
def test_a_worker_on_sqlite_says_to_run_honk_serve(
    tmp_path: Path, args: list[str], command: str, app: dict[str, str]
) -> None:
    done = run_honk(tmp_path, *args, **app)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"honk: {command} is for the PostgreSQL mode (HONK_DATABASE_URL=postgresql://…); "
        "with SQLite, run `honk serve`, which runs the work itself."
    ]
    assert not (tmp_path / "data" / "honk.sqlite").exists()


def test_a_worker_on_sqlite_with_a_wrong_key_hears_of_both_mode_first(tmp_path: Path) -> None:
    done = run_honk(tmp_path, "worker", **{**APP, "PRIVATE_KEY": "hunter2-not-a-key"})
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert [line.split()[1] for line in lines] == ["honk", "PRIVATE_KEY"]
    assert "hunter2" not in done.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_started_honk_keeps_its_data_to_its_own_user(tmp_path: Path) -> None:
    """A data dir an older Honk left open to everyone is tightened, and the database with the
    -wal and -shm files SQLite adds as it runs is 600, all seen on disk while Honk serves."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    old = data / "notes.txt"
    old.write_text("from an older Honk")
    old.chmod(0o644)
    port = free_port()
    log = tmp_path / "honk.log"
    with log.open("wb") as out:
        honk = subprocess.Popen(
            [sys.executable, "-m", "honk_app", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=honk_env(tmp_path, **APP, HONK_EXECUTOR_ID="cli-test", HONK_SANDBOX="off"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def healthy() -> bool:
            assert honk.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, "honk serve to answer /healthz", timeout=90)
        database = data / "honk.sqlite"
        wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
        wait_for(lambda: wal.exists() and shm.exists(), "SQLite's -wal and -shm files")
        assert mode(data) == 0o700
        assert {p.name: mode(p) for p in (database, wal, shm, old)} == {
            "honk.sqlite": 0o600,
            "honk.sqlite-wal": 0o600,
            "honk.sqlite-shm": 0o600,
            "notes.txt": 0o600,
        }
        assert f"HONK_DATA_DIR {data} was open to other users" in log.read_text()
    finally:
        honk.send_signal(signal.SIGTERM)
        try:
            honk.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(honk.pid, signal.SIGKILL)
            honk.wait(timeout=10)
    leftover = [p for p in data.rglob("*") if mode(p) & 0o077]
    assert leftover == []
