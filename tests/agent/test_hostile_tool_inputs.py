"""Paths and commands the OS would refuse come back to the model as tool errors; the session
goes on.

Before these checks a path with a NUL byte raised ValueError out of the editor and ended the whole
agent session as if Honk had failed; a lone surrogate, a symlink loop or a NUL in a bash command
did the same.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from honk_app.agent.editor_files import ToolInputError
from honk_app.agent.tool_inputs import (
    MAX_COMMAND_BYTES,
    MAX_NAME_BYTES,
    MAX_PATH_BYTES,
    check_command,
    check_path,
)
from honk_app.agent.tools import WorkspaceTools
from honk_app.workspace.sandbox import Sandbox
from tests.agent.test_loop import FIX_SCRIPT, open_session, tool_results
from tests.agent.test_loop import close_sessions as close_sessions
from tests.fakes.anthropic import FakeAnthropic, Script, tool_use

EDITOR = "str_replace_based_edit_tool"

HOSTILE_PATHS: dict[str, tuple[str, str]] = {
    "NUL byte": ("src/app.py\x00.txt", "contains a NUL byte"),
    "NUL byte alone": ("\x00", "contains a NUL byte"),
    "lone surrogate": ("src/\ud800.py", "lone surrogate"),
    "surrogate escape of a non-UTF-8 byte": ("src/\udcff.py", "lone surrogate"),
    "newline": ("src/app.py\n", "control character"),
    "escape sequence": ("\x1b[31mred.py", "control character"),
    "C1 control": ("src/\x85.py", "control character"),
    "name over NAME_MAX": ("x" * (MAX_NAME_BYTES + 1), f"over the {MAX_NAME_BYTES} bytes"),
    "multibyte name over NAME_MAX": ("é" * 128, "name of 256 bytes"),
    "path over PATH_MAX": ("d/" * 2_100 + "x", f"over the {MAX_PATH_BYTES:,} bytes"),
    "symlink loop": ("loop/x.py", "symlink loop"),
    "symlink loop itself": ("loop", "symlink loop"),
    "file used as a directory": ("README.md/x", "README.md/x: "),
    "empty": ("", "path is required"),
    "blank": ("  ", "path is required"),
}


@pytest.mark.parametrize(("path", "said"), HOSTILE_PATHS.values(), ids=HOSTILE_PATHS)
@pytest.mark.parametrize("command", ["view", "create", "str_replace", "insert"])
async def test_a_hostile_path_is_a_tool_error_and_the_next_call_works(
    tools: WorkspaceTools, workspace: Path, command: str, path: str, said: str
) -> None:
    params: dict[str, Any] = {
        "command": command,
        "path": path,
        "file_text": "x",
        "old_str": "a - b",
        "new_str": "a + b",
        "insert_line": 0,
        "insert_text": "# hi\n",
    }
    result = await tools.call(EDITOR, params)
    assert result.is_error
    assert said in result.content
    assert "directory" in result.content if "README" in path else True
    assert result.content.isprintable() and "\n" not in result.content
    assert len(result.content) < 400
    after = await tools.call(EDITOR, {"command": "view", "path": "src/app.py"})
    assert after == type(after)("     1\tdef add(a, b):\n     2\t    return a - b")


HOSTILE_COMMANDS: dict[str, tuple[Any, str]] = {
    "NUL byte": ("echo a\x00b", "contains a NUL byte"),
    "lone surrogate": ("echo \ud800", "lone surrogate"),
    "over MAX_ARG_STRLEN": ("echo " + "x" * MAX_COMMAND_BYTES, "write the script to a file"),
    "multibyte over MAX_ARG_STRLEN": ("echo " + "é" * 65_534, "131,073 bytes long"),
    "not a string": (["ls"], "needs a command"),
    "empty": ("", "needs a command"),
}


@pytest.mark.parametrize(("command", "said"), HOSTILE_COMMANDS.values(), ids=HOSTILE_COMMANDS)
async def test_a_command_bash_cannot_be_given_is_a_tool_error(
    tools: WorkspaceTools, command: Any, said: str
) -> None:
    result = await tools.call("bash", {"command": command})
    assert result.is_error and said in result.content
    after = await tools.call("bash", {"command": "echo still here"})
    assert (after.is_error, after.content) == (False, "still here\n[exit code 0]")


def test_paths_and_commands_the_os_takes_pass_unchanged() -> None:
    for path in ["src/app.py", "docs/日本語.md", "a b/c.txt", "x" * MAX_NAME_BYTES, "./x", "/abs"]:
        assert check_path(path) == path
    for command in ["ls -la\n\tpwd", "printf 'é\\0'", "x" * MAX_COMMAND_BYTES]:
        assert check_command(command) == command
    with pytest.raises(ToolInputError):
        check_path(("d" * 200 + "/") * 20 + "x" * 96)  # 4,096 bytes: one over


# ---- a whole session ---------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "README.md").write_text("# Demo\n")
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "test_calc.sh").write_text(
        'python3 -c "from calc import add; assert add(2, 3) == 5, add(2, 3)" && echo PASSED\n'
    )
    (root / "loop").symlink_to("loop")
    return root


@pytest.fixture
async def tools(workspace: Path) -> AsyncIterator[WorkspaceTools]:
    sandbox = Sandbox(workspace)
    yield WorkspaceTools(workspace, sandbox, result_cap=2_000, command_timeout_s=20)
    await sandbox.close()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(Script([]), min_cacheable_tokens=100) as server:
        yield server


async def test_the_session_goes_on_after_hostile_tool_inputs(
    fake: FakeAnthropic, workspace: Path
) -> None:
    hostile = [
        tool_use(EDITOR, {"command": "view", "path": "calc.py\x00"}),
        tool_use(EDITOR, {"command": "create", "path": "x.py\n", "file_text": "x"}),
        tool_use(EDITOR, {"command": "view", "path": "loop/calc.py"}),
        tool_use("bash", {"command": "cat calc.py\x00"}),
    ]
    outcome = await open_session(fake, workspace, [*hostile, *FIX_SCRIPT]).start()
    assert outcome.stop == "done"
    for request in fake.requests[1 : 1 + len(hostile)]:
        (result,) = tool_results(request)
        assert result["is_error"] is True
    assert "return a + b" in (workspace / "calc.py").read_text()
    assert sorted(p.name for p in workspace.iterdir() if p.name.endswith(".py")) == ["calc.py"]
