"""A wrong value for any setting in .env.example gives one line naming it, what it accepts and
what was wrong, and never a secret; the same path `honk serve` takes (load, then startup checks).
tests/test_cli.py runs the real CLI for a few of these."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from honk_app.cli import check_startup
from honk_app.settings import Settings, SettingsError, load_settings
from tests.fakes.github_auth import generate_private_key_pem

ROOT = Path(__file__).resolve().parent.parent
PEM = generate_private_key_pem()
SECRET = "webhook-secret-value-123"

# Listed in .env.example because setup mode saves them; Honk reads neither, so none is wrong.
NOT_READ = {"GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET"}

# Setting -> (a wrong value, words its line must hold besides the name). A valid App is set
# around each, so the line is the only one.
WRONG: dict[str, tuple[str, str]] = {
    "APP_ID": ("my-app", "numeric id"),
    "PRIVATE_KEY": ("not-a-key-hunter2", "PEM private key"),
    "PRIVATE_KEY_PATH": ("{tmp}/missing.pem", "cannot be read"),
    "WEBHOOK_SECRET": ("", "is not set"),
    "WEBHOOK_PATH": ("/healthz", "Honk serves its own page there"),
    "GITHUB_URL": ("github.com", "http:// or https://"),
    "GITHUB_API_URL": ("api.github.com/v3", "http:// or https://"),
    "GHE_HOST": ("https://ghe.example.com/", "host name"),
    "HOST": ("0.0.0.0:3000", "the port goes in PORT"),
    "PORT": ("abc", "from 1 to 65535"),
    "LOG_LEVEL": ("verbose", "debug, info, warning, error, critical"),
    "HONK_ACCESS_LOG": ("sometimes", "true or false"),
    "HONK_PUBLIC_URL": ("honk.example.com", "http:// or https://"),
    "HONK_DATA_DIR": ("{tmp}/a-file", "directory"),
    "ANTHROPIC_API_KEY": ("sk-ant-api03 hunter2", "without spaces"),
    "ANTHROPIC_BASE_URL": ("localhost:8080", "http:// or https://"),
    "HONK_AGENT": ("foo", "builtin or claude-code"),
    "HONK_LABEL": ("x" * 51, "1 to 50 characters"),
    "HONK_COMMAND": ("honk me", "one word"),
    "HONK_MAX_RUNS": ("999", "from 1 to 64"),
    "HONK_REPO_ALLOWLIST": ("my-org/service,my-org", "'my-org' is not owner/repo"),
    "HONK_ALLOWED_BOTS": ("dependabot", "ending in [bot]"),
    "HONK_WORKSPACE_DIR": ("{tmp}/a-file", "directory"),
    "HONK_POLL_INTERVAL_S": ("0", "more than 0"),
    "HONK_SANDBOX": ("maybe", "on or off"),
    "HONK_EGRESS_ALLOW": ("https://pypi.org", "not a URL"),
    "HONK_BUDGET_REPO_DAY_USD": ("-1", "0 or more"),
    "HONK_BUDGET_PERSON_DAY_USD": ("ten", "0 or more"),
    "HONK_BUDGET_INSTALLATION_MONTH_USD": ("$300", "0 or more"),
    "HONK_SANDBOX_READONLY": ("/opt/node:opt/java", "'opt/java' is not an absolute path"),
    "HONK_SANDBOX_MAX_PROCS": ("-1", "0 or more"),
    "HONK_SANDBOX_MAX_MEMORY_MB": ("4G", "0 or more"),
    "HONK_SANDBOX_MAX_CPU_S": ("1.5", "whole number"),
    "HONK_SANDBOX_MAX_FILE_MB": ("lots", "whole number"),
    "HONK_SANDBOX_MAX_DISK_MB": ("-5", "whole number"),
    "HONK_SANDBOX_CGROUP": ("system.slice/honk.service", "absolute path"),
    "HONK_DATABASE_URL": ("mysql://honk:hunter2@db/honk", "only SQLite and PostgreSQL"),
    "HONK_EXECUTOR_ID": ("../other", "letters, digits"),
}
SECRET_SETTINGS = {"PRIVATE_KEY", "WEBHOOK_SECRET", "ANTHROPIC_API_KEY", "HONK_DATABASE_URL"}


def documented_settings() -> set[str]:
    """The names .env.example documents (`# NAME=value` under a comment line)."""
    setting = re.compile(r"# ([A-Z][A-Z0-9_]*)=(\S.*)?")
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    return {m[1] for above, line in itertools.pairwise(lines) if (m := setting.fullmatch(line))}


def startup_lines(tmp_path: Path, **values: str | None) -> list[str]:
    """What `honk serve` prints for this .env (None: leave the setting out): the loader's lines,
    else the startup checks'."""
    env: dict[str, str | None] = {
        "APP_ID": "12345",
        "PRIVATE_KEY": PEM.strip().replace("\n", "\\n"),
        "WEBHOOK_SECRET": SECRET,
        "HONK_DATA_DIR": str(tmp_path / "data"),
        **values,
    }
    env_file = tmp_path / ".env"
    env_file.write_text(
        "".join(f"{k}='{v}'\n" for k, v in env.items() if v is not None), encoding="utf-8"
    )
    try:
        settings = load_settings(env_file)
    except SettingsError as exc:
        return exc.lines
    return check_startup(settings)


