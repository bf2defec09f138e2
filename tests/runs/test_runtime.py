"""Startup says in one sentence when this server cannot confine commands, and what to do."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from honk_app.runs.runtime import close_runtime, open_runtime
from honk_app.workspace import sandbox as sandbox_module
from honk_app.workspace.sandbox import NO_SANDBOX, UNCONFINED
from tests.conftest import make_settings


@pytest.mark.parametrize(("sandbox", "said"), [("on", NO_SANDBOX), ("off", UNCONFINED)])
async def test_startup_without_bubblewrap_says_what_runs_will_do(
    tmp_path: Path,
    app_private_key: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sandbox: str,
    said: str,
) -> None:
    monkeypatch.setattr(sandbox_module, "_bwrap_binary", None)
    settings = make_settings(tmp_path / "data", app_private_key, HONK_SANDBOX=sandbox)
    with caplog.at_level(logging.WARNING, logger="honk.runtime"):
        rt = await open_runtime(settings, "serve")
        await close_runtime(rt)
    assert [r.getMessage() for r in caplog.records if r.name == "honk.runtime"] == [said]
