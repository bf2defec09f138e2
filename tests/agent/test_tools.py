"""The editor and bash tools: what they do in a workspace, and what they refuse."""

from __future__ import annotations

import random
import re
import subprocess
import typing
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from anthropic.types import ToolBash20250124Param, ToolTextEditor20250728Param

from honk_app.agent.editor_files import ToolInputError, opened, read_lines
from honk_app.agent.tool_output import cut_middle, cut_middle_stream, number_lines
from honk_app.agent.tools import (
    WorkspaceTools,
    bash_tool,
    editor_tool,
    insert_after,
    replace_once,
)
from honk_app.workspace.sandbox import Sandbox

EDITOR = "str_replace_based_edit_tool"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "README.md").write_text("# Demo\n")
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside.txt"
    secret.write_text("do not touch\n")
    return secret


@pytest.fixture
async def tools(workspace: Path) -> AsyncIterator[WorkspaceTools]:
    sandbox = Sandbox(workspace)
    yield WorkspaceTools(workspace, sandbox, result_cap=2_000, command_timeout_s=20)
    await sandbox.close()


def literal(typed: type, key: str) -> str:
    (value,) = typing.get_args(typing.get_type_hints(typed)[key])
    return str(value)


def test_tool_definitions_match_the_sdk_types() -> None:
    assert editor_tool()["type"] == literal(ToolTextEditor20250728Param, "type")
    assert editor_tool()["name"] == literal(ToolTextEditor20250728Param, "name") == EDITOR
    assert bash_tool()["type"] == literal(ToolBash20250124Param, "type")
    assert bash_tool()["name"] == literal(ToolBash20250124Param, "name") == "bash"


# ---- the editor ------------------------------------------------------------------------------


async def test_view_shows_numbered_lines_and_a_range(tools: WorkspaceTools) -> None:
    whole = await tools.call(EDITOR, {"command": "view", "path": "src/app.py"})
    assert whole.content == "     1\tdef add(a, b):\n     2\t    return a - b"
    part = await tools.call(
        EDITOR, {"command": "view", "path": "src/app.py", "view_range": [2, -1]}
    )
    assert part.content == "     2\t    return a - b"
    bad = await tools.call(EDITOR, {"command": "view", "path": "src/app.py", "view_range": [3, 9]})
    assert bad.is_error and "2 lines" in bad.content


async def test_view_of_a_directory_lists_two_levels_without_hidden_entries(
    tools: WorkspaceTools,
) -> None:
    listing = await tools.call(EDITOR, {"command": "view", "path": "."})
    lines = listing.content.splitlines()[1:]
    assert lines == ["README.md", "src/", "src/app.py"]


async def test_create_str_replace_and_insert_edit_files(
    tools: WorkspaceTools, workspace: Path
) -> None:
    created = await tools.call(
        EDITOR, {"command": "create", "path": "tests/test_app.py", "file_text": "import app\n"}
    )
    assert not created.is_error
    assert (workspace / "tests" / "test_app.py").read_text() == "import app\n"
    fixed = await tools.call(
        EDITOR,
        {"command": "str_replace", "path": "src/app.py", "old_str": "a - b", "new_str": "a + b"},
    )
    assert not fixed.is_error
    inserted = await tools.call(
        EDITOR, {"command": "insert", "path": "src/app.py", "insert_line": 0, "insert_text": "# m"}
    )
    assert not inserted.is_error
    assert (workspace / "src" / "app.py").read_text() == "# m\ndef add(a, b):\n    return a + b\n"


async def test_str_replace_needs_exactly_one_match(tools: WorkspaceTools, workspace: Path) -> None:
    (workspace / "dup.txt").write_text("x = 1\ny = 2\nx = 1\n")
    twice = await tools.call(
        EDITOR, {"command": "str_replace", "path": "dup.txt", "old_str": "x = 1", "new_str": "z"}
    )
    absent = await tools.call(
        EDITOR, {"command": "str_replace", "path": "dup.txt", "old_str": "w = 0", "new_str": "z"}
    )
    assert twice.is_error and "2 times" in twice.content and "lines 1, 3" in twice.content
    assert absent.is_error and "does not appear" in absent.content
    assert (workspace / "dup.txt").read_text() == "x = 1\ny = 2\nx = 1\n"


async def test_undo_edit_is_not_offered_by_this_tool_version(tools: WorkspaceTools) -> None:
    result = await tools.call(EDITOR, {"command": "undo_edit", "path": "README.md"})
    assert result.is_error and "Unknown command" in result.content


