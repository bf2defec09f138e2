"""The `.env` file: python-dotenv's `set_key` quotes and merges; this module keeps it private.

Setup writes the GitHub App's credentials here, for Honk to read back through python-dotenv (what
pydantic-settings uses). `set_key` replaces a key's bindings in place, keeps every other line and
quotes so the value reads back unchanged. What it does not do, this module adds: values it cannot
keep are refused, and the file is never readable by others, not even for a moment. `set_key`
keeps an existing file's mode (a 0644 `.env` would stay 0644) and rewrites through a temp file of
its own, so the keys are set on a 0600 copy inside a fresh 0700 directory that nobody else can
enter, and that copy is swapped in whole, with all keys at once.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values, set_key

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NEW_KEYS_HEADER = "# GitHub App registered by Honk's setup page\n"


# ---- pure: what can be written --------------------------------------------------------------
def check_env_entry(key: str, value: str) -> None:
    """Refuse what python-dotenv would not read back as written (ValueError says why)."""
    if not _ENV_KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a valid environment variable name.")
    if "${" in value:  # python-dotenv expands `${VAR}` even inside single quotes
        raise ValueError("a .env value cannot contain `${`: python-dotenv would expand it.")
    if any((ord(c) < 32 and c not in "\n\t") or c == "\x7f" for c in value):
        # `\r` included: python-dotenv reads the file with universal newlines, so it becomes `\n`
        raise ValueError("a .env value cannot contain control characters.")


def needs_header(existing: str, keys: Mapping[str, str]) -> bool:
    """Whether `set_key` will append any key, so a comment can say where the new lines came from."""
    present = dotenv_values(stream=io.StringIO(existing), interpolate=False)
    return any(key not in present for key in keys)


# ---- adapter: the file ----------------------------------------------------------------------
def write_env(path: Path, values: Mapping[str, str], *, header: str = NEW_KEYS_HEADER) -> None:
    """Merge `values` into the .env at `path`: private from the first byte, swapped in whole.

    `header` is a comment line put above the keys that are new, saying who added them."""
    for key, value in values.items():
        check_env_entry(key, value)
    target = path.resolve()
    try:
        existing = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = ""
    if needs_header(existing, values):
        existing += ("\n" if existing and not existing.endswith("\n") else "") + header
    workdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))  # 0700
    try:
        work = workdir / target.name
        fd = os.open(work, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(existing)
        for key, value in values.items():
            set_key(work, key, value)
        os.chmod(work, 0o600)  # whatever mode set_key's own temp file got, it sat in workdir
        _fsync(work)
        os.replace(work, target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _fsync(target.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
