"""The editor against a hostile model: huge, sparse, special and binary files, huge directories.

Each case runs on real files in tmp_path and is checked for what the model is told and for how
much the call could raise Honk's memory: the tracemalloc peak (every byte the tool reads or
renders is a Python object) and the rise of the process's peak RSS, both bounded by a few MiB.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import socket
import threading
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from honk_app.agent.editor_files import (
    LISTING_LIMIT,
    READ_CAP,
    ToolInputError,
    opened,
)
from honk_app.agent.tools import DEFAULT_RESULT_CAP, WorkspaceTools, run_editor
from honk_app.workspace.sandbox import Sandbox

EDITOR = "str_replace_based_edit_tool"
MEMORY_BOUND = 16 * 1024 * 1024
BIG = 1_500_000_000
HEAD_LINES = 30_000  # "head line n": about 470 kB, more than the read cap
TAIL_LINES = 100  # at the very end; the first is glued to the hole: line HEAD_LINES + 1
T = TypeVar("T")


@dataclass(frozen=True)
class Growth:
    traced_peak: int  # bytes, tracemalloc
    rss_rise: int  # bytes the peak RSS rose during the call


def _peak_rss() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measured(call: Callable[[], T]) -> tuple[T | Exception, Growth]:
    """Run `call`; its result (or the exception it raised) and how much memory it took at most."""
    gc.collect()
    with contextlib.suppress(OSError):  # Linux: reset the peak RSS to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    before = _peak_rss()
    tracemalloc.start()
    try:
        result: T | Exception = call()
    except Exception as exc:
        result = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, Growth(peak, _peak_rss() - before)


def assert_bounded(growth: Growth) -> None:
    assert growth.traced_peak < MEMORY_BOUND, growth
    assert growth.rss_rise < MEMORY_BOUND, growth


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


@pytest.fixture
async def tools(workspace: Path) -> AsyncIterator[WorkspaceTools]:
    sandbox = Sandbox(workspace)
    yield WorkspaceTools(workspace, sandbox)
    await sandbox.close()


@pytest.fixture(scope="module")
def big_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sparse 1.5 GB log (text, a hole, text) and a sparse 1.5 GB file of nothing but a hole."""
    root = tmp_path_factory.mktemp("big") / "repo"
    root.mkdir()
    head = b"".join(b"head line %d\n" % n for n in range(HEAD_LINES))
    tail = b"".join(b"tail line %d\n" % n for n in range(TAIL_LINES))
    with (root / "big.log").open("wb") as f:
        f.write(head)
        f.seek(BIG - len(tail))
        f.write(tail)
    with (root / "hole.bin").open("wb") as f:
        f.truncate(BIG)
    return root


# ---- a 1.5 GB sparse file --------------------------------------------------------------------

TAIL = HEAD_LINES + 1  # the line number of "tail line 0" (after the hole's NUL bytes)


@pytest.mark.parametrize(
    ("path", "view_range", "expected"),
    [
        pytest.param(
            "big.log",
            None,
            ["     1\thead line 0\n", "[showing the first 256 KiB of 1.5 GB (lines 1-"],
            id="view-shows-a-prefix",
        ),
        pytest.param(
            "big.log",
            [TAIL + 50, TAIL + 52],
            [f" {TAIL + 50}\ttail line 50\n {TAIL + 51}\ttail line 51\n {TAIL + 52}\ttail line 52"],
            id="view_range-near-the-end",
        ),
        pytest.param(
            "big.log", [TAIL + 98, -1], [f" {TAIL + 99}\ttail line 99"], id="view_range-to-the-end"
        ),
        pytest.param("big.log", [TAIL, TAIL], ["binary"], id="view_range-of-the-hole"),
        pytest.param("big.log", [TAIL + 500, -1], [f"has {TAIL + 99} lines"], id="past-the-end"),
        pytest.param("hole.bin", None, ["binary"], id="view-of-a-hole"),
        pytest.param("hole.bin", [2, 3], ["has 1 lines"], id="view_range-past-a-hole"),
    ],
)
def test_a_sparse_gigabyte_file_costs_a_few_megabytes(
    big_files: Path, path: str, view_range: list[int] | None, expected: list[str]
) -> None:
    params: dict[str, Any] = {"command": "view", "path": path}
    if view_range is not None:
        params["view_range"] = view_range
    result, growth = measured(lambda: run_editor(big_files, params))
    shown = str(result)
    assert all(part in shown for part in expected), shown[-300:]
    assert len(shown) <= DEFAULT_RESULT_CAP
    assert_bounded(growth)


