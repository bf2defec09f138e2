"""Run a repository's setup and test commands in the sandbox, and collect what failed.

The test command gets `HONK_JUNIT_XML`, a path in the sandbox's temp dir (never the workspace, so
the report cannot land in the diff), and `PYTEST_ADDOPTS` asking pytest to write it there with file
and line attributes: a pytest suite needs no configuration for its failures to be parsed. The
report is written by untrusted code, so it is read without following symlinks, in a worker thread,
as a stream with a byte cap and a time limit.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from honk_app.models import CommandResult
from honk_app.verify.junit import (
    CHUNK_BYTES,
    MAX_XML_BYTES,
    TOO_LARGE,
    JUnitReader,
    JUnitReport,
)
from honk_app.verify.repo_files import RepoFiles
from honk_app.verify.results import StepResult, ValidationResult
from honk_app.workspace.sandbox import Sandbox

TAIL_LINES = 60
TAIL_CHARS = 6_000
PARSE_TIME_S = 5.0  # for the JUnit report, in a worker thread; a 10 MB report takes < 2 s


def output_tail(text: str, *, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last `lines` lines of `text`, at most `chars` characters."""
    tail = "\n".join(text.rstrip("\n").splitlines()[-lines:])
    return tail if len(tail) <= chars else "…" + tail[-chars:]


def step_result(result: CommandResult) -> StepResult:
    return StepResult(
        command=result.command,
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        timed_out=result.timed_out,
        output_tail=output_tail(result.output),
    )


async def validate(
    sandbox: Sandbox,
    *,
    setup: str | None,
    test: str | None,
    setup_network: bool,
    timeout_s: float,
) -> ValidationResult:
    """Run `setup` (with network only if allowed), then `test`, within `timeout_s` in total."""
    if not test or not test.strip():
        return ValidationResult(ran=False, passed=False)
    deadline = time.monotonic() + timeout_s
    setup_step: StepResult | None = None
    if setup and setup.strip():
        setup_step = step_result(
            await sandbox.run(setup, timeout_s=timeout_s, network=setup_network)
        )
        if not setup_step.ok:
            return ValidationResult(ran=True, passed=False, setup=setup_step)

    remaining = deadline - time.monotonic()
    if remaining <= 1:
        note = "No time was left for the tests after the setup command."
        skipped = StepResult(test, -1, 0.0, True, note)
        return ValidationResult(ran=True, passed=False, setup=setup_step, test=skipped)

    report_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, "", "junit-", sandbox.temp_dir))
    report = report_dir / "report.xml"
    env = {
        "HONK_JUNIT_XML": str(report),
        "PYTEST_ADDOPTS": (
            f"--junitxml={shlex.quote(str(report))} -o junit_family=xunit1 -p no:cacheprovider"
        ),
    }
    test_step = step_result(await sandbox.run(test, timeout_s=remaining, network=False, env=env))
    parsed = await asyncio.to_thread(_parse_report, report, sandbox.workspace)
    return ValidationResult(
        ran=True,
        passed=test_step.ok,
        setup=setup_step,
        test=test_step,
        failures=parsed.failures if parsed else (),
        junit_note=parsed.note if parsed else None,
    )


def _parse_report(
    report: Path,
    workspace: Path,
    *,
    clock: Callable[[], float] = time.monotonic,
    time_limit_s: float = PARSE_TIME_S,
) -> JUnitReport | None:
    handle = open_untrusted(report)
    if handle is None:
        return None
    reader = JUnitReader(repo_root=str(workspace), known_files=RepoFiles(workspace))
    with handle:
        return read_report(handle, reader, clock=clock, time_limit_s=time_limit_s)


def read_report(
    handle: BinaryIO,
    reader: JUnitReader,
    *,
    clock: Callable[[], float] = time.monotonic,
    time_limit_s: float = PARSE_TIME_S,
) -> JUnitReport:
    """Feed `handle` to `reader` in chunks until it ends, `MAX_XML_BYTES` were read, or
    `time_limit_s` passed (checked between chunks, each a bounded amount of work)."""
    deadline = clock() + time_limit_s
    read = 0
    while not reader.done:
        chunk = handle.read(min(CHUNK_BYTES, MAX_XML_BYTES + 1 - read))
        if not chunk:
            return reader.close()
        read += len(chunk)
        if read > MAX_XML_BYTES:
            reader.feed(chunk[: len(chunk) - (read - MAX_XML_BYTES)])
            return reader.cut_short(TOO_LARGE)
        reader.feed(chunk)
        if clock() > deadline:
            return reader.cut_short(
                f"Reading the JUnit report took longer than {time_limit_s:g} s; "
                "only its beginning was read."
            )
    return reader.close()


def open_untrusted(path: Path) -> BinaryIO | None:
    """A regular file opened for reading, refusing symlinks (which could point at Honk's
    secrets outside the sandbox) and anything that is not a regular file (a FIFO would block)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def read_untrusted(path: Path, limit: int) -> bytes | None:
    """Up to `limit` bytes of a regular file (see `open_untrusted`); None when there is none."""
    handle = open_untrusted(path)
    if handle is None:
        return None
    with handle:
        return handle.read(limit)
