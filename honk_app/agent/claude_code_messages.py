"""What Honk says to Claude Code and reads back from it, with no process or SDK call involved.

- Out: the tools and permission rules a repository's config allows, and the SDK options built
  from the run's settings and limits (`option_values`).
- In: the CLI's result (`result_view`), the audit records of its turns and tool results, and the
  stop reason of a call with one readable sentence (`early_stop` before it, `classify` after).

The SDK's messages are read by attribute only, so this module never imports claude_agent_sdk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from honk_app.agent.base import AgentTask, Limits
from honk_app.agent.claude_code_launch import ClaudeCodeSettings
from honk_app.agent.proxy_rules import Meter, usage_from
from honk_app.models import AgentStop, Usage
from honk_app.safety.secret_scan import redact

AUDIT_CAP = 4000
BASE_TOOLS = ("Read", "Write", "Edit", "Glob", "Grep", "Bash")
WEB_TOOLS = ("WebFetch", "WebSearch")


# ---- what Claude Code is told ----------------------------------------------------------------


def tool_names(settings: ClaudeCodeSettings) -> list[str]:
    return [*BASE_TOOLS, *(WEB_TOOLS if settings.allow_web else ())]


def allow_rules(settings: ClaudeCodeSettings) -> list[str]:
    """Permission rules for `dontAsk` mode: anything not listed is denied, never asked."""
    rules = [t for t in tool_names(settings) if t != "Bash"]
    if settings.allowed_commands is None:
        return [*rules, "Bash"]
    return [*rules, *(f"Bash({command}:*)" for command in settings.allowed_commands)]


def option_values(
    settings: ClaudeCodeSettings,
    task: AgentTask,
    *,
    workspace: Path,
    launcher: Path,
    turns: int,
    spent_usd: float,
    session_id: str | None,
) -> dict[str, Any]:
    """`ClaudeAgentOptions` for one call, but the environment and stderr, which the session owns:
    the limits left after `turns` and `spent_usd`, and nothing of the host's own configuration."""
    limits = task.limits
    return {
        "cwd": str(workspace),
        "cli_path": str(launcher),
        "model": task.model,
        "system_prompt": {"type": "preset", "preset": "claude_code", "append": task.system_prompt},
        "tools": tool_names(settings),
        "allowed_tools": allow_rules(settings),
        "disallowed_tools": [] if settings.allow_web else list(WEB_TOOLS),
        "permission_mode": "dontAsk",
        "max_turns": max(1, limits.max_turns - turns),
        "max_budget_usd": max(0.0, limits.max_cost_usd - spent_usd),
        "setting_sources": [],
        "strict_mcp_config": True,
        "settings": json.dumps({"disableAllHooks": True}),
        "resume": session_id,
    }


# ---- what Honk reads back --------------------------------------------------------------------


@dataclass(frozen=True)
class ResultView:
    """What Honk reads from the CLI's ResultMessage."""

    subtype: str
    is_error: bool
    text: str = ""
    num_turns: int = 0
    api_error_status: int | None = None
    errors: tuple[str, ...] = ()
    total_cost_usd: float = 0.0
    usage: Usage = field(default_factory=Usage)
    session_id: str | None = None


def result_view(message: Any, secrets_: Sequence[str] = ()) -> ResultView:
    """The SDK's ResultMessage, its texts redacted."""
    return ResultView(
        subtype=str(message.subtype),
        is_error=bool(message.is_error),
        text=redact(str(message.result or ""), secrets_),
        num_turns=int(message.num_turns or 0),
        api_error_status=message.api_error_status,
        errors=tuple(redact(str(e), secrets_) for e in message.errors or ()),
        total_cost_usd=float(message.total_cost_usd or 0.0),
        usage=usage_from(message.usage),
        session_id=message.session_id,
    )


def capped(text: str, secrets_: Sequence[str] = ()) -> str:
    clean = redact(text, secrets_)
    return clean if len(clean) <= AUDIT_CAP else clean[: AUDIT_CAP - 1] + "…"