@pytest.mark.parametrize(
    "params",
    [
        {"command": "str_replace", "path": "big.log", "old_str": "head line 1\n", "new_str": ""},
        {"command": "insert", "path": "big.log", "insert_line": 1, "insert_text": "x"},
    ],
    ids=["str_replace", "insert"],
)
def test_edits_of_a_file_over_the_cap_are_refused_unread(
    big_files: Path, params: dict[str, Any]
) -> None:
    before = (big_files / "big.log").stat()
    result, growth = measured(lambda: run_editor(big_files, params))
    assert isinstance(result, ToolInputError)
    assert "1.5 GB, over the 256 KiB the editor edits; use bash" in str(result)
    assert_bounded(growth)
    after = (big_files / "big.log").stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


# ---- files that are big, but not sparse ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "params", "expected"),
    [
        pytest.param(
            b"x = 1\n" * 60_000,
            {"command": "str_replace", "old_str": "x = 1\n", "new_str": ""},
            "360 kB, over the 256 KiB",
            id="str_replace",
        ),
        pytest.param(
            b"x = 1\n" * 60_000,
            {"command": "view", "view_range": [10, -1]},
            "[the range was cut at 256 KiB: showing lines 10-43699; ask for a range starting at "
            "43700",
            id="view_range-cut",
        ),
        pytest.param(
            b"x" * 1_000_000,
            {"command": "view"},
            "[line 1 is longer than 256 KiB; only its beginning is shown",
            id="one-long-line",
        ),
        pytest.param(
            b"\n" * READ_CAP,  # the numbered view would be 8 times the file: rendered cut instead
            {"command": "view"},
            "characters (",
            id="many-empty-lines",
        ),
        pytest.param(
            b"a" + "é".encode() * (READ_CAP // 2) + b"tail\n",  # the cap splits a character
            {"command": "view"},
            "[line 1 is longer than 256 KiB",
            id="multibyte-at-the-cut",
        ),
    ],
)
def test_big_text_files_are_read_up_to_the_cap(
    workspace: Path, content: bytes, params: dict[str, Any], expected: str
) -> None:
    (workspace / "f.txt").write_bytes(content)
    result, growth = measured(lambda: run_editor(workspace, {**params, "path": "f.txt"}))
    assert expected in str(result)
    assert "\ufffd" not in str(result)
    assert len(str(result)) <= DEFAULT_RESULT_CAP
    assert_bounded(growth)
    assert (workspace / "f.txt").read_bytes() == content


# ---- special files, binaries, confinement ----------------------------------------------------


