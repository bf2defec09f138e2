"""Anthropic's standard client tools (text editor, bash), confined to one workspace.

Claude is trained on these two tools, so the built-in loop offers exactly them. Every path the
model names is checked before anything is read or written: it must resolve inside the workspace
(no `..`, no absolute path elsewhere, no symlink leading out) and must not reach into `.git`, where
a hook would run outside the sandbox. Commands go through a `CommandRunner` (the sandbox), one
independent process per call.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anthropic.types import ToolBash20250124Param, ToolTextEditor20250728Param

from honk_app.agent.base import CommandRunner

EDITOR_TOOL_NAME = "str_replace_based_edit_tool"
BASH_TOOL_NAME = "bash"
DEFAULT_RESULT_CAP = 30_000
_LISTING_LIMIT = 1_000


def editor_tool() -> ToolTextEditor20250728Param:
    return {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}


def bash_tool() -> ToolBash20250124Param:
    return {"type": "bash_20250124", "name": "bash"}


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model in a tool_result block."""

    content: str
    is_error: bool = False


class ToolInputError(Exception):
    """The model asked for something the tool refuses; the message is shown to the model."""


# ---- pure helpers ----------------------------------------------------------------------------


def cut_middle(text: str, limit: int = DEFAULT_RESULT_CAP) -> str:
    """Keep the head and tail of `text` within `limit` characters, saying what was cut."""
    if len(text) <= limit:
        return text
    budget = max(limit - 120, 2)
    head, tail = text[: budget // 2], text[len(text) - (budget - budget // 2) :]
    removed = text[len(head) : len(text) - len(tail)]
    note = (
        f"\n\n[... {len(removed)} characters ({removed.count(chr(10))} lines) cut from the "
        "middle of this output ...]\n\n"
    )
    return head + note + tail


def number_lines(content: str, first_line: int = 1) -> str:
    """`cat -n` style, which is what the editor tool's `view` shows the model."""
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return "\n".join(f"{n:6}\t{line}" for n, line in enumerate(lines, start=first_line))


def view_range(content: str, requested: Any) -> str:
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if (
        not isinstance(requested, list)
        or len(requested) != 2
        or not all(isinstance(n, int) for n in requested)
    ):
        raise ToolInputError("view_range must be a list of two integers [start, end].")
    start, end = requested
    if end == -1:
        end = len(lines)
    if start < 1 or start > max(len(lines), 1) or end < start or end > len(lines):
        raise ToolInputError(
            f"Invalid view_range {requested}: the file has {len(lines)} lines; start must be in "
            "[1, lines] and end in [start, lines] or -1."
        )
    return number_lines("\n".join(lines[start - 1 : end]), first_line=start)


def replace_once(content: str, old: str, new: str, path: str) -> str:
    if not old:
        raise ToolInputError("old_str must not be empty.")
    count = content.count(old)
    if count == 0:
        raise ToolInputError(
            f"No replacement was made: old_str does not appear verbatim in {path}."
        )
    if count > 1:
        first = content.index(old)
        lines = [content.count("\n", 0, first) + 1]
        at = first
        while (at := content.find(old, at + 1)) != -1:
            lines.append(content.count("\n", 0, at) + 1)
        raise ToolInputError(
            f"No replacement was made: old_str occurs {count} times in {path} (at lines "
            f"{', '.join(map(str, lines))}); include more context to make it unique."
        )
    return content.replace(old, new, 1)


def insert_after(content: str, line: Any, text: str) -> str:
    lines = content.split("\n")
    trailing = bool(lines) and lines[-1] == ""
    if trailing:
        lines.pop()
    if not isinstance(line, int) or line < 0 or line > len(lines):
        raise ToolInputError(f"insert_line must be an integer between 0 and {len(lines)}.")
    new = text[:-1].split("\n") if text.endswith("\n") else text.split("\n")
    lines[line:line] = new
    return "\n".join(lines) + ("\n" if trailing or not content else "")


# ---- workspace confinement -------------------------------------------------------------------


def resolve_in_workspace(root: Path, raw: Any) -> Path:
    """The real path for `raw`, or ToolInputError if it would leave the workspace or enter .git."""
    if not isinstance(raw, str) or not raw.strip():
        raise ToolInputError("path is required.")
    given, root = Path(os.path.abspath(root)), root.resolve()
    candidate = Path(os.path.normpath(raw))
    if candidate.is_absolute() and candidate.is_relative_to(given):
        candidate = candidate.relative_to(given)  # the workspace as named before resolving
    lexical = Path(os.path.normpath(candidate if candidate.is_absolute() else root / candidate))
    if not lexical.is_relative_to(root):
        raise ToolInputError(f"{raw} is outside the workspace; use a path inside {root}.")
    real = lexical.resolve()
    if not real.is_relative_to(root):
        raise ToolInputError(f"{raw} leads outside the workspace (through a symlink); refused.")
    for path in (lexical, real):
        if any(part.lower() == ".git" for part in path.relative_to(root).parts):
            raise ToolInputError(f"{raw} is inside .git, which Honk manages; refused.")
    return real


def _list_directory(root: Path, directory: Path) -> str:
    """Up to two levels deep, hidden entries skipped, like the reference editor tool."""
    entries: list[str] = []

    def visible(parent: Path) -> list[Path]:
        return sorted(p for p in parent.iterdir() if not p.name.startswith("."))

    for child in visible(directory):
        entries.append(str(child.relative_to(root)) + ("/" if child.is_dir() else ""))
        if child.is_dir() and not child.is_symlink():
            entries += [
                str(g.relative_to(root)) + ("/" if g.is_dir() else "") for g in visible(child)
            ]
        if len(entries) >= _LISTING_LIMIT:
            entries = [*entries[:_LISTING_LIMIT], f"[... stopped at {_LISTING_LIMIT} entries ...]"]
            break
    shown = str(directory.relative_to(root)) if directory != root else "."
    return f"Files and directories up to 2 levels deep in {shown}:\n" + "\n".join(entries)


def _read_text(path: Path, raw: str) -> str:
    if not path.exists():
        raise ToolInputError(f"{raw} does not exist.")
    if not path.is_file():
        raise ToolInputError(f"{raw} is not a regular file.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ToolInputError(f"{raw} is not UTF-8 text; the editor cannot show it.") from exc


def run_editor(root: Path, params: dict[str, Any]) -> str:
    """One text editor command (blocking file I/O; the caller runs it in a thread)."""
    command = params.get("command")
    raw = params.get("path")
    path = resolve_in_workspace(root, raw)
    shown = str(raw)
    if command == "view":
        if path.is_dir():
            return _list_directory(root.resolve(), path)
        content = _read_text(path, shown)
        if params.get("view_range") is not None:
            return view_range(content, params["view_range"])
        return number_lines(content)
    if command == "create":
        file_text = params.get("file_text")
        if not isinstance(file_text, str):
            raise ToolInputError("create needs file_text (a string).")
        if path.is_dir():
            raise ToolInputError(f"{shown} is a directory.")
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        path.write_text(file_text, encoding="utf-8")
        return f"{'Overwrote' if existed else 'Created'} {shown}."
    if command == "str_replace":
        old, new = params.get("old_str"), params.get("new_str", "")
        if not isinstance(old, str) or not isinstance(new, str):
            raise ToolInputError("str_replace needs old_str and new_str (strings).")
        path.write_text(replace_once(_read_text(path, shown), old, new, shown), encoding="utf-8")
        return f"Edited {shown}: replaced one occurrence of old_str."
    if command == "insert":
        text = params.get("insert_text", params.get("new_str"))
        if not isinstance(text, str):
            raise ToolInputError("insert needs insert_text (a string).")
        line = params.get("insert_line")
        path.write_text(insert_after(_read_text(path, shown), line, text), encoding="utf-8")
        return f"Inserted text after line {line} of {shown}."
    raise ToolInputError(
        f"Unknown command {command!r}; use one of view, create, str_replace, insert."
    )


class WorkspaceTools:
    """Executes the model's tool calls in one workspace."""

    def __init__(
        self,
        workspace: Path,
        runner: CommandRunner,
        *,
        result_cap: int = DEFAULT_RESULT_CAP,
        command_timeout_s: float | None = None,
    ) -> None:
        self.workspace = workspace.resolve()
        self.runner = runner
        self.result_cap = result_cap
        self.command_timeout_s = command_timeout_s

    @staticmethod
    def definitions() -> list[ToolTextEditor20250728Param | ToolBash20250124Param]:
        return [editor_tool(), bash_tool()]

    async def call(self, name: str, params: Any) -> ToolResult:
        if not isinstance(params, dict):
            return ToolResult("The tool input must be a JSON object.", is_error=True)
        try:
            if name == EDITOR_TOOL_NAME:
                output = await asyncio.to_thread(run_editor, self.workspace, params)
                return ToolResult(cut_middle(output, self.result_cap))
            if name == BASH_TOOL_NAME:
                return await self._bash(params)
        except ToolInputError as exc:
            return ToolResult(f"Error: {exc}", is_error=True)
        except OSError as exc:
            return ToolResult(f"Error: {exc.strerror or exc}.", is_error=True)
        return ToolResult(
            f"Error: unknown tool {name!r}; the tools are {EDITOR_TOOL_NAME} and bash.",
            is_error=True,
        )

    async def _bash(self, params: dict[str, Any]) -> ToolResult:
        if params.get("restart"):
            return ToolResult("Bash restarted (every command runs in a fresh shell anyway).")
        command = params.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolInputError("bash needs a command (a non-empty string).")
        result = await self.runner.run(command, timeout_s=self.command_timeout_s)
        status = f"[exit code {result.exit_code}]"
        if result.timed_out:
            status = f"[timed out after {result.duration_s:.0f}s and was killed]"
        note = "\n[the sandbox cut part of this output]" if result.truncated else ""
        text = f"{result.output.rstrip()}{note}\n{status}".lstrip("\n")
        return ToolResult(cut_middle(text, self.result_cap), is_error=result.timed_out)
