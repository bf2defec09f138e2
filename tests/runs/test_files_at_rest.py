"""Honk's data directory and SQLite files are its user's only, tightened if they were not;
tests/test_cli.py checks the same on the files of a running `honk serve`."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from honk_app.runs.runtime import private_data_dir, private_sqlite_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_data_dir_is_700(tmp_path: Path) -> None:
    data = tmp_path / "a" / "data"
    private_data_dir(data)
    assert mode(data) == 0o700


def test_an_open_data_dir_is_tightened_without_following_links(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not Honk's")
    outside.chmod(0o644)
    data = tmp_path / "data"
    (data / "mirrors" / "octo").mkdir(parents=True)
    for directory in (data, data / "mirrors", data / "mirrors" / "octo"):
        directory.chmod(0o755)
    (data / "honk.sqlite").write_bytes(b"")
    (data / "honk.sqlite").chmod(0o644)
    (data / "mirrors" / "octo" / "hook").write_text("#!/bin/sh\n")
    (data / "mirrors" / "octo" / "hook").chmod(0o775)
    (data / "link").symlink_to(outside)
    with caplog.at_level(logging.WARNING, logger="honk.runtime"):
        private_data_dir(data)
    assert mode(data) == mode(data / "mirrors") == mode(data / "mirrors" / "octo") == 0o700
    assert mode(data / "honk.sqlite") == 0o600
    assert mode(data / "mirrors" / "octo" / "hook") == 0o700  # still runnable by its owner
    assert mode(outside) == 0o644
    assert f"HONK_DATA_DIR {data} was open to other users" in caplog.text
    assert "made 5 files and directories" in caplog.text
    caplog.clear()
    private_data_dir(data)
    assert caplog.text == ""  # said once, when something changed


def test_a_sqlite_database_anywhere_is_created_600_and_tightened(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.sqlite"
    private_sqlite_file(f"sqlite:///{fresh}")
    assert mode(fresh) == 0o600
    old = tmp_path / "old.sqlite"
    for path in (old, Path(f"{old}-wal"), Path(f"{old}-shm")):
        path.write_bytes(b"")
        path.chmod(0o644)
    private_sqlite_file(f"sqlite:///{old}")
    assert [mode(p) for p in tmp_path.glob("old.sqlite*")] == [0o600, 0o600, 0o600]


def test_a_postgresql_url_touches_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    private_sqlite_file("postgresql://honk:pw@db/honk")
    assert list(tmp_path.iterdir()) == []