@contextlib.contextmanager
def unjammed(fifo: Path, after_s: float = 10.0) -> Iterator[threading.Event]:
    """Should a call block on the FIFO, open its other end after `after_s`: the test then fails
    (the event is set) instead of hanging."""
    fired, finished = threading.Event(), threading.Event()

    def unjam() -> None:
        if not finished.wait(after_s):
            fired.set()
            os.close(os.open(fifo, os.O_RDWR | os.O_NONBLOCK))

    thread = threading.Thread(target=unjam, daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        finished.set()
        thread.join()


FIFO_CALLS = [
    {"command": "view"},
    {"command": "view", "view_range": [1, 2]},
    {"command": "str_replace", "old_str": "a", "new_str": "b"},
    {"command": "insert", "insert_line": 0, "insert_text": "x"},
    {"command": "create", "file_text": "x"},
]


@pytest.mark.parametrize("params", FIFO_CALLS, ids=lambda p: "-".join(map(str, p)))
async def test_a_fifo_is_refused_without_blocking(
    tools: WorkspaceTools, workspace: Path, params: dict[str, Any]
) -> None:
    os.mkfifo(workspace / "pipe")
    with unjammed(workspace / "pipe") as fired:
        result = await tools.call(EDITOR, {**params, "path": "pipe"})
    assert not fired.is_set(), "the call blocked on the FIFO"
    assert result.is_error and "pipe is a FIFO (named pipe), not a regular file" in result.content


async def test_a_socket_is_refused(
    tools: WorkspaceTools, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)  # a short relative name: socket paths are limited to 108 bytes
    with socket.socket(socket.AF_UNIX) as server:
        server.bind("sock")
        result = await tools.call(EDITOR, {"command": "view", "path": "sock"})
    assert result.is_error and "sock is a socket, not a regular file" in result.content


@pytest.mark.parametrize(
    ("link", "command"),
    [
        ("zero", {"command": "view"}),
        ("zero", {"command": "view", "view_range": [1, 1]}),
        ("zero", {"command": "str_replace", "old_str": "a", "new_str": "b"}),
        ("tty", {"command": "view"}),
    ],
)
async def test_a_device_through_a_symlink_is_refused(
    tools: WorkspaceTools, workspace: Path, link: str, command: dict[str, Any]
) -> None:
    (workspace / link).symlink_to(f"/dev/{link}")
    result = await tools.call(EDITOR, {**command, "path": link})
    assert result.is_error and "leads outside the workspace" in result.content


def test_below_confinement_a_device_is_still_refused_by_its_kind() -> None:
    """Should confinement ever let /dev/zero through, fstat would still stop the read."""
    with (
        pytest.raises(ToolInputError, match="is a device, not a regular file"),
        opened(Path("/dev/zero"), "zero"),
    ):
        pass


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary (it contains NUL", id="nul"),
        pytest.param(bytes(range(0x80, 0x100)) * 4, "it looks binary", id="invalid-utf8"),
        pytest.param(b"caf\xe9\nna\xefve\n", "\ufffd", id="latin1-accents-tolerated"),
    ],
)
async def test_binary_content_is_refused_with_a_short_error(
    tools: WorkspaceTools, workspace: Path, content: bytes, expected: str
) -> None:
    (workspace / "f").write_bytes(content)
    result = await tools.call(EDITOR, {"command": "view", "path": "f"})
    assert expected in result.content and len(result.content) < 300
    assert result.is_error == (expected != "\ufffd")


async def test_a_file_with_invalid_utf8_is_viewable_but_not_editable(
    tools: WorkspaceTools, workspace: Path
) -> None:
    (workspace / "f").write_bytes(b"caf\xe9\n")
    view = await tools.call(EDITOR, {"command": "view", "path": "f"})
    edit = await tools.call(
        EDITOR, {"command": "str_replace", "path": "f", "old_str": "caf", "new_str": "bar"}
    )
    assert view.content == "     1\tcaf\ufffd\n\n[1 invalid UTF-8 sequences are shown as \ufffd]"
    assert edit.is_error and "not valid UTF-8" in edit.content
    assert (workspace / "f").read_bytes() == b"caf\xe9\n"


# ---- directories -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace whose `many/` holds 100,000 empty files."""
    root = tmp_path_factory.mktemp("crowded") / "repo"
    (root / "many").mkdir(parents=True)
    (root / "README.md").write_text("# crowded\n")
    for n in range(100_000):
        os.close(os.open(root / "many" / f"f{n:06}", os.O_CREAT | os.O_WRONLY, 0o644))
    return root


@pytest.mark.parametrize("path", [".", "many"])
def test_a_directory_of_100000_entries_is_listed_within_the_bound(crowded: Path, path: str) -> None:
    result, growth = measured(lambda: run_editor(crowded, {"command": "view", "path": path}))
    lines = str(result).splitlines()
    assert lines[0].startswith("Files and directories up to 2 levels deep in")
    entries = [line for line in lines[1:] if not line.startswith("[")]
    assert LISTING_LIMIT - 2 <= len(entries) <= LISTING_LIMIT
    assert entries == sorted(entries)
    assert all(e.startswith("many/f") or e in ("README.md", "many/") for e in entries)
    assert f"[... stopped at {LISTING_LIMIT} entries ...]" in lines
    assert any(line.startswith("[... stopped after reading") for line in lines)
    assert len(str(result)) <= DEFAULT_RESULT_CAP
    assert_bounded(growth)


async def test_names_that_are_not_utf8_are_listed_and_expanded(
    tools: WorkspaceTools, workspace: Path
) -> None:
    raw = os.fsencode(workspace) + b"/d\xff"
    os.mkdir(raw)
    os.close(os.open(raw + b"/inner.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    listing = await tools.call(EDITOR, {"command": "view", "path": "."})
    assert listing.content.splitlines()[1:] == ["d\ufffd/", "d\ufffd/inner.txt"]
