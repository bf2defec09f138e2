"""The loop caps every tool result before the conversation holds it, whatever the tool returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from honk_app.agent.base import AgentTask
from honk_app.agent.loop import BuiltinBackend, anthropic_client_factory
from honk_app.agent.tools import ToolResult
from honk_app.workspace.sandbox import Sandbox
from tests.fakes.anthropic import DEFAULT_API_KEY, FakeAnthropic, Script, tool_use


async def test_an_oversized_tool_result_is_cut_before_it_is_held(tmp_path: Path) -> None:
    with FakeAnthropic(Script([tool_use("bash", {"command": "true"})])) as fake:
        backend = BuiltinBackend(
            anthropic_client_factory(DEFAULT_API_KEY, base_url=fake.url, max_retries=0),
            lambda path: Sandbox(path),
            result_cap=3_000,
        )
        session = backend.open(AgentTask(workspace=tmp_path, system_prompt="s", task_prompt="t"))

        async def oversized(name: str, params: Any) -> ToolResult:
            return ToolResult("x" * 1_000_000, is_error=True)

        session.tools.call = oversized  # type: ignore[method-assign]
        try:
            await session.start()
        finally:
            await session.close()
        sent = fake.requests[1]["messages"][-1]["content"][0]["content"]
    (held,) = session.messages[2]["content"]
    assert held["type"] == "tool_result" and held["is_error"] is True
    assert len(held["content"]) <= 3_000 and "cut from the middle" in held["content"]
    assert sent == held["content"]
