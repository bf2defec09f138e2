"""How much of a long agent session's input is read from the prompt cache.

A scripted session (each turn views or edits a file or runs a command in a generated repository)
runs through an agent backend against the fake Messages API, which accounts prompt caching the way
the real API does (1024-token minimum, breakpoints, 20-block lookback). The figure is the share of
all input tokens sent (uncached input + cache writes + cache reads) that came from cache reads;
the target is at least 80% over 30 turns.

    python bench/agent_cache.py [--turns 30]

Each backend is one function returning `Figures`, so another backend can be added as a column.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from honk_app.agent.base import AgentTask, Limits
from honk_app.agent.loop import BuiltinBackend, anthropic_client_factory
from honk_app.agent.prompt import IssueTask, build_system_prompt, build_task_prompt
from honk_app.models import AgentOutcome
from honk_app.workspace.sandbox import Sandbox
from tests.fakes.anthropic import (
    DEFAULT_API_KEY,
    FakeAnthropic,
    Reply,
    Script,
    text,
    tool_use,
)

TARGET_CACHE_SHARE = 0.80
MODEL = "claude-sonnet-4-5"
EDITOR = "str_replace_based_edit_tool"
MODULES = 8


@dataclass(frozen=True)
class Figures:
    backend: str
    turns: int
    input_tokens: int  # uncached
    cache_write_tokens: int
    cache_read_tokens: int
    cost_usd: float

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens

    @property
    def cache_share(self) -> float:
        return self.cache_read_tokens / self.total_input if self.total_input else 0.0


def make_repository(root: Path) -> None:
    """A small Python package with tests, under git, like a repository Honk would clone."""
    package = root / "inventory"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for n in range(MODULES):
        functions = "\n\n".join(
            f"def item_{n}_{k}(count, price):\n"
            f'    """Total value of item {k} in module {n}."""\n'
            f"    subtotal = count * price\n"
            f"    return round(subtotal - subtotal * {k} / 100, 2)\n"
            for k in range(12)
        )
        (package / f"module_{n}.py").write_text(functions + "\n")
    (root / "test_inventory.sh").write_text(
        'python3 -c "from inventory.module_0 import item_0_0; assert item_0_0(2, 3) == 6"'
        " && echo tests passed\n"
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)


def scripted_turns(turns: int) -> list[Reply]:
    """`turns - 1` tool calls cycling through view, edit and run, then the summary."""
    replies: list[Reply] = []
    for turn in range(turns - 1):
        module = f"inventory/module_{turn % MODULES}.py"
        kind = turn % 3
        if kind == 0:
            replies.append(
                tool_use(EDITOR, {"command": "view", "path": module}, text=f"Reading {module}.")
            )
        elif kind == 1:
            k = turn % 12
            old = f"subtotal * {k} / 100, 2)"
            new = f"{old}  # discount of {k}% (step {turn})"
            replies.append(
                tool_use(
                    EDITOR,
                    {"command": "str_replace", "path": module, "old_str": old, "new_str": new},
                    text="Annotating the computation.",
                )
            )
        else:
            command = "sh test_inventory.sh" if turn % 2 else f"grep -n 'def ' {module} | head"
            replies.append(tool_use("bash", {"command": command}, text="Checking."))
    replies.append(text("Annotated the inventory modules; sh test_inventory.sh passes."))
    return replies


def session_task(workspace: Path, turns: int) -> AgentTask:
    system = build_system_prompt(
        repo_instructions="Run sh test_inventory.sh before finishing. Keep functions pure.",
        config_instructions=None,
        protected_paths=[".github/workflows/**"],
    )
    issue = IssueTask(
        repository="octo/inventory",
        number=12,
        title="Document how each item total is computed",
        body="Each item function rounds a discounted subtotal. Add a short comment to each.",
        instruction="annotate the computations",
        requested_by="maintainer",
    )
    return AgentTask(
        workspace=workspace,
        system_prompt=system,
        task_prompt=build_task_prompt(issue),
        model=MODEL,
        limits=Limits(max_turns=turns + 5, max_cost_usd=100.0, timeout_s=600),
    )


async def builtin_figures(turns: int) -> Figures:
    """The built-in loop, against the fake API with the real API's 1024-token cache minimum."""
    with tempfile.TemporaryDirectory(prefix="honk-bench-") as tmp:
        workspace = Path(tmp) / "repo"
        make_repository(workspace)
        with FakeAnthropic(Script(scripted_turns(turns)), min_cacheable_tokens=1024) as fake:
            backend = BuiltinBackend(
                anthropic_client_factory(DEFAULT_API_KEY, base_url=fake.url, max_retries=0),
                lambda path: Sandbox(path),
            )
            session = backend.open(session_task(workspace, turns))
            try:
                outcome = await session.start()
            finally:
                await session.close()
    return figures_from("builtin", outcome, turns)


def figures_from(backend: str, outcome: AgentOutcome, turns: int) -> Figures:
    """A finished scripted session's figures; a session that strayed from the script is an error."""
    if outcome.stop != "done" or outcome.turns != turns:
        raise RuntimeError(f"the scripted session did not finish as scripted: {outcome}")
    usage = outcome.usage
    return Figures(
        backend=backend,
        turns=outcome.turns,
        input_tokens=usage.input_tokens,
        cache_write_tokens=usage.cache_creation_input_tokens,
        cache_read_tokens=usage.cache_read_input_tokens,
        cost_usd=outcome.cost_usd,
    )


async def claude_code_figures(turns: int) -> Figures:
    """The same task through the real Claude Code CLI (imported late: it needs the extra)."""
    from bench.agent_cache_claude_code import claude_code_figures as figures

    return await figures(turns)


BACKENDS: dict[str, Callable[[int], Awaitable[Figures]]] = {
    "builtin": builtin_figures,
    "claude-code": claude_code_figures,
}


def render(rows: list[Figures]) -> str:
    header = ["", *(f.backend for f in rows)]
    lines: list[list[Any]] = [
        ["turns", *(f.turns for f in rows)],
        ["input tokens sent", *(f"{f.total_input:,}" for f in rows)],
        ["  uncached", *(f"{f.input_tokens:,}" for f in rows)],
        ["  cache writes", *(f"{f.cache_write_tokens:,}" for f in rows)],
        ["  cache reads", *(f"{f.cache_read_tokens:,}" for f in rows)],
        ["read from cache", *(f"{f.cache_share:.1%}" for f in rows)],
        [
            f"meets >= {TARGET_CACHE_SHARE:.0%}",
            *(f.cache_share >= TARGET_CACHE_SHARE for f in rows),
        ],
        ["cost (USD, Sonnet prices)", *(f"{f.cost_usd:.4f}" for f in rows)],
    ]
    table = [header, *lines]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in table
    )


async def run(turns: int, backends: list[str]) -> list[Figures]:
    return [await BACKENDS[name](turns) for name in backends]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--turns", type=int, default=30, help="model turns in the session")
    parser.add_argument(
        "--backend", action="append", choices=sorted(BACKENDS), help="default: all of them"
    )
    args = parser.parse_args(argv)
    if args.turns < 2:
        parser.error("--turns must be at least 2")
    rows = asyncio.run(run(args.turns, args.backend or list(BACKENDS)))
    print(
        f"Prompt caching over a scripted {args.turns}-turn session (fake API, 1024-token minimum)"
    )
    print(render(rows))
    return 0  # a benchmark reports; it does not fail the build


if __name__ == "__main__":
    raise SystemExit(main())
