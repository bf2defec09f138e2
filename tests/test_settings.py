"""Settings: Probot's names, three key encodings, fail-fast lines that never leak a secret."""

from __future__ import annotations

import base64
from pathlib import Path

import pydantic
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from honk_app.cli import check_startup
from honk_app.settings import HONK_PAGES, Settings, normalise_private_key
from honk_app.setup.pages import CALLBACK_PATH
from tests.fakes.github_auth import generate_private_key_pem

SECRET = "webhook-secret-value-123"


PEM = generate_private_key_pem()


def settings(tmp_path: Path, **values: str) -> Settings:
    env = {"HONK_DATA_DIR": str(tmp_path / "data"), **values}
    return Settings(_env_file=None, **env)  # type: ignore[call-arg, arg-type]


@pytest.mark.parametrize(
    "encoded",
    [PEM, PEM.strip().replace("\n", "\\n"), base64.b64encode(PEM.encode()).decode()],
    ids=["pem", "escaped-newlines", "base64"],
)
def test_private_key_accepts_pem_escaped_and_base64(encoded: str) -> None:
    assert normalise_private_key(encoded) == PEM


def test_valid_settings_have_no_problems(tmp_path: Path) -> None:
    s = settings(tmp_path, APP_ID="123", PRIVATE_KEY=PEM, WEBHOOK_SECRET=SECRET)
    assert s.problems() == []
    assert check_startup(s) == []
    assert (tmp_path / "data" / "honk.sqlite").exists()


def test_defaults_match_probot_and_the_issue(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert s.WEBHOOK_PATH == "/api/github/webhooks"
    assert s.PORT == 3000
    assert s.api_url == "https://api.github.com"
    assert s.HONK_LABEL == "honk" and s.HONK_COMMAND == "honk"
    assert s.HONK_MAX_RUNS == 2
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("honk.sqlite")
    assert s.needs_setup


def test_ghe_host_gives_api_v3(tmp_path: Path) -> None:
    s = settings(tmp_path, GHE_HOST="ghe.example.com")
    assert s.api_url == "https://ghe.example.com/api/v3"
    assert s.web_url == "https://ghe.example.com"


def test_every_problem_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    s = settings(tmp_path, APP_ID="abc", PRIVATE_KEY=ec_pem)
    problems = s.problems()
    assert any(p.startswith("WEBHOOK_SECRET") for p in problems)
    assert any(p.startswith("APP_ID") and "numeric" in p for p in problems)
    assert any(p.startswith("PRIVATE_KEY") and "RSA" in p for p in problems)
    assert all("\n" not in p for p in problems)
    assert not any("BEGIN" in p for p in problems)


@pytest.mark.parametrize("path", ["/", "/ping", "/healthz/", "healthz", "/setup/callback"])
def test_the_webhook_path_cannot_take_one_of_honks_own_pages(tmp_path: Path, path: str) -> None:
    s = settings(tmp_path, WEBHOOK_PATH=path)
    assert [p for p in s.problems() if p.startswith("WEBHOOK_PATH")] == [
        f"WEBHOOK_PATH cannot be {s.WEBHOOK_PATH}: Honk serves its own page there "
        "(the default is /api/github/webhooks)."
    ]
    assert CALLBACK_PATH in HONK_PAGES


def test_unreadable_key_path_and_garbage_key(tmp_path: Path) -> None:
    missing = settings(
        tmp_path, APP_ID="1", WEBHOOK_SECRET=SECRET, PRIVATE_KEY_PATH=str(tmp_path / "nope.pem")
    )
    assert missing.problems() == [missing.problems()[0]]
    assert missing.problems()[0].startswith("PRIVATE_KEY_PATH must be the App's .pem file;")
    assert "nope.pem" in missing.problems()[0] and "cannot be read" in missing.problems()[0]
    garbage = settings(tmp_path, APP_ID="1", WEBHOOK_SECRET=SECRET, PRIVATE_KEY="not a key at all")
    assert garbage.problems() == [
        "PRIVATE_KEY must be the App's PEM private key (as is, on one line with \\n escapes, "
        "or in base64); the value given is not one (it is not shown)."
    ]


def test_unreachable_database_is_reported_without_its_password(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        APP_ID="1",
        PRIVATE_KEY=PEM,
        WEBHOOK_SECRET=SECRET,
        HONK_DATABASE_URL="postgresql://honk:hunter2-secret@127.0.0.1:1/honk",
    )
    problems = check_startup(s)
    assert len(problems) == 1
    assert problems[0].startswith("HONK_DATABASE_URL")
    assert "hunter2" not in problems[0]


def test_secrets_never_show_in_repr(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        APP_ID="1",
        PRIVATE_KEY=PEM,
        WEBHOOK_SECRET=SECRET,
        ANTHROPIC_API_KEY="sk-ant-xyz-123456789012345678901",
    )
    text = repr(s) + str(s.model_dump())
    assert SECRET not in text and "BEGIN" not in text and "sk-ant-xyz" not in text
    assert SECRET in s.known_secrets()


def test_lists_and_executor_id(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        HONK_REPO_ALLOWLIST="Octo/*, acme/app ,",
        HONK_ALLOWED_BOTS="Renovate[bot]",
        HONK_EXECUTOR_ID="",
    )
    assert s.repo_allowlist == ("octo/*", "acme/app")
    assert s.allowed_bots == frozenset({"renovate[bot]"})
    assert s.executor_id("web").endswith("-web")
    assert settings(tmp_path, HONK_EXECUTOR_ID="pod-7").executor_id("worker") == "pod-7"


def test_env_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text('APP_ID=77\nWEBHOOK_SECRET="from-file-secret"\nPORT=4000\n')
    monkeypatch.setenv("PORT", "5000")
    from honk_app.settings import load_settings

    s = load_settings(env_file)
    assert s.APP_ID == "77"
    assert (
        s.WEBHOOK_SECRET is not None and s.WEBHOOK_SECRET.get_secret_value() == "from-file-secret"
    )
    assert s.PORT == 5000


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, (None, None, None)),
        (
            {
                "HONK_BUDGET_REPO_DAY_USD": "20",
                "HONK_BUDGET_PERSON_DAY_USD": "7.5",
                "HONK_BUDGET_INSTALLATION_MONTH_USD": "0",
            },
            (20.0, 7.5, 0.0),
        ),
    ],
    ids=["unset-is-unlimited", "set"],
)
def test_budgets_are_dollars_or_unlimited(
    tmp_path: Path, values: dict[str, str], expected: tuple[float | None, ...]
) -> None:
    s = settings(tmp_path, **values)
    found = (
        s.HONK_BUDGET_REPO_DAY_USD,
        s.HONK_BUDGET_PERSON_DAY_USD,
        s.HONK_BUDGET_INSTALLATION_MONTH_USD,
    )
    assert found == expected


@pytest.mark.parametrize("value", ["-1", "lots"])
def test_a_budget_must_be_a_non_negative_amount(tmp_path: Path, value: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="HONK_BUDGET_REPO_DAY_USD"):
        settings(tmp_path, HONK_BUDGET_REPO_DAY_USD=value)
