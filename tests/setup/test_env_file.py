"""The .env file: values read back unchanged, other lines survive, the file stays private."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from honk_app.setup.env_file import merge_env_text, quote_env_value, write_env


# ---- .env text ------------------------------------------------------------------------------
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
        "line1\nline2\ttab\r",
        "-----BEGIN KEY-----\\nAAAA\\n-----END KEY-----",
    ],
)
def test_quoted_values_read_back_unchanged(value: str, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"KEY={quote_env_value(value)}\nAFTER=ok\n", encoding="utf-8")
    assert dotenv_values(env) == {"KEY": value, "AFTER": "ok"}


def test_values_dotenv_would_expand_or_garble_are_refused() -> None:
    with pytest.raises(ValueError, match="expand"):
        quote_env_value("a${HOME}b")
    with pytest.raises(ValueError, match="control"):
        quote_env_value("bell\a")
    with pytest.raises(ValueError, match="not a valid environment variable name"):
        merge_env_text("", {"BAD KEY": "x"})


def test_merge_replaces_keys_in_place_and_keeps_everything_else() -> None:
    existing = (
        "# my settings\n"
        "PORT=8080\n"
        "\n"
        "export APP_ID=1  # old app\n"
        'PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----\n'
        "old\n"
        '-----END RSA PRIVATE KEY-----"\n'
        "LOG_LEVEL=debug\n"
        "APP_ID=2\n"
        "ANTHROPIC_API_KEY=keep-me"
    )
    merged = merge_env_text(
        existing, {"APP_ID": "99", "PRIVATE_KEY": "new\\nkey", "WEBHOOK_SECRET": "s3cret"}
    )
    assert merged == (
        "# my settings\n"
        "PORT=8080\n"
        "\n"
        "export APP_ID=99\n"
        "PRIVATE_KEY='new\\nkey'\n"
        "LOG_LEVEL=debug\n"
        "ANTHROPIC_API_KEY=keep-me\n"
        "# GitHub App registered by Honk's setup page\n"
        "WEBHOOK_SECRET=s3cret\n"
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
    seen: list[tuple[int, str]] = []
    real_replace = os.replace

    def watching_replace(src: Any, dst: Any) -> None:
        seen.append((_mode(Path(src)), Path(dst).read_text(encoding="utf-8")))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watching_replace)
    write_env(env, {"WEBHOOK_SECRET": "abc"})
    assert seen == [(0o600, "# mine\nPORT=8080\n")]  # the new text arrives in one step
    assert _mode(env) == 0o600
    assert env.read_text(encoding="utf-8").startswith("# mine\nPORT=8080\n")


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
