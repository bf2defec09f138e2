"""Pure: what one turn of the built-in loop sends and keeps (cache breakpoints, the assistant's
blocks, usage, the audit's shortened inputs), apart from the loop that does the I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from honk_app.agent.tools import cut_middle
from honk_app.models import Usage

AUDIT_CAP = 4_000
EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
MESSAGE_BREAKPOINTS = 2  # plus tools and system: the API allows four


def with_cache_breakpoints(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of `messages` with a breakpoint on the last block of the two newest user messages."""
    marked = list(messages)
    users = [i for i, m in enumerate(marked) if m["role"] == "user"][-MESSAGE_BREAKPOINTS:]
    for index in users:
        message = marked[index]
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks:
            continue
        blocks = [*blocks[:-1], {**blocks[-1], "cache_control": EPHEMERAL}]
        marked[index] = {**message, "content": blocks}
    return marked


def assistant_blocks(content: Sequence[Any]) -> list[dict[str, Any]]:
    """Response blocks as request params (empty text blocks dropped: the API refuses them)."""
    blocks: list[dict[str, Any]] = []
    for block in content:
        if block.type == "text":
            if block.text:
                blocks.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            blocks.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            )
        else:  # thinking, redacted_thinking, ...: sent back as received
            blocks.append(block.model_dump(mode="json", exclude_none=True))
    return blocks or [{"type": "text", "text": "(no answer)"}]


def turn_usage(raw: Any) -> Usage:
    return Usage(
        input_tokens=raw.input_tokens or 0,
        output_tokens=raw.output_tokens or 0,
        cache_creation_input_tokens=raw.cache_creation_input_tokens or 0,
        cache_read_input_tokens=raw.cache_read_input_tokens or 0,
    )


def cap_values(value: Any, limit: int = AUDIT_CAP) -> Any:
    """The tool input for the audit trail, long strings (a created file) shortened."""
    if isinstance(value, str):
        return cut_middle(value, limit)
    if isinstance(value, dict):
        return {k: cap_values(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [cap_values(v, limit) for v in value]
    return value