async def test_binary_files_are_not_shown(tools: WorkspaceTools, workspace: Path) -> None:
    (workspace / "logo.bin").write_bytes(b"\xff\xfe\x00\x81")
    result = await tools.call(EDITOR, {"command": "view", "path": "logo.bin"})
    assert result.is_error and "not UTF-8" in result.content


async def test_an_absolute_path_inside_the_workspace_is_fine(
    tools: WorkspaceTools, workspace: Path
) -> None:
    result = await tools.call(EDITOR, {"command": "view", "path": str(workspace / "README.md")})
    assert result.content == "     1\t# Demo"


# ---- confinement -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"command": "view", "path": "../outside.txt"},
        {
            "command": "str_replace",
            "path": "src/../../outside.txt",
            "old_str": "do",
            "new_str": "x",
        },
        {"command": "create", "path": "../outside.txt", "file_text": "overwritten"},
    ],
)
async def test_paths_that_climb_out_are_refused(
    tools: WorkspaceTools, outside: Path, params: dict[str, str]
) -> None:
    result = await tools.call(EDITOR, params)
    assert result.is_error and "outside the workspace" in result.content
    assert outside.read_text() == "do not touch\n"


async def test_an_absolute_path_elsewhere_is_refused(tools: WorkspaceTools, outside: Path) -> None:
    result = await tools.call(
        EDITOR, {"command": "create", "path": str(outside), "file_text": "overwritten"}
    )
    assert result.is_error
    assert outside.read_text() == "do not touch\n"


async def test_a_symlink_to_a_file_outside_is_refused(
    tools: WorkspaceTools, workspace: Path, outside: Path
) -> None:
    (workspace / "notes.txt").symlink_to(outside)
    for params in (
        {"command": "view", "path": "notes.txt"},
        {"command": "str_replace", "path": "notes.txt", "old_str": "do not", "new_str": "please"},
        {"command": "create", "path": "notes.txt", "file_text": "overwritten"},
    ):
        result = await tools.call(EDITOR, params)
        assert result.is_error and "symlink" in result.content
    assert outside.read_text() == "do not touch\n"


