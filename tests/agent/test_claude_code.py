"""The Claude Code backend: the real CLI bundled with claude_agent_sdk, talking through Honk's
proxy to the scripted fake Anthropic API on loopback (its pure parts are tested in
test_agent_claude_code_messages.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from honk_app.agent.base import AgentTask, AgentUnavailable, Limits, Progress
from honk_app.agent.claude_code import (
    ClaudeCodeBackend,
    ClaudeCodeSession,
    open_claude_code_session,
    shared_proxy,
)
from honk_app.agent.claude_code_launch import (
    NOT_INSTALLED,
    ClaudeCodeSettings,
    ProcInfo,
    alive,
    bwrap_problem,
    proc_table,
    process_tree,
)
from honk_app.agent.claude_code_messages import AUDIT_CAP
from honk_app.agent.proxy import AnthropicProxy
from honk_app.models import AgentOutcome
from honk_app.models import Limits as SandboxLimits
from honk_app.repo_config import RepoConfig
from honk_app.workspace.limits import DEFAULT_LIMITS
from tests.agent.test_claude_code_launch import PLANTED, REAL_KEY, require_bwrap
from tests.fakes import anthropic as fake_api
from tests.needs import require_claude_code_sdk as require_sdk

# ---- the real CLI ------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "README.md").write_text("# Demo\n\nHello, world.\n")
    git = ["git", "-C", str(workspace), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return workspace


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    return PLANTED


def scripted(steps: list[Any]) -> Callable[[dict[str, Any]], fake_api.Reply]:
    """Steps answer the agent's requests (those offering our tools); anything else gets text."""
    script = fake_api.Script(steps)

    def respond(body: dict[str, Any]) -> fake_api.Reply:
        names = {tool.get("name") for tool in body.get("tools") or []}
        return script(body) if "Bash" in names else fake_api.text("ok")

    return respond


