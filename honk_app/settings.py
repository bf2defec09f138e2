"""Server settings from the environment and `.env`, checked before Honk listens.

Probot's names (APP_ID, PRIVATE_KEY, WEBHOOK_SECRET, WEBHOOK_PATH, PORT, LOG_LEVEL) so that people
who ran a Probot app know them already. Secrets are SecretStr so a repr or a log line never shows
them; `problems()` returns one line per problem, naming the variable and never its value.
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
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from honk_app.models import Limits

AgentName = Literal["builtin", "claude-code"]


# Paths Honk serves itself; the webhook route comes first, so it must not take one of them.
HONK_PAGES = ("/", "/ping", "/healthz", "/setup/callback")


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
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    APP_ID: str | None = None
    PRIVATE_KEY: SecretStr | None = None
    PRIVATE_KEY_PATH: Path | None = None
    WEBHOOK_SECRET: SecretStr | None = None
    WEBHOOK_PATH: str = "/api/github/webhooks"
    GITHUB_API_URL: str | None = None
    GHE_HOST: str | None = None
    GITHUB_URL: str = "https://github.com"
    HOST: str = "0.0.0.0"  # noqa: S104 - a server that GitHub must reach
    PORT: int = 3000
    LOG_LEVEL: str = "info"
    ANTHROPIC_API_KEY: SecretStr | None = None
    ANTHROPIC_BASE_URL: str | None = None
    HONK_DATA_DIR: Path = Path(".honk")
    HONK_DATABASE_URL: SecretStr | None = None
    HONK_LABEL: str = "honk"
    HONK_COMMAND: str = "honk"
    HONK_MAX_RUNS: int = Field(default=2, ge=1, le=64)
    HONK_REPO_ALLOWLIST: str = ""
    HONK_ALLOWED_BOTS: str = ""
    HONK_EXECUTOR_ID: str | None = None
    HONK_AGENT: AgentName = "builtin"
    HONK_WORKSPACE_DIR: Path | None = None
    HONK_PUBLIC_URL: str | None = None  # where GitHub reaches this server (setup mode)
    HONK_POLL_INTERVAL_S: float = Field(default=1.0, gt=0, le=60)
    HONK_ACCESS_LOG: bool = False
    # "off" runs commands unconfined where bubblewrap cannot work; every report then says so.
    HONK_SANDBOX: Literal["on", "off"] = "on"
    # Hosts a `setup_network: true` command may reach through Honk's proxy (unset: registries).
    HONK_EGRESS_ALLOW: str | None = None
    # The sandbox (honk_app/workspace/limits.py, confine.py); a limit of 0 is no limit.
    HONK_SANDBOX_MAX_PROCS: int = Field(default=512, ge=0)
    HONK_SANDBOX_MAX_MEMORY_MB: int = Field(default=4096, ge=0)
    HONK_SANDBOX_MAX_CPU_S: int = Field(default=1800, ge=0)
    HONK_SANDBOX_MAX_FILE_MB: int = Field(default=1024, ge=0)
    HONK_SANDBOX_MAX_DISK_MB: int = Field(default=4096, ge=0)
    HONK_SANDBOX_CGROUP: str = ""  # "": Honk's own cgroup if delegated; a cgroup's path; "off"
    HONK_SANDBOX_READONLY: str = ""  # colon-separated host paths a sandbox may read (toolchains)
    # Budgets beyond one run (honk_app/runs/budgets.py), in USD; unset is unlimited. Days and
    # months are UTC: a day's budget resets at 00:00 UTC, a month's on the 1st at 00:00 UTC.
    HONK_BUDGET_REPO_DAY_USD: float | None = Field(default=None, ge=0)
    HONK_BUDGET_PERSON_DAY_USD: float | None = Field(default=None, ge=0)
    HONK_BUDGET_INSTALLATION_MONTH_USD: float | None = Field(default=None, ge=0)

    @field_validator("WEBHOOK_PATH")
    @classmethod
    def _leading_slash(cls, value: str) -> str:
        return value if value.startswith("/") else "/" + value

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
        """One line per configuration problem; never includes a secret's value."""
        lines: list[str] = []
        if self.WEBHOOK_SECRET is None or not self.WEBHOOK_SECRET.get_secret_value():
            lines.append("WEBHOOK_SECRET is not set: Honk cannot verify webhooks without it.")
        if not self.APP_ID:
            lines.append("APP_ID is not set.")
        elif not self.APP_ID.strip().isdigit():
            lines.append("APP_ID must be the numeric id of the GitHub App.")
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
        try:
            pem = self.private_key_pem()
        except OSError as exc:
            return [f"PRIVATE_KEY_PATH cannot be read ({exc.strerror or type(exc).__name__})."]
        try:
            key = load_pem_private_key(pem.encode("utf-8"), password=None)
        except (ValueError, TypeError):
            return [f"{name} is not a readable PEM private key."]
        if not isinstance(key, rsa.RSAPrivateKey):
            return [f"{name} is not an RSA private key (GitHub Apps use RSA keys)."]
        return []


def load_settings(env_file: str | os.PathLike[str] | None = ".env") -> Settings:
    """Read the environment and `.env` (the environment wins, as with Probot)."""
    return Settings(_env_file=env_file)  # type: ignore[call-arg]
