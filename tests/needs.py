"""What some tests need from the machine. Missing, they fail in CI (which must provide it: see
`.ci/run`) and skip elsewhere, saying what is missing and how to get it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from honk_app.workspace.sandbox import bwrap_usable


def missing(what: str, remedy: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{what}: CI must provide it ({remedy}).")
    pytest.skip(f"{what}; {remedy} to run this test.")


def require_bwrap() -> None:
    if not bwrap_usable():
        missing("bubblewrap (bwrap) is missing or cannot create namespaces here", "install it")


def require_claude_code_sdk() -> None:
    try:
        import claude_agent_sdk  # noqa: F401
    except ImportError:
        missing("claude-agent-sdk is not installed", "install honk-app[claude-code]")
