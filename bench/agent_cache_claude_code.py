"""The `claude-code` column of bench/agent_cache.py: the same session, driven through Claude Code.

Claude Code's tools differ from the built-in loop's (Read/Edit/Bash with absolute paths, and an
Edit only after a Read of that file), so the script differs; the repository, the task and the
figures are bench/agent_cache.py's. The usage is the proxy's count, so it includes every request
the CLI made.

To add the column there: `BACKENDS["claude-code"] = claude_code_figures`.

    python bench/agent_cache_claude_code.py [--turns 30]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.agent_cache import (
    MODULES,
    Figures,
    figures_from,
    make_repository,
    render,
    session_task,
)
from honk_app.agent.claude_code import ClaudeCodeBackend
from honk_app.agent.claude_code_launch import ClaudeCodeSettings
from honk_app.agent.proxy import AnthropicProxy
from tests.fakes.anthropic import DEFAULT_API_KEY, FakeAnthropic, Reply, Script, text, tool_use


def claude_code_turns(workspace: Path, turns: int) -> list[Reply]:
    """`turns - 1` tool calls cycling through read, edit (of the file just read) and run."""
    replies: list[Reply] = []
    for turn in range(turns - 1):
        module = str(workspace / "inventory" / f"module_{(turn // 3) % MODULES}.py")
        kind = turn % 3
        if kind == 0:
            replies.append(tool_use("Read", {"file_path": module}, text="Reading the module."))
        elif kind == 1:
            k = turn % 12
            old = f"subtotal * {k} / 100, 2)"
            edit = {"file_path": module, "old_string": old, "new_string": f"{old}  # {k}% off"}
            replies.append(tool_use("Edit", edit, text="Annotating the computation."))
        else:
            command = "sh test_inventory.sh" if turn % 2 else f"grep -n 'def ' {module} | head"
            replies.append(tool_use("Bash", {"command": command}, text="Checking."))
    replies.append(text("Annotated the inventory modules; sh test_inventory.sh passes."))
    return replies


async def claude_code_figures(turns: int) -> Figures:
    """Claude Code (bundled CLI) through Honk's proxy, against the fake API (1024-token minimum)."""
    with tempfile.TemporaryDirectory(prefix="honk-bench-") as tmp:
        workspace = (Path(tmp) / "repo").resolve()
        make_repository(workspace)
        script = Script(claude_code_turns(workspace, turns))

        def respond(body: dict[str, Any]) -> Reply:
            names = {tool.get("name") for tool in body.get("tools") or []}
            return script(body) if "Bash" in names else text("ok")  # the CLI's side requests

        with (
            FakeAnthropic(respond, min_cacheable_tokens=1024) as fake,
            AnthropicProxy(DEFAULT_API_KEY, upstream_url=fake.url) as proxy,
        ):
            backend = ClaudeCodeBackend(proxy, ClaudeCodeSettings(max_retries=0))
            session = backend.open(session_task(workspace, turns))
            try:
                outcome = await session.start()
            finally:
                await session.close()
    return figures_from("claude-code", outcome, turns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=30, help="model turns in the session")
    args = parser.parse_args(argv)
    if args.turns < 2:
        parser.error("--turns must be at least 2")
    figures = asyncio.run(claude_code_figures(args.turns))
    print(f"Prompt caching over a scripted {args.turns}-turn Claude Code session (fake API)")
    print(render([figures]))
    return 0  # a benchmark reports; it does not fail the build


if __name__ == "__main__":
    raise SystemExit(main())
