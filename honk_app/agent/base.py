"""The contract every agent backend meets, so the rest of a run never knows which one worked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from honk_app.models import AgentOutcome, CommandResult, Usage

DEFAULT_MODEL = "claude-sonnet-4-5"


@dataclass(frozen=True)
class Limits:
    """A run's budget. Every backend stops cleanly at the first one reached and says which."""

    max_turns: int = 40
    max_cost_usd: float = 2.00
    timeout_s: float = 30 * 60


@dataclass(frozen=True)
class AgentTask:
    """Everything a backend needs to start: prompts are already sanitised and rendered."""

    workspace: Path
    system_prompt: str
    task_prompt: str
    model: str = DEFAULT_MODEL
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Progress:
    """A heartbeat for the tracking comment: where the agent is and what it has spent."""

    turns: int
    cost_usd: float
    usage: Usage
    tool: str | None = None  # the tool at work, if any


ProgressCallback = Callable[[Progress], Awaitable[None]]
# kind ("model_turn", "tool_call", ...) and a JSON-able record; callers redact and size-cap
AuditCallback = Callable[[str, dict[str, Any]], Awaitable[None]]


async def ignore_progress(_: Progress) -> None:
    """A ProgressCallback that drops everything (tests and benchmarks)."""


async def ignore_audit(_kind: str, _record: dict[str, Any]) -> None:
    """An AuditCallback that drops everything (tests and benchmarks)."""


class AgentSession(Protocol):
    """One conversation with an agent in one workspace.

    `start` runs the task until the agent stops; `follow_up` continues the same conversation with
    new input (failing test output in a feedback round). Both return the cumulative outcome: turns,
    usage and cost count everything since `start`, and limits apply to the whole session.
    """

    async def start(self) -> AgentOutcome: ...

    async def follow_up(self, message: str) -> AgentOutcome: ...

    async def close(self) -> None:
        """Stop anything still running (processes, proxies). Safe to call twice."""
        ...


class AgentBackend(Protocol):
    """Makes sessions. `builtin` (agent/loop.py) and `claude-code` (agent/claude_code.py)."""

    name: str

    def open(
        self,
        task: AgentTask,
        *,
        progress: ProgressCallback = ignore_progress,
        audit: AuditCallback = ignore_audit,
    ) -> AgentSession: ...


class AgentUnavailable(Exception):
    """The backend cannot run here (for example, its optional extra is not installed)."""


class CommandRunner(Protocol):
    """Runs one shell command confined to the workspace (honk_app.sandbox.Sandbox)."""

    async def run(
        self, command: str, *, timeout_s: float | None = None, network: bool = False
    ) -> CommandResult: ...
