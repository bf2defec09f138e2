"""validate.py runs a real pytest suite in a real sandbox and reads its JUnit report."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from honk_app.models import CommandResult
from honk_app.verify.junit import CHUNK_BYTES, MAX_XML_BYTES, TOO_LARGE, FailedTest, JUnitReader
from honk_app.verify.results import StepResult, ValidationResult
from honk_app.verify.validate import (
    output_tail,
    read_report,
    read_untrusted,
    validate,
)
from honk_app.workspace.sandbox import Sandbox

PYTEST = f"{sys.executable} -m pytest -q tests"
CALC = "def add(a, b):\n    return a + b\n"
TESTS = """from calc import add


def test_add():
    assert add(2, 2) == 4


def test_add_negative():
    assert add(-1, -1) == -2
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "calc.py").write_text(CALC)
    (repo / "tests" / "test_calc.py").write_text(TESTS)
    (repo / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    return repo


@pytest.fixture
async def sandbox(workspace: Path) -> AsyncIterator[Sandbox]:
    # bubblewrap where it works, as in production; the sandbox empties /tmp, so show it this
    # interpreter's environment (a checkout under /tmp keeps its .venv there)
    async with Sandbox(workspace, readonly_paths=[Path(sys.prefix), Path(sys.base_prefix)]) as box:
        yield box


def files_in(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


async def test_a_failing_suite_reports_the_failing_test_and_line(
    workspace: Path, sandbox: Sandbox
) -> None:
    (workspace / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    before = files_in(workspace)

    result = await validate(sandbox, setup=None, test=PYTEST, setup_network=False, timeout_s=60)

    assert result.ran and not result.passed
    assert result.test is not None and result.test.exit_code == 1
    assert "2 failed" in result.test.output_tail
    assert [(f.name, f.file, f.line) for f in result.failures] == [
        ("tests/test_calc.py::test_add", "tests/test_calc.py", 5),
        ("tests/test_calc.py::test_add_negative", "tests/test_calc.py", 9),
    ]
    assert result.failures[0].message == "assert 0 == 4"
    assert files_in(workspace) == before, "validation must leave nothing in the diff"


async def test_a_passing_suite_passes(sandbox: Sandbox) -> None:
    result = await validate(sandbox, setup=None, test=PYTEST, setup_network=False, timeout_s=60)
    assert result.ran and result.passed and result.failures == ()
    assert result.test is not None and "2 passed" in result.test.output_tail


async def test_without_a_test_command_nothing_runs(workspace: Path, sandbox: Sandbox) -> None:
    result = await validate(
        sandbox, setup="touch setup-ran", test=None, setup_network=False, timeout_s=60
    )
    assert result == ValidationResult(ran=False, passed=False)
    assert not (workspace / "setup-ran").exists()


async def test_a_failing_setup_stops_before_the_tests(workspace: Path, sandbox: Sandbox) -> None:
    result = await validate(
        sandbox,
        setup="echo installing; exit 4",
        test="touch tests-ran",
        setup_network=False,
        timeout_s=60,
    )
    assert result.ran and not result.passed and result.test is None
    assert result.setup is not None and result.setup.exit_code == 4
    assert result.setup.output_tail == "installing"
    assert not (workspace / "tests-ran").exists()


async def test_the_test_command_gets_the_report_path_outside_the_workspace(
    workspace: Path, sandbox: Sandbox
) -> None:
    result = await validate(
        sandbox, setup=None, test='echo "$HONK_JUNIT_XML"', setup_network=False, timeout_s=60
    )
    assert result.passed and result.test is not None
    report = Path(result.test.output_tail.strip())
    assert report.name == "report.xml"
    assert report.is_relative_to(sandbox.temp_dir) and not report.is_relative_to(workspace)


async def test_a_symlinked_report_is_not_followed(tmp_path: Path, sandbox: Sandbox) -> None:
    secret = tmp_path / "honk-secret.xml"
    secret.write_text(
        '<testsuite><testcase name="t"><failure message="PRIVATE-KEY-CONTENT"/></testcase>'
        "</testsuite>"
    )
    command = f'ln -s {secret} "$HONK_JUNIT_XML"; exit 1'
    result = await validate(sandbox, setup=None, test=command, setup_network=False, timeout_s=60)
    assert not result.passed and result.failures == ()
    assert read_untrusted(secret, 100) is not None  # the file itself is readable: the link is not


async def test_a_slow_suite_times_out(sandbox: Sandbox) -> None:
    result = await validate(
        sandbox, setup=None, test="echo slow; sleep 60", setup_network=False, timeout_s=1.5
    )
    assert result.ran and not result.passed
    assert result.test is not None and result.test.timed_out and result.test.exit_code == -1


class RecordingSandbox(Sandbox):
    """A real sandbox that also notes which commands asked for the network."""

    calls: list[tuple[str, bool]]

    async def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        network: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        self.calls.append((command, network))
        return await super().run(command, timeout_s=timeout_s, network=network, env=env)


@pytest.mark.parametrize("allowed", [True, False])
async def test_only_setup_may_use_the_network_and_only_when_allowed(
    workspace: Path, allowed: bool
) -> None:
    async with RecordingSandbox(workspace, mode="none") as box:
        box.calls = []
        await validate(box, setup="true", test="true", setup_network=allowed, timeout_s=30)
    assert box.calls == [("true", allowed), ("true", False)]


def test_results_survive_a_json_round_trip() -> None:
    result = ValidationResult(
        ran=True,
        passed=False,
        setup=StepResult("pip install .", 0, 3.2, False, "ok"),
        test=StepResult("pytest", 1, 9.5, False, "1 failed"),
        failures=(FailedTest("t::x", "t.py", 3, "boom", "trace"),),
        junit_note=None,
    )
    assert ValidationResult.from_json(result.to_json()) == result


def test_output_tail_keeps_the_last_lines_within_a_character_budget() -> None:
    text = "\n".join(f"line {i}" for i in range(200)) + "\n"
    assert output_tail(text).splitlines() == [f"line {i}" for i in range(140, 200)]
    assert output_tail("y" * 10_000, chars=100) == "…" + "y" * 100


def _report_stream(failures: int) -> io.BytesIO:
    padding = f"<!-- {'p' * CHUNK_BYTES} -->"  # so each failure ends in its own chunk
    cases = "".join(
        f'<testcase name="t{i}"><failure message="m{i}"/></testcase>{padding}'
        for i in range(failures)
    )
    return io.BytesIO(f"<testsuite>{cases}</testsuite>".encode())


def test_reading_stops_at_the_time_limit_between_chunks() -> None:
    ticks = iter(range(0, 1_000, 3))  # every look at the clock is 3 s later
    stream = _report_stream(4)
    report = read_report(stream, JUnitReader(), clock=lambda: next(ticks), time_limit_s=5)
    assert stream.tell() == 2 * CHUNK_BYTES  # two chunks read, the rest never touched
    assert report.note == (
        "Reading the JUnit report took longer than 5 s; only its beginning was read."
    )
    assert [f.message for f in report.failures] == ["m0", "m1"]  # what those chunks held


def test_reading_stops_at_the_byte_cap() -> None:
    stream = io.BytesIO(b"<testsuite>" + b"<testcase/>" * (MAX_XML_BYTES // 11 + 100))
    report = read_report(stream, JUnitReader())
    assert stream.tell() == MAX_XML_BYTES + 1 and report.note == TOO_LARGE


def test_a_report_that_fits_is_read_to_its_end() -> None:
    report = read_report(_report_stream(3), JUnitReader())
    assert [f.message for f in report.failures] == ["m0", "m1", "m2"] and report.note is None


def test_a_fifo_in_place_of_the_report_is_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "report.xml"
    os.mkfifo(fifo)
    assert read_untrusted(fifo, 100) is None
