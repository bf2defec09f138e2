"""Server settings from the environment and `.env`, checked before Honk listens.

Probot's names (APP_ID, PRIVATE_KEY, WEBHOOK_SECRET, WEBHOOK_PATH, PORT, LOG_LEVEL) so that people
who ran a Probot app know them already. Secrets are SecretStr so a repr or a log line never shows
them. A wrong value is one line naming the variable and what it accepts, never a secret's value:
`load_settings` turns pydantic's report into such lines (setting_values.py), and `problems()`
adds those of the GitHub App settings, which only matter once the App is set up.
"""

from __future__ import annotations

import base64
import binascii
import os
import socket
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from honk_app.models import Limits
from honk_app.setting_values import (
    COUNT,
    URL,
    USD,
    AbsolutePaths,
    ApiKey,
    BotList,
    CgroupSetting,
    CommandWord,
    DatabaseUrl,
    ExecutorId,
    HostName,
    HttpUrl,
    LabelName,
    ListenAddress,
    LogLevel,
    RepositoryList,
    WebhookPath,
    shown,
    validation_lines,
)

AgentName = Literal["builtin", "claude-code"]


# Paths Honk serves itself; the webhook route comes first, so it must not take one of them.
HONK_PAGES = ("/", "/ping", "/healthz", "/setup/callback", "/setup/anthropic-key")
PATH_LIMIT = 300  # a path is shown longer than other values: its end is what tells one apart