async def test_a_symlinked_parent_directory_outside_is_refused(
    tools: WorkspaceTools, workspace: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (workspace / "docs").symlink_to(elsewhere, target_is_directory=True)
    result = await tools.call(
        EDITOR, {"command": "create", "path": "docs/new.md", "file_text": "hello"}
    )
    assert result.is_error
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("path", [".git/hooks/pre-commit", ".git/config", "src/../.GIT/HEAD"])
async def test_git_internals_are_refused(tools: WorkspaceTools, workspace: Path, path: str) -> None:
    before = (workspace / ".git" / "config").read_text()
    result = await tools.call(EDITOR, {"command": "create", "path": path, "file_text": "#!/bin/sh"})
    assert result.is_error and ".git" in result.content
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()
    assert (workspace / ".git" / "config").read_text() == before


async def test_a_symlink_into_git_is_refused(tools: WorkspaceTools, workspace: Path) -> None:
    (workspace / "hooks").symlink_to(workspace / ".git" / "hooks", target_is_directory=True)
    result = await tools.call(
        EDITOR, {"command": "create", "path": "hooks/pre-commit", "file_text": "#!/bin/sh"}
    )
    assert result.is_error
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()


# ---- bash ------------------------------------------------------------------------------------


async def test_bash_returns_output_and_exit_code(tools: WorkspaceTools) -> None:
    ok = await tools.call("bash", {"command": "cat README.md && echo done"})
    failed = await tools.call("bash", {"command": "ls missing-file"})
    assert ok.content == "# Demo\ndone\n[exit code 0]" and not ok.is_error
    assert failed.content.endswith("[exit code 2]") and "missing-file" in failed.content


async def test_bash_calls_are_independent_and_restart_is_answered(tools: WorkspaceTools) -> None:
    await tools.call("bash", {"command": "cd src && export FOO=1"})
    where = await tools.call("bash", {"command": "basename $(pwd); echo ${FOO:-unset}"})
    restarted = await tools.call("bash", {"restart": True})
    assert where.content == "repo\nunset\n[exit code 0]"
    assert "restarted" in restarted.content and not restarted.is_error


async def test_a_command_over_its_time_limit_is_killed(workspace: Path) -> None:
    sandbox = Sandbox(workspace)
    tools = WorkspaceTools(workspace, sandbox, command_timeout_s=0.5)
    result = await tools.call("bash", {"command": "sleep 30"})
    await sandbox.close()
    assert result.is_error and "timed out" in result.content


async def test_long_output_is_cut_in_the_middle_with_a_note(tools: WorkspaceTools) -> None:
    result = await tools.call("bash", {"command": "seq 1 5000"})
    assert len(result.content) <= 2_000
    assert result.content.startswith("1\n2\n3\n")
    assert result.content.endswith("4999\n5000\n[exit code 0]")
    assert "characters" in result.content and "lines) cut from the middle" in result.content


async def test_unknown_tools_and_bad_input_are_errors_for_the_model(tools: WorkspaceTools) -> None:
    assert (await tools.call("web_search", {"query": "x"})).is_error
    assert (await tools.call("bash", {})).is_error
    assert (await tools.call(EDITOR, {"command": "view"})).is_error


# ---- pure helpers ----------------------------------------------------------------------------


def test_cut_middle_says_how_much_was_cut() -> None:
    text = "".join(f"line {n}\n" for n in range(1000))
    cut = cut_middle(text, 500)
    note = re.search(r"\n\n\[\.\.\. (\d+) characters \((\d+) lines\) cut .*\]\n\n", cut)
    assert note is not None and len(cut) <= 500
    head, tail = cut[: note.start()], cut[note.end() :]
    assert text.startswith(head) and text.endswith(tail)
    assert len(head) + int(note[1]) + len(tail) == len(text)
    assert int(note[2]) == text[len(head) : len(text) - len(tail)].count("\n")
    assert cut_middle("short", 500) == "short"


def test_editing_helpers() -> None:
    assert number_lines("a\nb\n") == "     1\ta\n     2\tb"
    assert replace_once("a b c", "b", "B", "f") == "a B c"
    assert insert_after("one\nthree\n", 1, "two") == "one\ntwo\nthree\n"
    assert insert_after("one\n", 1, "two\n") == "one\ntwo\n"
    assert insert_after("", 0, "first") == "first\n"


@pytest.mark.parametrize("seed", range(4))
def test_bounded_rendering_matches_rendering_everything_then_cutting(seed: int) -> None:
    """number_lines(limit=) and cut_middle_stream only avoid building what cut_middle drops."""
    rng = random.Random(seed)
    for _ in range(500):
        lines = [rng.choice(["", "a", "é" * rng.randint(1, 40), "x" * rng.randint(0, 300)])]
        content = "\n".join(lines * rng.randint(0, 40)) + rng.choice(["", "\n"])
        first, limit = rng.choice([1, 7, 999_990, 9_999_995]), rng.randint(1, 3_000)
        assert number_lines(content, first, limit) == cut_middle(
            number_lines(content, first), limit
        )
        pieces = [content[i : i + 17] for i in range(0, len(content), 17)]
        assert cut_middle_stream(pieces, limit) == cut_middle(content, limit)


# ---- the bounded reader ----------------------------------------------------------------------


def _naive_lines(data: bytes, first: int, last: int | None, cap: int) -> tuple[bytes, bool]:
    """What read_lines must return, computed the obvious way: the whole file split."""
    pieces = [line + b"\n" for line in data.split(b"\n")]
    pieces[-1] = pieces[-1][:-1]
    wanted = b"".join(pieces[first - 1 : last])
    if len(wanted) <= cap:
        return wanted, False
    whole = wanted[:cap].rfind(b"\n") + 1
    return wanted[: whole or cap], True


@pytest.mark.parametrize("chunk", [1, 2, 5, 64])
def test_read_lines_streams_what_splitting_the_whole_file_gives(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr("honk_app.agent.editor_files._CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(500):
        data = b"".join(
            rng.choice([b"a", b"bc", b"\n", b"xyz\n"]) for _ in range(rng.randint(0, 30))
        )
        first = rng.randint(1, 12)
        last = rng.choice([None, first + rng.randint(0, 6)])
        cap = rng.randint(1, 40)
        (workspace / "f").write_bytes(data)
        with opened(workspace / "f", "f") as (fd, _):
            got = read_lines(fd, first, last, cap=cap)
        assert (got.data, got.cut) == _naive_lines(data, first, last, cap), (data, first, last)
        if got.total is not None:
            assert got.total == data.count(b"\n") + (not data.endswith(b"\n") and bool(data))


def test_view_range_stops_counting_at_the_scan_cap(workspace: Path) -> None:
    (workspace / "f.txt").write_bytes(b"line\n" * 10_000)
    with opened(workspace / "f.txt", "f.txt") as (fd, _), pytest.raises(ToolInputError) as err:
        read_lines(fd, 9_000, 9_001, scan_cap=1_000)
    assert "line 9000 is not within the first 1 kB of the file" in str(err.value)
    assert "sed -n" in str(err.value)
