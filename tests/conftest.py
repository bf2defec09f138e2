"""Shared fixtures: an RSA key for the GitHub App, and settings pointing at a temp data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from honk_app.settings import Settings
from tests.fakes.github_auth import generate_private_key_pem
from tests.postgres import stop_server

WEBHOOK_SECRET = "test-webhook-secret-0123456789"

# Property-based tests are deterministic (the same examples on every run and machine, no example
# database) and have no per-example deadline: CI must not flake on a slow, shared machine.
hypothesis_settings.register_profile(
    "honk",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.load_profile("honk")


def pytest_sessionfinish() -> None:
    """Stop the throwaway PostgreSQL that a test may have started (tests/postgres.py)."""
    stop_server()


@pytest.fixture(scope="session")
def app_private_key() -> str:
    return generate_private_key_pem()


def make_settings(data_dir: Path, private_key: str, **values: object) -> Settings:
    env: dict[str, object] = {
        "APP_ID": "424242",
        "PRIVATE_KEY": private_key,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "HONK_DATA_DIR": str(data_dir),
        "GITHUB_API_URL": "http://127.0.0.1:9",  # nothing listens: the webhook path must not call
        "HONK_EXECUTOR_ID": f"test-{os.getpid()}",
        **values,
    }
    return Settings(_env_file=None, **env)  # type: ignore[call-arg, arg-type]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "honk-data"
    path.mkdir()
    yield path