class SettingsError(Exception):
    """Startup cannot go on; `lines` holds one readable line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def normalise_private_key(raw: str) -> str:
    """Accept a PEM, a PEM with literal `\\n` escapes (one `.env` line), or base64 of a PEM."""
    text = raw.strip().strip('"').strip("'")
    if "-----BEGIN" in text:
        return text.replace("\\n", "\n").strip() + "\n"
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return text
    return decoded.strip() + "\n" if "-----BEGIN" in decoded else text


class Settings(BaseSettings):
    """Each field's `description` says what it accepts: a wrong value's line reads it out."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    APP_ID: str | None = Field(None, description="the numeric id of the GitHub App")
    PRIVATE_KEY: SecretStr | None = Field(None, description="the App's PEM private key")
    PRIVATE_KEY_PATH: Path | None = Field(None, description="the path of the App's .pem file")
    WEBHOOK_SECRET: SecretStr | None = Field(None, description="the App's webhook secret")
    WEBHOOK_PATH: WebhookPath = Field(
        "/api/github/webhooks", description="a URL path like /webhooks"
    )
    GITHUB_API_URL: HttpUrl | None = Field(None, description=URL)
    GHE_HOST: HostName | None = Field(None, description="a host name like github.example.com")
    GITHUB_URL: HttpUrl = Field("https://github.com", description=URL)
    HOST: ListenAddress = Field(
        "0.0.0.0",  # noqa: S104 - a server that GitHub must reach
        description="an IP address or host name to listen on, like 0.0.0.0 or 127.0.0.1",
    )
    PORT: int = Field(3000, ge=1, le=65535, description="a port number from 1 to 65535")
    LOG_LEVEL: LogLevel = Field("info", description="one of debug, info, warning, error, critical")
    ANTHROPIC_API_KEY: ApiKey | None = Field(
        None, description="an Anthropic API key on one line, without spaces"
    )
    ANTHROPIC_BASE_URL: HttpUrl | None = Field(None, description=URL)
    HONK_DATA_DIR: Path = Field(Path(".honk"), description="a directory Honk can create and write")
    HONK_DATABASE_URL: DatabaseUrl | None = Field(
        None, description="a postgresql://user:password@host/database or sqlite:///path URL"
    )
    HONK_LABEL: LabelName = Field("honk", description="a GitHub label name of 1 to 50 characters")
    HONK_COMMAND: CommandWord = Field(
        "honk", description="one word of letters, digits, - and _ (the honk of /honk)"
    )
    HONK_MAX_RUNS: int = Field(2, ge=1, le=64, description="a whole number from 1 to 64")
    HONK_REPO_ALLOWLIST: RepositoryList = Field(
        "", description="comma-separated owner/repo names (owner/* for all of an owner's)"
    )
    HONK_ALLOWED_BOTS: BotList = Field(
        "", description="comma-separated bot logins ending in [bot], like dependabot[bot]"
    )
    HONK_EXECUTOR_ID: ExecutorId | None = Field(
        None, description="up to 100 letters, digits, '.', '_' and '-', like honk-worker-1"
    )
    HONK_AGENT: AgentName = Field("builtin", description="builtin or claude-code")
    HONK_WORKSPACE_DIR: Path | None = Field(None, description="a directory Honk can create")
    # Where GitHub reaches this server (setup mode).
    HONK_PUBLIC_URL: HttpUrl | None = Field(None, description=URL)
    HONK_POLL_INTERVAL_S: float = Field(
        1.0, gt=0, le=60, description="a number of seconds, more than 0 and at most 60"
    )
    HONK_ACCESS_LOG: bool = Field(False, description="true or false")
    # "off" runs commands unconfined where bubblewrap cannot work; every report then says so.
    HONK_SANDBOX: Literal["on", "off"] = Field("on", description="on or off")
    # Hosts a `setup_network: true` command may reach through Honk's proxy (unset: registries).
    HONK_EGRESS_ALLOW: str | None = Field(None, description="comma-separated host names")
    # The sandbox (honk_app/workspace/limits.py, confine.py); a limit of 0 is no limit.
    HONK_SANDBOX_MAX_PROCS: int = Field(512, ge=0, description=COUNT)
    HONK_SANDBOX_MAX_MEMORY_MB: int = Field(4096, ge=0, description=COUNT)
    HONK_SANDBOX_MAX_CPU_S: int = Field(1800, ge=0, description=COUNT)
    HONK_SANDBOX_MAX_FILE_MB: int = Field(1024, ge=0, description=COUNT)
    HONK_SANDBOX_MAX_DISK_MB: int = Field(4096, ge=0, description=COUNT)
    # "": Honk's own cgroup if delegated; a cgroup's path; "off".
    HONK_SANDBOX_CGROUP: CgroupSetting = Field(
        "", description="off or the absolute path of a cgroup"
    )
    # Host paths a sandbox may read (toolchains).
    HONK_SANDBOX_READONLY: AbsolutePaths = Field("", description="colon-separated absolute paths")
    # Budgets beyond one run (honk_app/runs/budgets.py), in USD; unset is unlimited. Days and
    # months are UTC: a day's budget resets at 00:00 UTC, a month's on the 1st at 00:00 UTC.
    HONK_BUDGET_REPO_DAY_USD: float | None = Field(None, ge=0, description=USD)
    HONK_BUDGET_PERSON_DAY_USD: float | None = Field(None, ge=0, description=USD)
    HONK_BUDGET_INSTALLATION_MONTH_USD: float | None = Field(None, ge=0, description=USD)

    # ---- derived values -------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        if self.GITHUB_API_URL:
            return self.GITHUB_API_URL.rstrip("/")
        if self.GHE_HOST:
            return f"https://{self.GHE_HOST}/api/v3"
        return "https://api.github.com"

    @property
    def web_url(self) -> str:
        if self.GHE_HOST and self.GITHUB_URL == "https://github.com":
            return f"https://{self.GHE_HOST}"
        return self.GITHUB_URL.rstrip("/")

    @property
    def data_dir(self) -> Path:
        return self.HONK_DATA_DIR.resolve()

    @property
    def database_url(self) -> str:
        if self.HONK_DATABASE_URL is not None:
            return self.HONK_DATABASE_URL.get_secret_value()
        return f"sqlite:///{self.data_dir / 'honk.sqlite'}"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgres://", "postgresql://", "postgresql+"))

    @property
    def repo_allowlist(self) -> tuple[str, ...]:
        return tuple(p.strip().lower() for p in self.HONK_REPO_ALLOWLIST.split(",") if p.strip())

    @property
    def sandbox_readonly(self) -> tuple[Path, ...]:
        """Toolchains outside /usr the operator lets every sandbox read (HONK_SANDBOX_READONLY)."""
        return tuple(Path(p.strip()) for p in self.HONK_SANDBOX_READONLY.split(":") if p.strip())

    @property
    def sandbox_limits(self) -> Limits:
        return Limits(
            max_procs=self.HONK_SANDBOX_MAX_PROCS,
            max_memory_mb=self.HONK_SANDBOX_MAX_MEMORY_MB,
            max_cpu_s=self.HONK_SANDBOX_MAX_CPU_S,
            max_file_mb=self.HONK_SANDBOX_MAX_FILE_MB,
            max_disk_mb=self.HONK_SANDBOX_MAX_DISK_MB,
            cgroup=self.HONK_SANDBOX_CGROUP.strip(),
        )

    @property
    def allowed_bots(self) -> frozenset[str]:
        return frozenset(b.strip().lower() for b in self.HONK_ALLOWED_BOTS.split(",") if b.strip())

    @property
    def app_id(self) -> int:
        return int(self.APP_ID or "0")

    @property
    def has_app_credentials(self) -> bool:
        """All three of app id, private key and webhook secret are set (else: setup mode)."""
        key_given = self.PRIVATE_KEY is not None or self.PRIVATE_KEY_PATH is not None
        return bool(self.APP_ID) and key_given and self.WEBHOOK_SECRET is not None

    @property
    def needs_setup(self) -> bool:
        """Nothing of the App is configured: serve the manifest flow, like Probot."""
        return not (
            self.APP_ID
            or self.PRIVATE_KEY is not None
            or self.PRIVATE_KEY_PATH is not None
            or self.WEBHOOK_SECRET is not None
        )

    def executor_id(self, role: str) -> str:
        """Stable across restarts so a process recovers its own pending runs."""
        if self.HONK_EXECUTOR_ID:
            return self.HONK_EXECUTOR_ID
        return f"{socket.gethostname()}-{role}"

    def private_key_pem(self) -> str:
        if self.PRIVATE_KEY is not None:
            return normalise_private_key(self.PRIVATE_KEY.get_secret_value())
        if self.PRIVATE_KEY_PATH is not None:
            return normalise_private_key(self.PRIVATE_KEY_PATH.read_text(encoding="utf-8"))
        raise SettingsError(["PRIVATE_KEY or PRIVATE_KEY_PATH is not set."])

    def known_secrets(self) -> list[str]:
        """Exact values to redact from anything Honk shows or stores."""
        values = [self.WEBHOOK_SECRET, self.ANTHROPIC_API_KEY, self.PRIVATE_KEY]
        found = [v.get_secret_value() for v in values if v is not None]
        if self.HONK_DATABASE_URL is not None:
            found.append(self.HONK_DATABASE_URL.get_secret_value())
        return found

    def problems(self) -> list[str]:
        """One line per problem of the App settings; never includes a secret's value."""
        lines: list[str] = []
        if self.WEBHOOK_SECRET is None or not self.WEBHOOK_SECRET.get_secret_value():
            lines.append("WEBHOOK_SECRET is not set: Honk cannot verify webhooks without it.")
        if not self.APP_ID:
            lines.append("APP_ID is not set.")
        elif not self.APP_ID.strip().isdigit():
            lines.append(
                "APP_ID must be the numeric id of the GitHub App (its settings page shows it), "
                f"not {shown(self.APP_ID)}."
            )
        lines.extend(self._private_key_problems())
        if self.WEBHOOK_PATH.rstrip("/") in {page.rstrip("/") for page in HONK_PAGES}:
            lines.append(
                f"WEBHOOK_PATH cannot be {self.WEBHOOK_PATH}: Honk serves its own page there "
                "(the default is /api/github/webhooks)."
            )
        return lines

    def _private_key_problems(self) -> list[str]:
        if self.PRIVATE_KEY is None and self.PRIVATE_KEY_PATH is None:
            return ["PRIVATE_KEY or PRIVATE_KEY_PATH is not set."]
        name = "PRIVATE_KEY" if self.PRIVATE_KEY is not None else "PRIVATE_KEY_PATH"
        path = shown(str(self.PRIVATE_KEY_PATH), PATH_LIMIT)
        try:
            pem = self.private_key_pem()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            return [
                f"PRIVATE_KEY_PATH must be the App's .pem file; {path} cannot be read ({reason})."
            ]
        try:
            key = load_pem_private_key(pem.encode("utf-8"), password=None)
        except (ValueError, TypeError):
            if name == "PRIVATE_KEY_PATH":
                return [f"PRIVATE_KEY_PATH must be the App's .pem file; {path} holds no PEM key."]
            return [
                "PRIVATE_KEY must be the App's PEM private key (as is, on one line with \\n "
                "escapes, or in base64); the value given is not one (it is not shown)."
            ]
        if not isinstance(key, rsa.RSAPrivateKey):
            return [f"{name} is not an RSA private key (GitHub Apps use RSA keys)."]
        return []


def load_settings(env_file: str | os.PathLike[str] | None = ".env") -> Settings:
    """Read the environment and `.env` (the environment wins, as with Probot).

    Raises SettingsError, one line per wrong setting, instead of pydantic's report: that names
    the variable too, but across several lines, with the value (maybe a secret) and a web link."""
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(validation_lines(exc, Settings.model_fields)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SettingsError([f"The settings file {env_file} cannot be read ({reason})."]) from None
