"""Anthropic's standard client tools (text editor, bash), confined to one workspace.

Claude is trained on these two tools, so the built-in loop offers exactly them. Every path the
model names is checked before anything is read or written: it must resolve inside the workspace
(no `..`, no absolute path elsewhere, no symlink leading out) and must not reach into `.git`, where
a hook would run outside the sandbox. A path or command the OS would refuse (a NUL byte, a lone
surrogate, an over-long name) is a tool error, never the end of the session (tool_inputs.py).
Commands go through a `CommandRunner` (the sandbox), one independent process per call. The model
is treated as hostile: no call holds more than a capped part of a file or listing
(editor_files.py), and every result is cut before it is kept.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anthropic.types import ToolBash20250124Param, ToolTextEditor20250728Param

from honk_app.agent.base import CommandRunner
from honk_app.agent.editor_files import (
    CAP_TEXT,
    ToolInputError,
    decode_text,
    human_size,
    list_directory,
    opened,
    overwrite,
    read_for_edit,
    read_lines,
)
from honk_app.agent.tool_inputs import check_command, check_path
from honk_app.agent.tool_output import DEFAULT_RESULT_CAP as DEFAULT_RESULT_CAP
from honk_app.agent.tool_output import cut_middle as cut_middle
from honk_app.agent.tool_output import cut_middle_stream, number_lines

EDITOR_TOOL_NAME = "str_replace_based_edit_tool"
BASH_TOOL_NAME = "bash"


def editor_tool() -> ToolTextEditor20250728Param:
    return {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}


def bash_tool() -> ToolBash20250124Param:
    return {"type": "bash_20250124", "name": "bash"}


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model in a tool_result block."""

    content: str
    is_error: bool = False


# ---- pure helpers ----------------------------------------------------------------------------


def parse_view_range(requested: Any) -> tuple[int, int]:
    if (
        not isinstance(requested, list)
        or len(requested) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) for n in requested)
    ):
        raise ToolInputError("view_range must be a list of two integers [start, end].")
    start, end = requested
    if start < 1 or (end != -1 and end < start):
        raise ToolInputError(
            f"Invalid view_range {requested}: start must be at least 1 and end at least start, "
            "or -1 for the end of the file."
        )
    return start, end


def check_view_range(start: int, end: int, total: int | None) -> None:
    """Once the read reached the end of the file (`total` known), the range must lie within it."""
    if total is None:
        return
    last = total if end == -1 else end
    if start > max(total, 1) or last < start or last > total:
        raise ToolInputError(
            f"Invalid view_range {[start, end]}: the file has {total} lines; start must be in "
            "[1, lines] and end in [start, lines] or -1."
        )


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
    """The real path for `raw`, or ToolInputError if it would leave the workspace or enter .git,
    or is no path the OS would take (tool_inputs.py)."""
    raw = check_path(raw)
    given, root = Path(os.path.abspath(root)), root.resolve()
    candidate = Path(os.path.normpath(raw))
    if candidate.is_absolute() and candidate.is_relative_to(given):
        candidate = candidate.relative_to(given)  # the workspace as named before resolving
    lexical = Path(os.path.normpath(candidate if candidate.is_absolute() else root / candidate))
    if not lexical.is_relative_to(root):
        raise ToolInputError(f"{raw} is outside the workspace; use a path inside {root}.")
    try:
        real = lexical.resolve()
    except RuntimeError:  # a symlink loop (Python 3.13 leaves it unresolved instead)
        raise ToolInputError(f"{raw} goes through a symlink loop; refused.") from None
    except OSError as exc:
        raise ToolInputError(f"{raw}: {exc.strerror or exc}.") from None
    if not real.is_relative_to(root):
        raise ToolInputError(f"{raw} leads outside the workspace (through a symlink); refused.")
    for path in (lexical, real):
        if any(part.lower() == ".git" for part in path.relative_to(root).parts):
            raise ToolInputError(f"{raw} is inside .git, which Honk manages; refused.")
    return real


