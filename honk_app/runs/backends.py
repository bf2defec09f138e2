"""Choose and open the agent backend a run asks for; only the agent step differs between them.

The built-in loop is imported when a run first needs it: the Anthropic SDK takes 1.5-2 s to
import here, most of what `honk serve` would otherwise spend before it answers its first request.
`load_builtin` imports it in a thread, so that first run does not stall every other run and
webhook on the event loop for those seconds either.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from honk_app.agent.base import AgentSession, AgentTask, AgentUnavailable, CommandRunner
from honk_app.agent.claude_code import open_claude_code_session
from honk_app.repo_config import RepoConfig
from honk_app.runs.progress import TrackingProgress
from honk_app.runs.runtime import Runtime
from honk_app.workspace.sandbox import Sandbox


async def load_builtin() -> None:
    """Import the built-in loop (and the Anthropic SDK) off the event loop; at once if done."""
    await asyncio.to_thread(importlib.import_module, "honk_app.agent.loop")


def _api_key(rt: Runtime) -> str:
    key = rt.settings.ANTHROPIC_API_KEY
    if key is None or not key.get_secret_value():
        raise AgentUnavailable(
            "ANTHROPIC_API_KEY is not set on this Honk server, so no agent can run."
        )
    return key.get_secret_value()


def open_session(
    rt: Runtime,
    agent_name: str,
    task: AgentTask,
    runner: CommandRunner,
    config: RepoConfig,
    progress: TrackingProgress,
) -> AgentSession:
    run_id = progress.trigger.run_id

    async def audit(kind: str, record: dict[str, Any]) -> None:
        await rt.store.aaudit(run_id, kind, record)

    if agent_name == "claude-code":
        return open_claude_code_session(
            task,
            config=config,
            api_key=_api_key(rt),
            base_url=rt.settings.ANTHROPIC_BASE_URL,
            progress=progress.on_agent_progress,
            audit=audit,
            hidden_paths=rt.secret_paths(),
            read_only_paths=rt.settings.sandbox_readonly,
            limits=rt.settings.sandbox_limits,
            isolation="bwrap" if rt.settings.HONK_SANDBOX == "on" else "none",
            # the run's grant of the egress proxy, opened with the run's sandbox (runs/work.py)
            egress_socket=runner.egress_socket if isinstance(runner, Sandbox) else None,
        )
    from honk_app.agent import loop  # the one deliberate late import (see the module docstring)

    backend = loop.BuiltinBackend(
        loop.anthropic_client_factory(_api_key(rt), base_url=rt.settings.ANTHROPIC_BASE_URL),
        lambda _path: runner,
    )
    return backend.open(task, progress=progress.on_agent_progress, audit=audit)
