"""The built-in agent loop against the fake Messages API, with a real sandbox and real git."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from honk_app.agent.base import AgentTask, Limits, Progress
from honk_app.agent.loop import BuiltinBackend, BuiltinSession, anthropic_client_factory
from honk_app.agent.pricing import cost_usd
from honk_app.models import Usage
from honk_app.workspace.sandbox import Sandbox
from tests.fakes.anthropic import (
    DEFAULT_API_KEY,
    FakeAnthropic,
    Reply,
    Script,
    error,
    text,
    tool_use,
)

EDITOR = "str_replace_based_edit_tool"
MODEL = "claude-sonnet-4-5"
SYSTEM = "You are Honk. Work only in the workspace and run the tests. " * 20


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (root / "test_calc.sh").write_text(
        'python3 -c "from calc import add; assert add(2, 3) == 5, add(2, 3)" && echo PASSED\n'
    )
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(Script([]), min_cacheable_tokens=100) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeAnthropic) -> FakeAnthropic:
    server.reset(Script([]))
    return server


_opened: list[BuiltinSession] = []


@pytest.fixture(autouse=True)
async def close_sessions() -> AsyncIterator[None]:
    """Every session a test opens is closed while its event loop still runs."""
    yield
    while _opened:
        await _opened.pop().close()


class Recorder:
    def __init__(self) -> None:
        self.audit: list[tuple[str, dict[str, Any]]] = []
        self.progress: list[Progress] = []

    async def on_audit(self, kind: str, record: dict[str, Any]) -> None:
        self.audit.append((kind, record))

    async def on_progress(self, progress: Progress) -> None:
        self.progress.append(progress)


def open_session(
    fake: FakeAnthropic,
    workspace: Path,
    replies: list[Reply | Any],
    *,
    limits: Limits | None = None,
    recorder: Recorder | None = None,
    api_key: str = DEFAULT_API_KEY,
    result_cap: int = 30_000,
) -> BuiltinSession:
    fake.responder = Script(replies)
    backend = BuiltinBackend(
        anthropic_client_factory(api_key, base_url=fake.url, max_retries=0),
        lambda path: Sandbox(path),
        result_cap=result_cap,
    )
    task = AgentTask(
        workspace=workspace,
        system_prompt=SYSTEM,
        task_prompt="Fix add() in calc.py so that test_calc.sh passes.",
        model=MODEL,
        limits=limits or Limits(),
    )
    recorder = recorder or Recorder()
    session = backend.open(task, progress=recorder.on_progress, audit=recorder.on_audit)
    _opened.append(session)
    return session


def tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    content = request["messages"][-1]["content"]
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def count_breakpoints(value: Any) -> int:
    if isinstance(value, dict):
        return ("cache_control" in value) + sum(count_breakpoints(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_breakpoints(v) for v in value)
    return 0


def processes_with(token: str) -> list[int]:
    """Pids whose command line contains `token` (the sandbox may hide pids in a namespace)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if token in cmdline:
                found.append(int(entry.name))
    return found


def gone_soon(token: str, within_s: float = 5.0) -> bool:
    """Killed process trees are reaped asynchronously by the kernel: allow a moment."""
    deadline = time.monotonic() + within_s
    while processes_with(token):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


FIX_SCRIPT: list[Reply] = [
    tool_use(EDITOR, {"command": "view", "path": "calc.py"}, text="Let me read the code."),
    tool_use(
        EDITOR,
        {"command": "str_replace", "path": "calc.py", "old_str": "a - b", "new_str": "a + b"},
    ),
    tool_use("bash", {"command": "sh test_calc.sh"}),
    text("Fixed add() in calc.py (it subtracted). Verified: sh test_calc.sh prints PASSED."),
]