@pytest.fixture(autouse=True)
def no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment wins over .env: a developer's PORT must not decide these tests."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)


def test_every_setting_in_env_example_has_a_wrong_value_case() -> None:
    documented = documented_settings()
    assert documented - NOT_READ == set(WRONG)
    assert not NOT_READ & set(Settings.model_fields)
    assert set(Settings.model_fields) <= documented
    secret = {n for n, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)}
    assert secret == SECRET_SETTINGS


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_value_is_one_line_naming_the_setting(tmp_path: Path, name: str) -> None:
    value, expected = WRONG[name]
    value = value.format(tmp=tmp_path)
    (tmp_path / "a-file").write_text("not a directory")
    values: dict[str, str | None] = {name: value}
    if name == "PRIVATE_KEY_PATH":
        values["PRIVATE_KEY"] = None  # the path is what is read
    lines = startup_lines(tmp_path, **values)
    assert len(lines) == 1, lines
    [line] = lines
    assert line.startswith(name + " "), line
    assert expected in line
    assert "\n" not in line and "Traceback" not in line and "errors.pydantic.dev" not in line
    assert SECRET not in line and "BEGIN" not in line and "hunter2" not in line
    if name in SECRET_SETTINGS and value:
        assert value not in line


def test_valid_settings_give_no_line(tmp_path: Path) -> None:
    assert startup_lines(tmp_path) == []


@pytest.mark.parametrize("level", ["DEBUG", "info", "Warning", "error", "CRITICAL"])
def test_log_level_takes_the_five_levels_in_any_case(tmp_path: Path, level: str) -> None:
    assert startup_lines(tmp_path, LOG_LEVEL=level) == []


@pytest.mark.parametrize(
    "url",
    ["postgresql://honk:pw@db/honk", "postgres://db/honk", "sqlite:///{tmp}/elsewhere.sqlite"],
)
def test_sqlite_and_postgresql_urls_pass_the_up_front_check(tmp_path: Path, url: str) -> None:
    s = Settings(_env_file=None, HONK_DATABASE_URL=url.format(tmp=tmp_path))  # type: ignore[call-arg]
    assert s.HONK_DATABASE_URL is not None


def test_several_wrong_settings_give_a_line_each(tmp_path: Path) -> None:
    lines = startup_lines(tmp_path, PORT="abc", HONK_MAX_RUNS="999", HONK_AGENT="foo")
    assert [line.split()[0] for line in lines] == ["PORT", "HONK_MAX_RUNS", "HONK_AGENT"]


def test_an_unreadable_settings_file_is_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"PORT=\xff\xfe\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file)
    assert caught.value.lines == [
        f"The settings file {env_file} cannot be read (UnicodeDecodeError)."
    ]