def _view(root: Path, path: Path, shown: str, requested: Any, limit: int) -> str:
    """A file's lines (at most READ_CAP bytes of them, streamed) or a bounded directory listing."""
    start, end = (1, -1) if requested is None else parse_view_range(requested)
    with opened(path, shown) as (fd, found):
        if stat.S_ISDIR(found.st_mode):
            where = "." if path == root else str(path.relative_to(root))
            prefix = "" if path == root else f"{where}/"
            header = f"Files and directories up to 2 levels deep in {where}:"
            entries = (f"\n{entry}" for entry in list_directory(fd, prefix))
            return cut_middle_stream(itertools.chain([header], entries), limit)
        lines = read_lines(fd, start, None if end == -1 else end)
    if requested is not None:
        check_view_range(start, end, lines.total)
    text, replaced = decode_text(lines.data, shown, partial=lines.cut)
    notes = [f"[{replaced} invalid UTF-8 sequences are shown as \ufffd]"] if replaced else []
    if lines.cut and "\n" not in text:
        notes.append(
            f"[line {start} is longer than {CAP_TEXT}; only its beginning is shown. Use bash "
            "(cut, fold, head -c) to see more]"
        )
    elif lines.cut:
        last = start + text.count("\n") - 1
        notes.append(
            f"[showing the first {CAP_TEXT} of {human_size(found.st_size)} (lines 1-{last}); "
            f"use view_range to see more]"
            if requested is None
            else f"[the range was cut at {CAP_TEXT}: showing lines {start}-{last}; ask for a "
            f"range starting at {last + 1} to see more]"
        )
    note = "\n".join(notes)
    if not note:
        return number_lines(text, start, limit)
    return f"{number_lines(text, start, max(limit - len(note) - 2, 200))}\n\n{note}"


def _edit(path: Path, shown: str, change: Callable[[str], str]) -> None:
    """Read a file (refused over the cap), change its text, and write it back through one fd."""
    with opened(path, shown, write=True) as (fd, found):
        overwrite(fd, change(read_for_edit(fd, found, shown)))


def run_editor(root: Path, params: dict[str, Any], limit: int = DEFAULT_RESULT_CAP) -> str:
    """One text editor command (blocking file I/O; the caller runs it in a thread).

    No command holds more than READ_CAP bytes of a file or renders more than about `limit`
    characters of output, whatever the file is.
    """
    raw = params.get("path")
    root = root.resolve()
    path = resolve_in_workspace(root, raw)
    shown = str(raw)
    try:
        return _run_command(root, path, shown, params, limit)
    except OSError as exc:  # what the OS said of this path (ENAMETOOLONG, ENOTDIR, ELOOP, …)
        raise ToolInputError(f"{shown}: {exc.strerror or exc}.") from None


def _run_command(root: Path, path: Path, shown: str, params: dict[str, Any], limit: int) -> str:
    command = params.get("command")
    if command == "view":
        return _view(root, path, shown, params.get("view_range"), limit)
    if command == "create":
        file_text = params.get("file_text")
        if not isinstance(file_text, str):
            raise ToolInputError("create needs file_text (a string).")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise ToolInputError(f"{shown}: a part of it is a file, not a directory.") from None
        existed = os.path.lexists(path)
        with opened(path, shown, write=True, create=True) as (fd, _):
            overwrite(fd, file_text)
        return f"{'Overwrote' if existed else 'Created'} {shown}."
    if command == "str_replace":
        old, new = params.get("old_str"), params.get("new_str", "")
        if not isinstance(old, str) or not isinstance(new, str):
            raise ToolInputError("str_replace needs old_str and new_str (strings).")
        _edit(path, shown, lambda content: replace_once(content, old, new, shown))
        return f"Edited {shown}: replaced one occurrence of old_str."
    if command == "insert":
        text = params.get("insert_text", params.get("new_str"))
        if not isinstance(text, str):
            raise ToolInputError("insert needs insert_text (a string).")
        line = params.get("insert_line")
        _edit(path, shown, lambda content: insert_after(content, line, text))
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
                return await self._editor(params)
            if name == BASH_TOOL_NAME:
                return await self._bash(params)
        except ToolInputError as exc:
            return ToolResult(cut_middle(f"Error: {exc}", self.result_cap), is_error=True)
        except OSError as exc:
            return ToolResult(f"Error: {exc.strerror or exc}.", is_error=True)
        return ToolResult(
            cut_middle(
                f"Error: unknown tool {name!r}; the tools are {EDITOR_TOOL_NAME} and bash.",
                self.result_cap,
            ),
            is_error=True,
        )

    async def _editor(self, params: dict[str, Any]) -> ToolResult:
        try:
            output = await asyncio.to_thread(run_editor, self.workspace, params, self.result_cap)
        except ValueError as exc:  # a string the OS refused that no check foresaw: the model's
            raise ToolInputError(f"The editor could not use this input: {exc}.") from None
        return ToolResult(cut_middle(output, self.result_cap))

    async def _bash(self, params: dict[str, Any]) -> ToolResult:
        if params.get("restart"):
            return ToolResult("Bash restarted (every command runs in a fresh shell anyway).")
        command = check_command(params.get("command"))
        result = await self.runner.run(command, timeout_s=self.command_timeout_s)
        status = f"[exit code {result.exit_code}]"
        if result.timed_out:
            status = f"[timed out after {result.duration_s:.0f}s and was killed]"
        note = "\n[the sandbox cut part of this output]" if result.truncated else ""
        text = f"{result.output.rstrip()}{note}\n{status}".lstrip("\n")
        return ToolResult(cut_middle(text, self.result_cap), is_error=result.timed_out)