@dataclass
class Run:
    fake: fake_api.FakeAnthropic
    proxy: AnthropicProxy
    session: ClaudeCodeSession
    progress: list[Progress] = field(default_factory=list)
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def tool_results(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for request in self.fake.requests:
            for message in request["messages"]:
                for block in message["content"] if isinstance(message["content"], list) else []:
                    if block.get("type") == "tool_result":
                        content = block.get("content")
                        if isinstance(content, list):
                            content = "".join(part.get("text", "") for part in content)
                        found[block["tool_use_id"]] = str(content)
        return found


@asynccontextmanager
async def running(
    steps: list[Any],
    workspace: Path,
    *,
    isolation: str = "bwrap",
    limits: Limits | None = None,
    model: str = "claude-sonnet-4-5",
    sandbox: SandboxLimits = DEFAULT_LIMITS,
) -> AsyncIterator[Run]:
    require_sdk()
    if isolation == "bwrap":
        require_bwrap()
    fake = fake_api.FakeAnthropic(scripted(steps), api_key=REAL_KEY)
    with fake, AnthropicProxy(REAL_KEY, upstream_url=fake.url) as proxy:
        settings = ClaudeCodeSettings(
            isolation=isolation,  # type: ignore[arg-type]
            max_retries=0,
            limits=sandbox,
        )
        task = AgentTask(
            workspace=workspace,
            system_prompt="You are Honk, working on a GitHub issue.",
            task_prompt="Fix the README as the issue asks.",
            model=model,
            limits=limits or Limits(max_turns=20, max_cost_usd=2.0, timeout_s=120),
        )
        run = Run(fake, proxy, None)  # type: ignore[arg-type]

        async def on_progress(progress: Progress) -> None:
            run.progress.append(progress)

        async def on_audit(kind: str, record: dict[str, Any]) -> None:
            run.audit.append((kind, record))

        run.session = ClaudeCodeBackend(proxy, settings).open(
            task, progress=on_progress, audit=on_audit
        )
        try:
            yield run
        finally:
            await run.session.close()


async def token_refused(run: Run) -> bool:
    token = run.session._grant.token  # type: ignore[union-attr]
    async with httpx.AsyncClient(base_url=run.proxy.base_url) as client:
        reply = await client.post("/v1/messages", json={}, headers={"x-api-key": token})
    return reply.status_code == 401


async def test_claude_code_edits_the_workspace_through_the_proxy_without_any_secret(
    repo: Path, planted: dict[str, str]
) -> None:
    """The label flow, in the isolation this host allows (CI must allow bubblewrap)."""
    isolation = "none" if bwrap_problem("bwrap") and not os.environ.get("CI") else "bwrap"
    readme = str(repo / "README.md")
    steps = [
        fake_api.tool_use("Read", {"file_path": readme}, id="toolu_read"),
        fake_api.tool_use(
            "Edit",
            {"file_path": readme, "old_string": "Hello, world.", "new_string": "Hello, Honk."},
            id="toolu_edit",
        ),
        fake_api.tool_use("Write", {"file_path": str(repo / "NOTES.md"), "content": "notes\n"}),
        fake_api.tool_use("Bash", {"command": "env", "description": "env"}, id="toolu_env"),
        fake_api.text("Updated the README and added NOTES.md."),
        fake_api.text("Nothing else to change."),
    ]
    async with running(steps, repo, isolation=isolation) as run:
        first = await run.session.start()
        second = await run.session.follow_up("Please double-check the README.")
        results = run.tool_results()
        token = run.session._grant.token  # type: ignore[union-attr]
        await run.session.close()
        assert await token_refused(run)

    assert first == AgentOutcome(
        stop="done",
        summary="Updated the README and added NOTES.md.",
        turns=5,
        usage=first.usage,
        cost_usd=first.cost_usd,
        duration_s=first.duration_s,
    )
    assert (repo / "README.md").read_text() == "# Demo\n\nHello, Honk.\n"
    assert (repo / "NOTES.md").read_text() == "notes\n"
    assert "ANTHROPIC_BASE_URL" in results["toolu_env"]  # it is the env listing
    for value in planted.values():
        assert value not in results["toolu_env"]
    assert "ghs_" not in results["toolu_env"] and "PRIVATE KEY" not in results["toolu_env"]
    # only the real key reached the API; the per-run token never left Honk's proxy
    assert {headers["x-api-key"] for headers in run.fake.headers} == {REAL_KEY}
    # the follow-up resumed the same conversation, and the figures count from the start
    assert run.fake.requests[-1]["messages"][0]["content"][-1]["text"].endswith(
        "Fix the README as the issue asks."
    )
    assert second.stop == "done" and second.summary == "Nothing else to change."
    assert second.turns == first.turns + 1
    assert second.cost_usd > first.cost_usd > 0
    assert second.usage.output_tokens == sum(u["output_tokens"] for u in run.fake.usages)
    # progress and audit
    assert [p.tool for p in run.progress][:4] == ["Read", "Edit", "Write", "Bash"]
    assert [p.turns for p in run.progress] == sorted(p.turns for p in run.progress)
    kinds = {kind for kind, _ in run.audit}
    assert {"model_turn", "tool_call", "tool_result"} <= kinds
    for _, record in run.audit:
        for value in record.values():
            assert not isinstance(value, str) or len(value) <= AUDIT_CAP
            assert not isinstance(value, str) or token not in value


async def test_commands_get_no_network_and_write_only_the_workspace(
    repo: Path, tmp_path: Path, planted: dict[str, str]
) -> None:
    """What bubblewrap proves here: the list below, each checked from inside the agent's Bash."""
    outside = tmp_path / "outside.txt"
    probe = "; ".join(
        [
            "curl -sS -m 5 {fake}/v1/messages >/dev/null 2>&1; echo fake-exit=$?",
            "curl -sS -m 5 {proxy}/v1/messages >/dev/null 2>&1; echo proxy-exit=$?",
            f"echo x > {outside} 2>/dev/null; echo outside-exit=$?",
            "echo x > /etc/honk-probe 2>/dev/null; echo etc-exit=$?",
            "echo x > .git/hooks/pre-commit 2>/dev/null; echo hook-exit=$?",
            f"cat /proc/{os.getpid()}/environ 2>/dev/null; echo environ-exit=$?",
            "echo x > inside.txt; echo inside-exit=$?",
        ]
    )

    urls: dict[str, str] = {}

    def bash(body: dict[str, Any]) -> fake_api.Reply:
        command = probe.format(fake=urls["fake"], proxy=urls["proxy"])
        return fake_api.tool_use("Bash", {"command": command}, id="toolu_probe")

    steps = [
        bash,
        fake_api.tool_use("Write", {"file_path": str(outside), "content": "escaped\n"}),
        fake_api.text("Probed."),
    ]
    async with running(steps, repo) as run:
        urls.update(fake=run.fake.url, proxy=run.proxy.base_url)
        outcome = await run.session.start()
        output = run.tool_results()["toolu_probe"]
    assert outcome.stop == "done"
    lines = dict(line.split("=", 1) for line in output.splitlines() if "-exit=" in line)
    assert lines["fake-exit"] != "0" and lines["proxy-exit"] != "0"  # no network, not even loopback
    assert lines["etc-exit"] != "0" and lines["hook-exit"] != "0"  # read-only
    assert lines["environ-exit"] != "0"  # Honk's own process is not visible
    assert lines["inside-exit"] == "0" and (repo / "inside.txt").exists()
    # a path outside the workspace is at best in the sandbox's private /tmp: never on the host
    assert "outside-exit" in lines and not outside.exists()  # neither Bash nor Write got out
    assert not Path("/etc/honk-probe").exists()
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert all(value not in output for value in planted.values())


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def tree_of(session: ClaudeCodeSession) -> dict[ProcInfo, str]:
    """The CLI's processes now, with their command lines."""
    pid = session.process_id
    procs = process_tree(proc_table(), pid, session=True) if pid else []
    return {proc: cmdline(proc.pid) for proc in procs}


async def wait_for_command(session: ClaudeCodeSession, marker: str) -> dict[ProcInfo, str]:
    """The CLI's process tree once `marker` runs in it (polls /proc for up to a minute)."""
    for _ in range(1200):
        tree = tree_of(session)
        if any(marker in command for command in tree.values()):
            return tree
        await asyncio.sleep(0.05)
    raise AssertionError(f"{marker!r} never started")


async def watch(session: ClaudeCodeSession, work: asyncio.Task[Any]) -> dict[ProcInfo, str]:
    """Every process seen in the CLI's tree until `work` ends (polls /proc)."""
    seen: dict[ProcInfo, str] = {}
    while not work.done():
        seen.update(tree_of(session))
        await asyncio.sleep(0.05)
    return seen


@pytest.mark.parametrize(
    ("isolation", "how"), [("none", "close"), ("bwrap", "cancel"), ("bwrap", "timeout")]
)
async def test_stopping_a_run_leaves_no_process_behind(
    isolation: str, how: str, repo: Path
) -> None:
    marker = "sleep 317"
    steps = [fake_api.tool_use("Bash", {"command": f"{marker}; echo late"}), fake_api.text("x")]
    limits = Limits(timeout_s=6 if how == "timeout" else 120)
    async with running(steps, repo, isolation=isolation, limits=limits) as run:
        work = asyncio.create_task(run.session.start())
        if how == "timeout":
            tree = await watch(run.session, work)
            outcome = await work
            assert outcome.stop == "timeout" and outcome.error is not None
        else:
            tree = await wait_for_command(run.session, marker)
            if how == "close":
                await run.session.close()
                assert (await work).stop == "cancelled"
            else:
                work.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await work
        assert any(marker in command for command in tree.values())  # it was running
        assert alive(list(tree)) == []
        assert not any(marker in cmdline(p.pid) for p in proc_table())
        await run.session.close()
        assert await token_refused(run)


# As in tests/workspace/test_sandbox_limits.py: every process stays alive, and it stops at depth 9
# (at most 1023 processes) should every limit fail.
FORK_BOMB = (
    "f(){ if [ $1 -lt 9 ]; then f $(($1+1)) & f $(($1+1)) & fi; exec -a {m} sleep 30; }; f 0"
)


def live(marker: str) -> list[int]:
    return [p.pid for p in alive(proc_table()) if marker in cmdline(p.pid)]


@pytest.mark.parametrize("isolation", ["bwrap", "none"])
async def test_a_fork_bomb_in_the_cli_ends_the_session_and_leaves_nothing(
    isolation: str, repo: Path
) -> None:
    """The sandbox's watchdog counts the CLI's processes, even as root (where the kernel ignores
    RLIMIT_NPROC): past the limit it kills the whole tree and says which limit."""
    marker = f"honk-bomb-{uuid.uuid4().hex[:12]}"
    command = FORK_BOMB.replace("{m}", marker)
    steps = [fake_api.tool_use("Bash", {"command": command}), fake_api.text("never")]
    sandbox = SandboxLimits(max_procs=64)
    async with running(steps, repo, isolation=isolation, sandbox=sandbox) as run:
        began = time.monotonic()
        outcome = await run.session.start()
        elapsed = time.monotonic() - began
        for _ in range(100):
            if not live(marker):
                break
            await asyncio.sleep(0.05)
        assert not live(marker)
    assert outcome.stop == "error"
    assert outcome.error == "Claude Code was stopped: it started more than 64 processes at once."
    assert elapsed < 25  # well before the bomb's sleeps would end on their own


async def test_an_api_error_stops_the_run_with_a_readable_sentence(repo: Path) -> None:
    steps = [fake_api.error(529, "overloaded_error", "Overloaded: try again later")] * 3
    async with running(steps, repo, isolation="none") as run:
        outcome = await run.session.start()
    assert outcome.stop == "error"
    assert outcome.error == (
        "Claude Code stopped on an Anthropic API error (HTTP 529): Overloaded: try again later."
    )
    assert len(run.fake.requests) == 1  # CLAUDE_CODE_MAX_RETRIES=0 was honoured


def expensive(body: dict[str, Any]) -> fake_api.Reply:
    """A Bash call writing all of the request's max_tokens: each turn costs the most it can."""
    reply = fake_api.tool_use("Bash", {"command": "true"})
    return fake_api.Reply(reply.content, reply.stop_reason, output_tokens=body["max_tokens"])


@pytest.mark.parametrize(
    ("model", "budget", "turns"),
    [
        # Claude Code asks for 32,000 output tokens (thinking included): $0.48 at Sonnet's price,
        # so $0.75 covers one such turn and not a second
        ("claude-sonnet-4-5", 0.75, 1),
        ("claude-sonnet-4-5", 0.30, 0),  # not even one
        # Honk has no price for this model and takes the highest ($75 per million output tokens),
        # so it stops where Claude Code's own count (at haiku's price) would have gone on
        ("claude-3-5-haiku-20241022", 0.30, 0),
    ],
)
async def test_a_request_the_budget_cannot_cover_stops_the_run_as_max_cost(
    model: str, budget: float, turns: int, repo: Path
) -> None:
    steps = [expensive] * 3 + [fake_api.text("never")]
    limits = Limits(max_cost_usd=budget)
    async with running(steps, repo, isolation="none", limits=limits, model=model) as run:
        outcome = await run.session.start()
        asked = len(run.fake.requests)
        again = await run.session.follow_up("Keep going.")
        meter = run.session.meter
    assert outcome.stop == "max_cost" and "budget" in (outcome.error or "")
    assert meter is not None and meter.refused >= 1 and meter.reserved_usd == 0
    assert outcome.cost_usd == meter.spent_usd <= budget
    offering_bash = [r for r in run.fake.requests if "Bash" in str(r.get("tools"))]
    assert len(offering_bash) == turns
    assert again.stop == "max_cost" and len(run.fake.requests) == asked  # no new CLI run


async def test_the_turn_limit_stops_the_run_as_max_turns(repo: Path) -> None:
    steps = [fake_api.tool_use("Bash", {"command": "true"})] * 3
    async with running(steps, repo, isolation="none", limits=Limits(max_turns=1)) as run:
        outcome = await run.session.start()
        asked = len(run.fake.requests)
        again = await run.session.follow_up("Keep going.")
    assert outcome.stop == "max_turns" and outcome.turns >= 1
    assert again.stop == "max_turns" and len(run.fake.requests) == asked


def test_without_the_sdk_opening_a_session_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "claude_agent_sdk", None)
    backend = ClaudeCodeBackend(AnthropicProxy(REAL_KEY))
    task = AgentTask(workspace=tmp_path, system_prompt="", task_prompt="x")
    with pytest.raises(AgentUnavailable) as caught:
        backend.open(task)
    assert str(caught.value) == NOT_INSTALLED


