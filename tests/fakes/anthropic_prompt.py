"""The fake Messages API's pure part: the request checks of the real API, token counts and the
prompt cache (see `anthropic.py` for the model they follow)."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any

MAX_BREAKPOINTS = 4


class RequestInvalid(Exception):
    """A request the real API would reject with 400 invalid_request_error."""


def approx_tokens(value: Any) -> int:
    return max(1, math.ceil(len(json.dumps(value, sort_keys=True, separators=(",", ":"))) / 4))


def _strip_cache_control(block: Any) -> Any:
    """The cached content ignores where breakpoints sit, so moving one keeps the prefix equal."""
    if isinstance(block, dict):
        return {k: _strip_cache_control(v) for k, v in block.items() if k != "cache_control"}
    if isinstance(block, list):
        return [_strip_cache_control(v) for v in block]
    return block


@dataclass(frozen=True)
class PromptBlock:
    canonical: str
    tokens: int
    breakpoint: bool


def prompt_blocks(body: dict[str, Any]) -> list[PromptBlock]:
    """The request as the cache sees it: tools, then system, then each message's blocks."""
    raw: list[tuple[str, dict[str, Any]]] = [("tool", t) for t in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}] if system else []
    raw += [("system", b) for b in system or []]
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        raw += [(str(message.get("role")), b) for b in content or []]
    blocks = []
    for where, block in raw:
        clean = _strip_cache_control(block)
        canonical = json.dumps([where, clean], sort_keys=True, separators=(",", ":"))
        blocks.append(PromptBlock(canonical, approx_tokens(clean), "cache_control" in block))
    if body.get("cache_control") and blocks:  # top-level: marks the last cacheable block
        last = blocks[-1]
        blocks[-1] = PromptBlock(last.canonical, last.tokens, True)
    return blocks


def validate(body: dict[str, Any]) -> None:
    """The checks of the real API that catch agent-loop bugs."""
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise RequestInvalid(f"{name}: Field required")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise RequestInvalid("messages: at least one message is required")
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str | list) or (
            isinstance(content, list) and not all(isinstance(b, dict) for b in content)
        ):
            raise RequestInvalid(f"messages.{i}: content must be a string or a list of blocks")
    count = sum(b.breakpoint for b in prompt_blocks(body))
    if count > MAX_BREAKPOINTS:
        raise RequestInvalid(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {count}."
        )
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            raise RequestInvalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        uses = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if not uses or message["role"] != "assistant":
            continue
        following = messages[i + 1] if i + 1 < len(messages) else None
        reply = following.get("content") if following else None
        results = [b for b in reply or [] if isinstance(b, dict)]
        answered = {b.get("tool_use_id") for b in results if b.get("type") == "tool_result"}
        missing = [u for u in uses if u not in answered]
        if missing:
            raise RequestInvalid(
                f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )
        kinds = [b.get("type") for b in results]
        first_other = next((n for n, k in enumerate(kinds) if k != "tool_result"), len(kinds))
        if "tool_result" in kinds[first_other:]:
            raise RequestInvalid(
                f"messages.{i + 1}: tool_result blocks must come first in the content array"
            )


@dataclass
class PromptCache:
    """Written prefixes, per model, as chained hashes of canonical blocks."""

    min_cacheable_tokens: int = 1024
    lookback_blocks: int = 20
    entries: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def account(self, model: str, blocks: list[PromptBlock]) -> dict[str, int]:
        hashes, totals = [], []
        digest, running = hashlib.sha256(model.encode()).hexdigest(), 0
        for block in blocks:
            digest = hashlib.sha256((digest + block.canonical).encode()).hexdigest()
            running += block.tokens
            hashes.append(digest)
            totals.append(running)
        marks = [i for i, b in enumerate(blocks) if b.breakpoint]
        with self.lock:
            read_at = -1
            for mark in marks:
                for j in range(mark, max(-1, mark - self.lookback_blocks - 1), -1):
                    if hashes[j] in self.entries:
                        read_at = max(read_at, j)
                        break
            read = totals[read_at] if read_at >= 0 else 0
            written = [m for m in marks if m > read_at and totals[m] >= self.min_cacheable_tokens]
            self.entries.update(hashes[m] for m in written)
        creation = totals[written[-1]] - read if written else 0
        return {
            "input_tokens": running - read - creation,
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read,
        }
