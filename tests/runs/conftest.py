"""The in-memory world the step tests share (tests/runs/memory_world.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runs.memory_world import World, make_world


@pytest.fixture
def world(tmp_path: Path, app_private_key: str) -> Iterator[World]:
    w = make_world(tmp_path, app_private_key)
    try:
        yield w
    finally:
        w.store.engine.dispose()