def failure_text(exc: BaseException, stderr: Sequence[str], secrets_: Sequence[str] = ()) -> str:
    """Why the CLI failed without a result: the error and the last lines it wrote to stderr."""
    tail = " ".join(stderr[-3:])
    return capped(f"Claude Code failed: {type(exc).__name__}: {exc} {tail}".strip(), secrets_)


def turn_records(
    turn: int, texts: Sequence[str], uses: Sequence[Any], secrets_: Sequence[str] = ()
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The audit records of one assistant message: its text, then each tool call (ToolUseBlock).
    Lazy, so each record is built just before it is audited."""
    if texts:
        yield "model_turn", {"turn": turn, "text": capped("\n".join(texts), secrets_)}
    for use in uses:
        arguments = capped(json.dumps(use.input, ensure_ascii=False), secrets_)
        yield "tool_call", {"turn": turn, "id": use.id, "tool": use.name, "input": arguments}


def tool_result_record(block: Any, secrets_: Sequence[str] = ()) -> dict[str, Any]:
    """The audit record of a ToolResultBlock; its content is a string or a list of text parts."""
    output = block.content if isinstance(block.content, str) else ""
    if isinstance(block.content, list):
        output = "\n".join(str(part.get("text", "")) for part in block.content)
    return {
        "id": block.tool_use_id,
        "is_error": bool(block.is_error),
        "output": capped(output, secrets_),
    }


# ---- why a call stopped ----------------------------------------------------------------------


_API_ERROR = re.compile(r"^API Error:\s*(?:Request rejected\s*)?(?:\(?\d{3}\)?)?\s*[·:-]?\s*")
_TERMINAL_ADVICE = re.compile(r"\s*This is a server-side issue.*$", re.DOTALL)


def readable_api_error(text: str, status: int | None) -> str:
    detail = _TERMINAL_ADVICE.sub("", _API_ERROR.sub("", text.strip()))
    detail = detail.split("\n")[0].strip() or "no details"
    detail = detail[:300].rstrip(".")
    code = f" (HTTP {status})" if status else ""
    return f"Claude Code stopped on an Anthropic API error{code}: {detail}."


def budget_spent(meter: Meter | None) -> str:
    amount = f" of ${meter.budget_usd:.2f}" if meter is not None else ""
    return f"Claude Code spent the run's budget{amount}."


def early_stop(
    limits: Limits, *, turns: int, meter: Meter | None, active_s: float
) -> tuple[AgentStop, str] | None:
    """The limit a session has already reached, so a call must not start the CLI at all."""
    if turns >= limits.max_turns:
        return "max_turns", "Claude Code reached the run's limit of turns."
    if meter is not None and meter.exhausted:
        return "max_cost", budget_spent(meter)
    if active_s >= limits.timeout_s:
        return "timeout", f"Claude Code ran past the time limit of {limits.timeout_s:g} s."
    return None


def classify(
    result: ResultView | None,
    *,
    forced: AgentStop | None,
    meter: Meter | None,
    limits_timeout_s: float,
    failure: str | None,
) -> tuple[AgentStop, str | None]:
    """The stop reason and, unless the agent finished, one readable sentence."""
    if forced == "timeout":
        return "timeout", f"Claude Code ran past the time limit of {limits_timeout_s:g} s."
    if forced is not None:
        return forced, "The run was stopped before Claude Code finished."
    spent = budget_spent(meter)
    if meter is not None and meter.refused and (result is None or result.is_error):
        return "max_cost", spent
    if result is None:
        return "error", failure or "Claude Code stopped without reporting a result."
    if result.subtype == "error_max_turns":
        return "max_turns", "Claude Code reached the run's limit of turns."
    if result.subtype == "error_max_budget_usd":
        return "max_cost", spent
    if result.subtype == "success" and not result.is_error:
        return "done", None
    if result.api_error_status is not None or result.text.startswith("API Error"):
        return "error", readable_api_error(result.text, result.api_error_status)
    detail = "; ".join(result.errors) or result.text or result.subtype
    return "error", f"Claude Code stopped with an error: {detail[:300]}."
