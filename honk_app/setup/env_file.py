"""The `.env` file: quote values so every reader gets them back, merge, and write it privately.

Setup writes the GitHub App's credentials here. The text must read back unchanged through
python-dotenv, a shell and docker's --env-file; the user's other lines must survive; and the file
must never be readable by others, not even for a moment. The text is pure; `write_env` is the
one adapter.
"""

from __future__ import annotations

import io
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

from dotenv.parser import parse_stream

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_VALUE = re.compile(r"[A-Za-z0-9_./:@+,=-]*")
_DOUBLE_QUOTE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


# ---- pure: .env text ------------------------------------------------------------------------
def quote_env_value(value: str) -> str:
    """A value python-dotenv, a shell and docker's --env-file all read back unchanged."""
    if "${" in value:
        raise ValueError("a .env value cannot contain `${`: python-dotenv would expand it.")
    if _BARE_VALUE.fullmatch(value):
        return value
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise ValueError("a .env value cannot contain control characters.")
    if any(c in value for c in "\n\r\t"):
        return '"' + "".join(_DOUBLE_QUOTE_ESCAPES.get(c, c) for c in value) + '"'
    # Single quotes keep everything literal; python-dotenv only decodes \\ and \' inside them.
    out = []
    for i, char in enumerate(value):
        after = value[i + 1 : i + 2]
        if char == "'" or (char == "\\" and after in ("", "\\", "'")):
            out.append("\\" + char)
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


def merge_env_text(existing: str, values: Mapping[str, str]) -> str:
    """Replace the bindings of `values`' keys in place, keep every other line, append the rest."""
    for key in values:
        if not _ENV_KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not a valid environment variable name.")
    pending = dict(values)
    parts: list[str] = []
    for binding in parse_stream(io.StringIO(existing)):
        text = binding.original.string
        if binding.key not in values:
            parts.append(text)
            continue
        body = text.lstrip()
        lead = text[: len(text) - len(body)]
        if binding.key not in pending:
            parts.append(lead)  # a later duplicate would win over the new value: drop it
            continue
        export = "export " if re.match(r"export\s", body) else ""
        ending = "\r\n" if text.endswith("\r\n") else "\n"
        parts.append(f"{lead}{export}{binding.key}={quote_env_value(pending.pop(binding.key))}")
        parts.append(ending)
    merged = "".join(parts)
    if pending:
        if merged and not merged.endswith("\n"):
            merged += "\n"
        merged += "# GitHub App registered by Honk's setup page\n"
        merged += "".join(f"{k}={quote_env_value(v)}\n" for k, v in pending.items())
    return merged


# ---- adapter: the file ----------------------------------------------------------------------
def write_env(path: Path, values: dict[str, str]) -> None:
    """Merge `values` into the .env at `path`: mode 0600 from the first byte, swapped in whole."""
    target = path.resolve()
    try:
        with open(target, encoding="utf-8", newline="") as existing_file:
            existing = existing_file.read()
    except FileNotFoundError:
        existing = ""
    text = merge_env_text(existing, values)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a umask can only remove bits; this makes the mode exact
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