def test_without_bubblewrap_isolation_bwrap_refuses_and_auto_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_sdk()
    task = AgentTask(workspace=tmp_path, system_prompt="", task_prompt="x")
    strict = ClaudeCodeSettings(isolation="bwrap", bwrap_path="/nonexistent/bwrap")
    with pytest.raises(AgentUnavailable, match="bubblewrap"):
        ClaudeCodeBackend(AnthropicProxy(REAL_KEY), strict).open(task)
    auto = ClaudeCodeSettings(bwrap_path="/nonexistent/bwrap")
    session = ClaudeCodeBackend(AnthropicProxy(REAL_KEY), auto).open(task)
    assert session.settings.isolation == "none"
    assert "without isolation" in caplog.text


async def test_a_runs_repository_config_becomes_the_sessions_permissions(tmp_path: Path) -> None:
    require_sdk()
    config = RepoConfig(allowed_commands=["npm test"], allow_web=True)
    task = AgentTask(workspace=tmp_path, system_prompt="", task_prompt="x")
    session = open_claude_code_session(task, config=config, api_key=REAL_KEY)
    try:
        assert session.settings.allowed_commands == ("npm test",)
        assert session.settings.allow_web
        assert shared_proxy(REAL_KEY) is shared_proxy(REAL_KEY)  # one proxy per process
        everything = open_claude_code_session(task, config=RepoConfig(), api_key=REAL_KEY)
        assert everything.settings.allowed_commands is None  # any command, in the sandbox
    finally:
        shared_proxy(REAL_KEY).stop()


@pytest.fixture(autouse=True)
def _no_leftover_cli() -> Iterator[None]:
    """Every test ends with no Claude Code process of this test process still running."""
    yield
    ours = [p for p in proc_table() if p.ppid == os.getpid() and "claude" in cmdline(p.pid)]
    assert alive(ours) == []
