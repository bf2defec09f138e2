"""The in-memory installation client, as honk_app.github.installation's `InstallationClient`: the
issue calls (issues.py) with pull requests (pulls.py) and check runs (checks.py)."""

from __future__ import annotations

from tests.fakes.memory.checks import MemoryCheckRunCalls
from tests.fakes.memory.pulls import MemoryPullCalls


class MemoryInstallation(MemoryPullCalls, MemoryCheckRunCalls):
    """The calls Honk's steps make as one installation, with the real client's signatures."""