async def test_a_session_views_edits_runs_the_tests_and_summarises(
    fake: FakeAnthropic, workspace: Path
) -> None:
    recorder = Recorder()
    session = open_session(fake, workspace, FIX_SCRIPT, recorder=recorder)
    outcome = await session.start()

    assert outcome.stop == "done" and outcome.error is None
    assert outcome.summary.startswith("Fixed add() in calc.py")
    assert outcome.turns == 4
    assert (workspace / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    viewed, edited, tested = (tool_results(r)[0]["content"] for r in fake.requests[1:4])
    assert viewed == "     1\tdef add(a, b):\n     2\t    return a - b"
    assert "Edited calc.py" in edited
    assert tested == "PASSED\n[exit code 0]"
    assert [kind for kind, _ in recorder.audit] == [
        "model_turn",
        "tool_call",
        "model_turn",
        "tool_call",
        "model_turn",
        "tool_call",
        "model_turn",
    ]
    assert recorder.audit[1][1]["name"] == EDITOR and recorder.audit[1][1]["result"] == viewed
    assert [p.tool for p in recorder.progress] == [None, EDITOR, None, EDITOR, None, "bash", None]

    expected = Usage()
    for usage in fake.usages:
        expected.add(Usage(**{k: usage[k] for k in vars(Usage())}))
    assert outcome.usage == expected
    turn_costs = [cost_usd(MODEL, Usage(**{k: u[k] for k in vars(Usage())})) for u in fake.usages]
    assert outcome.cost_usd == pytest.approx(sum(turn_costs))


async def test_breakpoints_stay_within_four_and_cache_reads_grow(
    fake: FakeAnthropic, workspace: Path
) -> None:
    replies = [tool_use("bash", {"command": f"echo step {n}; seq 1 40"}) for n in range(8)]
    session = open_session(fake, workspace, [*replies, text("done")])
    outcome = await session.start()

    assert outcome.stop == "done" and outcome.turns == 9
    for request in fake.requests:
        assert count_breakpoints(request) <= 4
        assert "cache_control" in request["tools"][-1] and "cache_control" in request["system"][0]
    reads = [u["cache_read_input_tokens"] for u in fake.usages]
    assert reads[0] == 0
    assert all(later > earlier for earlier, later in itertools.pairwise(reads[1:]))
    sent = outcome.usage.total_input
    assert outcome.usage.cache_read_input_tokens / sent > 0.6


async def test_the_api_key_never_reaches_a_command(
    fake: FakeAnthropic, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", DEFAULT_API_KEY)
    session = open_session(fake, workspace, [tool_use("bash", {"command": "env"})])
    outcome = await session.start()
    env_output = tool_results(fake.requests[1])[0]["content"]
    assert outcome.stop == "done" and "PATH=" in env_output
    assert DEFAULT_API_KEY not in env_output


async def test_an_editor_escape_is_refused_and_the_model_told(
    fake: FakeAnthropic, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched\n")
    (workspace / "link.txt").symlink_to(outside)
    attempts = [
        tool_use(EDITOR, {"command": "create", "path": "../outside.txt", "file_text": "x"}),
        tool_use(EDITOR, {"command": "create", "path": str(outside), "file_text": "x"}),
        tool_use(
            EDITOR, {"command": "str_replace", "path": "link.txt", "old_str": "un", "new_str": ""}
        ),
    ]
    outcome = await open_session(fake, workspace, attempts).start()
    assert outcome.stop == "done"
    for request in fake.requests[1:4]:
        (result,) = tool_results(request)
        assert result["is_error"] is True
    assert outside.read_text() == "untouched\n"


async def test_a_long_tool_result_reaches_the_model_cut_with_a_note(
    fake: FakeAnthropic, workspace: Path
) -> None:
    session = open_session(
        fake, workspace, [tool_use("bash", {"command": "seq 1 20000"})], result_cap=3_000
    )
    await session.start()
    content = tool_results(fake.requests[1])[0]["content"]
    assert len(content) <= 3_000
    assert "lines) cut from the middle" in content and content.endswith("20000\n[exit code 0]")


# ---- limits ----------------------------------------------------------------------------------


async def test_max_turns_stops_the_session(fake: FakeAnthropic, workspace: Path) -> None:
    busy = [tool_use("bash", {"command": "true"}) for _ in range(10)]
    outcome = await open_session(fake, workspace, busy, limits=Limits(max_turns=3)).start()
    assert outcome.stop == "max_turns" and outcome.turns == 3
    assert outcome.error is not None and "3 turns" in outcome.error
    assert len(fake.requests) == 3


@pytest.mark.parametrize(("budget", "turns"), [(2.0, 8), (0.6, 2), (0.2, 0)])
async def test_a_turn_that_would_not_fit_in_the_budget_is_never_sent(
    budget: float, turns: int, fake: FakeAnthropic, workspace: Path
) -> None:
    """Each turn writes its whole max_tokens (16,384 output tokens, $0.25 on Sonnet), so each
    reserves a little more than $0.25: the run stops as soon as what is left cannot cover one."""

    def turn(request: dict[str, Any]) -> Reply:
        reply = tool_use("bash", {"command": "true"})
        return Reply(reply.content, reply.stop_reason, output_tokens=request["max_tokens"])

    session = open_session(fake, workspace, [turn] * 10, limits=Limits(max_cost_usd=budget))
    outcome = await session.start()
    assert outcome.stop == "max_cost"
    assert outcome.turns == turns and len(fake.requests) == turns
    assert outcome.cost_usd <= budget
    assert outcome.error is not None and f"${budget:.2f} budget" in outcome.error
    assert session.ledger.snapshot().reserved_usd == 0  # nothing left open


@pytest.mark.parametrize(
    ("reply", "charged"),
    [
        (error(400, "invalid_request_error", "bad"), False),  # refused: the API charges nothing
        (Reply(status=200, error={"type": "overloaded_error", "message": "gone"}), True),
    ],
)
async def test_a_turn_that_fails_costs_nothing_before_its_stream_and_its_reservation_within(
    reply: Reply, charged: bool, fake: FakeAnthropic, workspace: Path
) -> None:
    session = open_session(fake, workspace, [reply])
    outcome = await session.start()
    assert outcome.stop == "error" and outcome.turns == 0
    output_worst = session.backend.max_tokens * 15 / 1_000_000  # Sonnet's output price
    assert (outcome.cost_usd > output_worst) is charged
    assert outcome.cost_usd == session.ledger.spent_usd
    assert session.ledger.snapshot().reserved_usd == 0


async def test_the_timeout_stops_the_session_and_kills_the_command(
    fake: FakeAnthropic, workspace: Path
) -> None:
    hang = tool_use("bash", {"command": "touch started; exec sleep 987.125"})
    session = open_session(fake, workspace, [hang], limits=Limits(timeout_s=1.5))
    outcome = await session.start()
    assert outcome.stop == "timeout" and outcome.duration_s >= 1.0
    assert outcome.error == "The agent was stopped at its time limit of 1.5 seconds."
    assert (workspace / "started").exists() and gone_soon("987.125")
    again = await session.follow_up("Please continue.")
    assert again.stop == "timeout" and len(fake.requests) == 1


async def test_cancelling_kills_the_running_command_and_propagates(
    fake: FakeAnthropic, workspace: Path
) -> None:
    hang = tool_use("bash", {"command": "touch started; exec sleep 987.375"})
    session = open_session(fake, workspace, [hang])
    running = asyncio.create_task(session.start())
    while not (workspace / "started").exists():  # the command is running, not still starting
        await asyncio.sleep(0.02)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert gone_soon("987.375")


# ---- API errors ------------------------------------------------------------------------------


async def test_an_overloaded_api_stops_with_a_readable_error(
    fake: FakeAnthropic, workspace: Path
) -> None:
    outcome = await open_session(
        fake, workspace, [error(529, "overloaded_error", "Overloaded")] * 3
    ).start()
    assert outcome.stop == "error" and outcome.turns == 0
    assert len(fake.requests) == 3, "asked three times in all before giving up"
    assert outcome.error == (
        "The Anthropic API answered 529 (overloaded_error): Overloaded. "
        "The API is overloaded; retry later."
    )


async def test_a_500_is_reported_after_the_retries_give_up(
    fake: FakeAnthropic, workspace: Path
) -> None:
    outcome = await open_session(
        fake, workspace, [error(500, "api_error", "Internal server error")] * 3
    ).start()
    assert outcome.stop == "error"
    assert outcome.error is not None and outcome.error.startswith("The Anthropic API answered 500")


async def test_a_wrong_key_gives_a_401_error_without_the_key(
    fake: FakeAnthropic, workspace: Path
) -> None:
    wrong = "sk-ant-wrong-key-abcdefghijklmnopqrstuvwxyz"
    outcome = await open_session(fake, workspace, [], api_key=wrong).start()
    assert outcome.stop == "error"
    assert outcome.error is not None and "401" in outcome.error and "API key" in outcome.error
    assert wrong not in outcome.error


async def test_a_secret_in_an_api_error_is_redacted(fake: FakeAnthropic, workspace: Path) -> None:
    leaky = error(400, "invalid_request_error", f"key {DEFAULT_API_KEY} is malformed")
    outcome = await open_session(fake, workspace, [leaky]).start()
    assert outcome.error is not None and DEFAULT_API_KEY not in outcome.error
    assert "[REDACTED]" in outcome.error


# ---- conversation ----------------------------------------------------------------------------


async def test_follow_up_continues_the_conversation_with_cumulative_counts(
    fake: FakeAnthropic, workspace: Path
) -> None:
    replies = [
        tool_use("bash", {"command": "sh test_calc.sh"}),
        text("I could not fix it."),
        tool_use(
            EDITOR, {"command": "str_replace", "path": "calc.py", "old_str": "-", "new_str": "+"}
        ),
        text("Fixed the sign; the tests pass."),
    ]
    session = open_session(fake, workspace, replies)
    first = await session.start()
    second = await session.follow_up("The tests failed: AssertionError: -1")

    assert first.stop == "done" and first.turns == 2
    assert second.stop == "done" and second.turns == 4
    assert second.summary == "Fixed the sign; the tests pass."
    assert second.usage.output_tokens > first.usage.output_tokens
    follow = fake.requests[2]["messages"]
    assert len(follow) == 5 and follow[-1]["role"] == "user"
    assert follow[-1]["content"][0]["text"] == "The tests failed: AssertionError: -1"
    assert follow[3]["content"][0]["text"] == "I could not fix it."


async def test_a_tool_call_cut_off_at_max_tokens_is_not_run(
    fake: FakeAnthropic, workspace: Path
) -> None:
    cut = tool_use("bash", {"command": "touch ran.txt"})
    cut.stop_reason = "max_tokens"
    outcome = await open_session(fake, workspace, [cut]).start()
    (result,) = tool_results(fake.requests[1])
    assert outcome.stop == "done" and result["is_error"] is True
    assert "cut off" in result["content"] and not (workspace / "ran.txt").exists()


async def test_a_model_answer_the_sdk_cannot_read_ends_the_turn_not_the_process(
    fake: FakeAnthropic, workspace: Path
) -> None:
    """A lone surrogate in streamed tool JSON: the SDK raises ValueError while reading it."""
    broken = [tool_use(EDITOR, {"command": "view", "path": "\udcff"})]
    outcome = await open_session(fake, workspace, broken).start()
    assert outcome.stop == "error"
    assert outcome.error == "The model's answer could not be read, so the run stopped."
    assert outcome.cost_usd > 0, "the turn may have been billed: its reservation is charged"


async def test_an_overloaded_api_is_asked_again_and_only_the_answer_is_paid(
    fake: FakeAnthropic, workspace: Path
) -> None:
    overloaded = error(529, "overloaded_error", "Overloaded")
    session = open_session(fake, workspace, [overloaded, text("Looked; nothing to change.")])
    outcome = await session.start()
    assert outcome.stop == "done" and outcome.turns == 1
    assert len(fake.requests) == 2  # the same turn, sent again
    assert outcome.cost_usd == pytest.approx(cost_usd(MODEL, outcome.usage))  # 529: unbilled


async def test_a_request_the_api_refuses_is_not_sent_again(
    fake: FakeAnthropic, workspace: Path
) -> None:
    refused = error(400, "invalid_request_error", "messages: bad")
    outcome = await open_session(fake, workspace, [refused]).start()
    assert outcome.stop == "error" and len(fake.requests) == 1
