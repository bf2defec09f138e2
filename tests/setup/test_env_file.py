"""The .env file: values read back unchanged, other lines survive, the file stays private."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from honk_app.setup.env_file import check_env_entry, write_env


# ---- values ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain-value_1.2:3@x/y+z,=",
        "two words",
        "hash # not a comment",
        "it's",
        'say "hi"',
        "back\\slash",
        "ends with backslash\\",
        "double \\\\ backslash and \\' quote",
        "$HOME stays",
        "line1\nline2\ttab",
        "-----BEGIN KEY-----\\nAAAA\\n-----END KEY-----",
        "ünïcödé €",
    ],
)
def test_written_values_read_back_unchanged(value: str, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("BEFORE=ok\n", encoding="utf-8")
    write_env(env, {"KEY": value, "AFTER": "ok"})
    assert dotenv_values(env) == {"BEFORE": "ok", "KEY": value, "AFTER": "ok"}


def test_values_dotenv_would_expand_or_garble_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expand"):
        check_env_entry("KEY", "a${HOME}b")
    with pytest.raises(ValueError, match="control"):
        check_env_entry("KEY", "bell\a")
    with pytest.raises(ValueError, match="control"):
        check_env_entry("KEY", "carriage\rreturn")  # python-dotenv would read it back as \n
    with pytest.raises(ValueError, match="not a valid environment variable name"):
        check_env_entry("BAD KEY", "x")
    env = tmp_path / ".env"
    env.write_text("PORT=1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expand"):
        write_env(env, {"APP_ID": "1", "PRIVATE_KEY": "${oops}"})
    assert env.read_text(encoding="utf-8") == "PORT=1\n"  # nothing written, not even APP_ID
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def test_merge_replaces_keys_in_place_and_keeps_everything_else(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# my settings\n"
        "PORT=8080\n"
        "\n"
        "export APP_ID=1  # old app\n"
        'PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----\n'
        "old\n"
        '-----END RSA PRIVATE KEY-----"\n'
        "LOG_LEVEL=debug\n"
        "APP_ID=2\n"
        "ANTHROPIC_API_KEY=keep-me",
        encoding="utf-8",
    )
    write_env(env, {"APP_ID": "99", "PRIVATE_KEY": "new\\nkey", "WEBHOOK_SECRET": "s3cret"})
    # set_key drops blank lines right before a key it replaces (python-dotenv PR #704 would keep
    # them) and writes no `export`; every other line, comments included, stays where it was.
    lines = [line for line in env.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines == [
        "# my settings",
        "PORT=8080",
        "APP_ID='99'",
        "PRIVATE_KEY='new\\\\nkey'",
        "LOG_LEVEL=debug",
        "APP_ID='99'",  # a later duplicate gets the new value too, so it cannot win over it
        "ANTHROPIC_API_KEY=keep-me",
        "# GitHub App registered by Honk's setup page",
        "WEBHOOK_SECRET='s3cret'",
    ]
    assert dotenv_values(env) == {
        "PORT": "8080",
        "APP_ID": "99",
        "PRIVATE_KEY": "new\\nkey",
        "LOG_LEVEL": "debug",
        "ANTHROPIC_API_KEY": "keep-me",
        "WEBHOOK_SECRET": "s3cret",
    }


def test_rewriting_known_keys_adds_no_header(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    write_env(env, {"APP_ID": "1"})
    write_env(env, {"APP_ID": "2"})
    assert env.read_text(encoding="utf-8") == (
        "# GitHub App registered by Honk's setup page\nAPP_ID='2'\n"
    )


# ---- writing the file -----------------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_env_is_never_readable_by_others_and_swaps_the_file_in_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"
    env.write_text("# mine\nPORT=8080\n", encoding="utf-8")
    env.chmod(0o644)
    swaps: list[tuple[int, int, str]] = []  # (mode, parent's mode, the destination's old text)
    real_replace = os.replace

    def watching_replace(src: Any, dst: Any) -> None:
        source = Path(src)
        if Path(dst) == env:
            swaps.append((_mode(source), _mode(source.parent), env.read_text(encoding="utf-8")))
        else:  # set_key rewriting the private copy: the copy's directory shuts others out
            assert _mode(source.parent) == 0o700 and _mode(source) == 0o600
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    old_umask = os.umask(0)  # the most permissive umask: nothing masks a wrong mode
    try:
        write_env(env, {"WEBHOOK_SECRET": "abc", "APP_ID": "7"})
    finally:
        os.umask(old_umask)
    assert swaps == [(0o600, 0o700, "# mine\nPORT=8080\n")]  # all keys arrive in one step
    assert _mode(env) == 0o600
    assert env.read_text(encoding="utf-8").startswith("# mine\nPORT=8080\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def test_a_new_env_file_is_private(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    old_umask = os.umask(0)
    try:
        write_env(env, {"APP_ID": "5"})
    finally:
        os.umask(old_umask)
    assert _mode(env) == 0o600
    assert dotenv_values(env) == {"APP_ID": "5"}


def test_write_env_leaves_no_temp_file_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"
    env.write_text("PORT=1\n", encoding="utf-8")

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_env(env, {"APP_ID": "5"})
    assert env.read_text(encoding="utf-8") == "PORT=1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]
