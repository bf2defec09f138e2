"""What each of Honk's settings accepts, and the one line a wrong value becomes.

Pure: types that check one value (for `settings.py`'s fields) and `validation_lines`, which turns
pydantic's multi-line report (the value, a web link, maybe a secret) into one line per variable
that names it, says what it accepts and what was wrong, and shows the value only if not secret.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, SecretStr, ValidationError
from pydantic.fields import FieldInfo

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# What the store (psycopg 3, sqlite3) and DBOS can open; anything else fails only at connect time.
DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql", "postgresql+psycopg")

# What a wrong value's line says a setting accepts, where several settings share the words.
URL = "an http:// or https:// address"
COUNT = "a whole number, 0 or more (0 is no limit)"
USD = "an amount in US dollars, 0 or more"

_DNS_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_HOST_PORT = re.compile(_HOST.pattern + r"(:[0-9]{1,5})?")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,38}")
_REPO = re.compile(r"[^/\s]+/[^/\s]+")
_EXECUTOR = re.compile(r"[A-Za-z0-9._-]{1,100}")


def shown(value: str, limit: int = 60) -> str:
    """A wrong value, quoted and escaped onto one line, and cut short: it goes into a log line."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _items(value: str, separator: str) -> list[str]:
    return [item.strip() for item in value.split(separator) if item.strip()]


def _webhook_path(value: str) -> str:
    if not value.strip() or any(c.isspace() or c in "?#" for c in value):
        raise ValueError(f"{shown(value)} is not one")
    return value if value.startswith("/") else "/" + value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{shown(value)} is not one")
    return value


def _host_name(value: str) -> str:
    if not _HOST_PORT.fullmatch(value):
        raise ValueError(f"{shown(value)} is not one (no https:// and no path)")
    return value


def _listen_address(value: str) -> str:
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(value.strip("[]")))
    if not _HOST.fullmatch(value):
        raise ValueError(f"{shown(value)} is not one (the port goes in PORT)")
    return value


def _log_level(value: str) -> str:
    if value.strip().lower() not in LOG_LEVELS:
        raise ValueError(f"{shown(value)} is not one")
    return value.strip().lower()


def _one_token(value: SecretStr) -> SecretStr:
    if any(not c.isprintable() or c.isspace() for c in value.get_secret_value()):
        raise ValueError("the value given has a space or a control character (it is not shown)")
    return value


def _supported_database(value: SecretStr) -> SecretStr:
    scheme = value.get_secret_value().partition(":")[0].lower()
    if scheme not in DATABASE_SCHEMES:
        named = f"{scheme}://" if _WORD.fullmatch(scheme.replace("+", "")) else "this one"
        raise ValueError(f"only SQLite and PostgreSQL are supported, not {named}")
    return value


def _label(value: str) -> str:
    if not value.strip() or len(value) > 50:
        raise ValueError(f"{shown(value)} is not one")
    return value


def _command_word(value: str) -> str:
    if not _WORD.fullmatch(value.removeprefix("/")):
        raise ValueError(f"{shown(value)} is not one")
    return value.removeprefix("/")


def _repositories(value: str) -> str:
    for entry in _items(value, ","):
        if not _REPO.fullmatch(entry):
            raise ValueError(f"{shown(entry)} is not owner/repo")
    return value


def _bots(value: str) -> str:
    for entry in _items(value, ","):
        if not entry.lower().endswith("[bot]") or any(c.isspace() for c in entry):
            raise ValueError(f"{shown(entry)} is not a bot login")
    return value


def _executor_id(value: str) -> str:
    # It names this process's workspace directory: no path separators, no "." or "..".
    if value and (not _EXECUTOR.fullmatch(value) or set(value) == {"."}):
        raise ValueError(f"{shown(value)} is not one")
    return value


def _cgroup(value: str) -> str:
    if value.strip() not in ("", "off") and not value.strip().startswith("/"):
        raise ValueError(f"{shown(value)} is neither")
    return value


def _absolute_paths(value: str) -> str:
    for entry in _items(value, ":"):
        if not entry.startswith("/"):
            raise ValueError(f"{shown(entry)} is not an absolute path")
    return value


WebhookPath = Annotated[str, AfterValidator(_webhook_path)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
HostName = Annotated[str, AfterValidator(_host_name)]
ListenAddress = Annotated[str, AfterValidator(_listen_address)]
LogLevel = Annotated[str, AfterValidator(_log_level)]
ApiKey = Annotated[SecretStr, AfterValidator(_one_token)]
DatabaseUrl = Annotated[SecretStr, AfterValidator(_supported_database)]
LabelName = Annotated[str, AfterValidator(_label)]
CommandWord = Annotated[str, AfterValidator(_command_word)]
RepositoryList = Annotated[str, AfterValidator(_repositories)]
BotList = Annotated[str, AfterValidator(_bots)]
ExecutorId = Annotated[str, AfterValidator(_executor_id)]
CgroupSetting = Annotated[str, AfterValidator(_cgroup)]
AbsolutePaths = Annotated[str, AfterValidator(_absolute_paths)]


def validation_lines(exc: ValidationError, fields: Mapping[str, FieldInfo]) -> list[str]:
    """One line per wrong setting: the variable, what it accepts (its field's description) and
    what was wrong; the value only for a setting that is not a secret."""
    lines: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "A setting"
        field = fields.get(name)
        accepts = field.description if field is not None and field.description else "valid"
        reason = (error.get("ctx") or {}).get("error")
        if isinstance(reason, ValueError):
            detail = f"; {reason}"  # the words of the checks above, which never hold a secret
        elif (field is not None and _is_secret(field)) or not isinstance(error["input"], str):
            detail = " (the value given is not shown)"
        else:
            detail = f", not {shown(error['input'])}"
        lines.setdefault(name, f"{name} must be {accepts}{detail}.")
    return list(lines.values())


def _is_secret(field: FieldInfo) -> bool:
    return "SecretStr" in str(field.annotation)
