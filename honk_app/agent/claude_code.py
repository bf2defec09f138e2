"""The `claude-code` agent backend: Claude Code (through claude_agent_sdk) in the run's workspace.

Claude Code runs with the guarantees of the built-in loop (how the CLI is started, sandboxed and
stopped lives in `claude_code_launch.py`; what it is told and what Honk reads back, in
`claude_code_messages.py`):

- It never sees a secret of Honk's: a per-run launcher gives the CLI only the environment Honk
  built. The API key is a per-run token for Honk's proxy (`proxy.py`), which holds the real key,
  reserves each request's worst case against the budget before forwarding it (`ledger.py`), and
  passes server-side tools (web search and fetch) only with `allow_web`.
- Isolation `bwrap` runs the CLI, and every command it starts, in bubblewrap with no network.
  `auto`, the default, falls back like the command sandbox to `none` (logged): the clean
  environment stays, the rest does not.
- Limits: turns and budget go to the CLI, and the proxy enforces the budget by its own count;
  the time limit, `close()` and cancellation kill the CLI and every process it started. The
  sandbox's watchdog (`honk_app.workspace.limits.Guard`) counts the processes of the CLI's tree
  and the disk its writable directories use: past a limit, it kills the tree and the session
  ends with an error saying which limit.
- The web: only with the repository's `allow_web`, and only through Honk's filtering egress
  proxy (the run's socket, `ClaudeCodeSettings.egress_socket`); never the host's network.

Each `start`/`follow_up` runs one CLI process; a follow-up resumes the CLI's session (stored in the
run's CLAUDE_CONFIG_DIR), and limits count from `start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from honk_app.agent.base import (
    AgentTask,
    AgentUnavailable,
    AuditCallback,
    Progress,
    ProgressCallback,
    ignore_audit,
    ignore_progress,
)
from honk_app.agent.claude_code_launch import (
    ClaudeCodeSettings,
    ProcInfo,
    RunPaths,
    bwrap_problem,
    find_cli,
    frozen_tree,
    grown_tree,
    kill_all,
    load_sdk,
    read_pid,
    wait_gone,
    write_run_files,
)
from honk_app.agent.claude_code_messages import (
    ResultView,
    classify,
    early_stop,
    failure_text,
    option_values,
    result_view,
    tool_result_record,
    turn_records,
)
from honk_app.agent.proxy import DEFAULT_UPSTREAM, AnthropicProxy
from honk_app.agent.proxy_rules import Meter, ProxyGrant
from honk_app.models import AgentOutcome, AgentStop, Limits, Usage
from honk_app.safety.secret_scan import redact
from honk_app.workspace.limits import DEFAULT_LIMITS, DiskMeter, Guard
from honk_app.workspace.sandbox import bwrap_binary

if TYPE_CHECKING:
    from claude_agent_sdk import ClaudeAgentOptions

    from honk_app.repo_config import RepoConfig


log = logging.getLogger(__name__)


# ---- the backend -----------------------------------------------------------------------------


class ClaudeCodeBackend:
    """Makes Claude Code sessions; all of them reach the API through one `AnthropicProxy`."""

    name = "claude-code"

    def __init__(self, proxy: AnthropicProxy, settings: ClaudeCodeSettings | None = None) -> None:
        self.proxy = proxy
        self.settings = settings or ClaudeCodeSettings()
        self.bwrap: str | None = None  # resolved once bubblewrap has proved it works here

    def open(
        self,
        task: AgentTask,
        *,
        progress: ProgressCallback = ignore_progress,
        audit: AuditCallback = ignore_audit,
    ) -> ClaudeCodeSession:
        """Check that Claude Code can run here (raises AgentUnavailable), then make a session."""
        sdk = load_sdk()
        cli = find_cli(self.settings, sdk)
        if self.settings.isolation != "none" and self.bwrap is None:
            bwrap = self.settings.bwrap_path or bwrap_binary() or "bwrap"
            problem = bwrap_problem(bwrap)
            if problem is None:
                self.bwrap = shutil.which(bwrap)
            elif self.settings.isolation == "bwrap":
                raise AgentUnavailable(problem)
            else:
                log.warning("Claude Code runs without isolation: %s", problem)
                self.settings = replace(self.settings, isolation="none")
        if self.bwrap is not None:
            self.settings = replace(self.settings, isolation="bwrap")
        return ClaudeCodeSession(self, sdk, cli.resolve(), task, progress, audit)


class ClaudeCodeSession:
    """One Claude Code conversation in one workspace; see the module docstring."""

    def __init__(
        self,
        backend: ClaudeCodeBackend,
        sdk: Any,
        cli: Path,
        task: AgentTask,
        progress: ProgressCallback,
        audit: AuditCallback,
    ) -> None:
        self.run_id = f"claude-code-{secrets.token_hex(8)}"
        self._proxy, self._bwrap = backend.proxy, backend.bwrap
        self.settings = backend.settings  # isolation resolved: "bwrap" or "none"
        self._sdk, self._cli = sdk, cli
        self._task, self._progress, self._audit = task, progress, audit
        self._workspace = task.workspace.resolve()
        self._grant: ProxyGrant | None = None
        self._paths: RunPaths | None = None
        self._env: dict[str, str] = {}
        self._final_meter: Meter | None = None
        self._session_id: str | None = None
        self._turns = 0  # completed turns, from the CLI's results
        self._live_turns: set[str] = set()  # assistant messages seen in the current call
        self._reported = (0.0, Usage())  # the CLI's own cost and usage, if the proxy saw nothing
        self._active_s = 0.0
        self._forced: AgentStop | None = None
        self._failure: str | None = None
        self._stderr: list[str] = []
        self._pump: asyncio.Task[ResultView | None] | None = None
        self._tree: list[ProcInfo] = []
        self._disk: DiskMeter | None = None
        self._limit_hit: str | None = None  # the sentence of the sandbox limit the call passed
        self._closed = False

    # the contract

    async def start(self) -> AgentOutcome:
        if self._grant is not None:
            raise RuntimeError("This Claude Code session has already started.")
        return await self._call(self._task.task_prompt)

    async def follow_up(self, message: str) -> AgentOutcome:
        if self._grant is None:
            raise RuntimeError("Start the session before following up.")
        return await self._call(message)

    async def close(self) -> None:
        """Kill the CLI and everything it started, revoke the token, delete the run's files."""
        self._closed = True
        pump = self._pump
        if pump is not None and not pump.done():
            self._forced = "cancelled"
            self._kill()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(pump), 15)
        await wait_gone(self._tree)
        if self._grant is not None:
            self._final_meter = self._proxy.revoke(self.run_id) or self._final_meter
        if self._paths is not None:
            shutil.rmtree(self._paths.root, ignore_errors=True)

    @property
    def meter(self) -> Meter | None:
        """The proxy's measure of this session's spend (kept after `close`)."""
        return self._meter()

    @property
    def process_id(self) -> int | None:
        """The pid of the CLI's launcher (bubblewrap or the CLI itself), once it has started."""
        return read_pid(self._paths.pid_file) if self._paths is not None else None

    # one CLI process per call

    async def _call(self, prompt: str) -> AgentOutcome:
        if self._closed:
            raise RuntimeError("This Claude Code session is closed.")
        self._prepare()
        limits = self._task.limits
        early = early_stop(limits, turns=self._turns, meter=self._meter(), active_s=self._active_s)
        if early is not None:
            return self._outcome(early[0], "", early[1])
        self._forced, self._failure, self._live_turns = None, None, set()
        self._limit_hit = None
        assert self._paths is not None
        self._paths.pid_file.unlink(missing_ok=True)  # the previous call's CLI is gone
        began = time.monotonic()
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(limits.timeout_s - self._active_s, self._expire)
        watching = asyncio.create_task(self._watch_limits())
        self._pump = asyncio.create_task(self._drive(prompt))
        try:
            result = await asyncio.shield(self._pump)
        except asyncio.CancelledError:
            self._forced = "cancelled"
            self._kill()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._pump, 15)
            raise
        finally:
            deadline.cancel()
            watching.cancel()
            self._kill()
            await wait_gone(self._tree)
            self._active_s += time.monotonic() - began
        if result is not None:
            self._turns += result.num_turns
            self._session_id = result.session_id or self._session_id
            cost, usage = self._reported
            usage.add(result.usage)
            self._reported = (cost + result.total_cost_usd, usage)
        stop, error = classify(
            result,
            forced=self._forced,
            meter=self._meter(),
            limits_timeout_s=limits.timeout_s,
            failure=self._failure,
        )
        if self._limit_hit is not None:
            stop, error = "error", self._limit_hit
        summary = result.text if result is not None and not result.is_error else ""
        return self._outcome(stop, summary, error)

    def _prepare(self) -> None:
        """First call: a token, a private run directory and the launcher."""
        if self._grant is not None:
            return
        self._proxy.start()
        self._grant = self._proxy.issue(
            self.run_id, self._task.limits.max_cost_usd, allow_web=self.settings.allow_web
        )
        self._paths = RunPaths.under(Path(tempfile.mkdtemp(prefix="honk-claude-code-")))
        self._env = write_run_files(
            self._paths,
            self.settings,
            self._grant,
            bwrap=self._bwrap or "",
            cli=self._cli,
            workspace=self._workspace,
            sdk_version=self._sdk.__version__,
        )
        limits = self.settings.limits
        if limits is not None and limits.max_disk_mb:
            self._disk = DiskMeter([self._workspace, self._paths.root], limits.max_disk_mb)

    def _options(self) -> ClaudeAgentOptions:
        assert self._grant is not None and self._paths is not None
        meter = self._meter()
        values = option_values(
            self.settings,
            self._task,
            workspace=self._workspace,
            launcher=self._paths.launcher,
            turns=self._turns,
            spent_usd=meter.spent_usd if meter is not None else 0.0,
            session_id=self._session_id,
        )
        # the launcher keeps `env` and drops everything else
        options: ClaudeAgentOptions = self._sdk.ClaudeAgentOptions(
            **values, env=self._env, stderr=self._on_stderr
        )
        return options

    async def _drive(self, prompt: str) -> ResultView | None:
        """Stream the CLI's messages into progress and audit; return its result, if any."""
        result: ResultView | None = None
        messages = self._sdk.query(prompt=prompt, options=self._options())
        try:
            async for message in messages:
                self._note_process()
                if self._forced is not None:
                    break
                if isinstance(message, self._sdk.ResultMessage):
                    result = result_view(message, self._secrets())
                else:
                    await self._observe(message)
        except Exception as exc:  # the SDK's errors, and anything a dying CLI leaves behind
            if result is None and self._forced is None:
                self._failure = failure_text(exc, self._stderr, self._secrets())
        finally:
            self._note_process()
            self._kill()
            await messages.aclose()
        return result

    # observing the CLI

    async def _observe(self, message: Any) -> None:
        sdk = self._sdk
        if isinstance(message, sdk.AssistantMessage) and message.parent_tool_use_id is None:
            texts = [b.text for b in message.content if isinstance(b, sdk.TextBlock)]
            uses = [b for b in message.content if isinstance(b, sdk.ToolUseBlock)]
            self._live_turns.add(message.message_id or str(len(self._live_turns)))
            turn = self._turns + len(self._live_turns)
            for kind, record in turn_records(turn, texts, uses, self._secrets()):
                await self._audit(kind, record)
            meter = self._meter() or Meter(budget_usd=0)
            tool = uses[-1].name if uses else None
            await self._progress(Progress(turn, meter.spent_usd, meter.usage, tool))
        elif isinstance(message, sdk.UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, sdk.ToolResultBlock):
                    await self._audit("tool_result", tool_result_record(block, self._secrets()))

    def _on_stderr(self, line: str) -> None:
        self._stderr = [*self._stderr[-19:], redact(line, self._secrets())]

    # processes

    def _note_process(self) -> None:
        """Remember the CLI's process tree, so it can be killed even after it is reparented."""
        pid = self.process_id
        if pid is not None:
            self._tree = grown_tree(self._tree, pid, session=self.settings.isolation == "none")

    def _kill(self) -> None:
        self._note_process()
        kill_all(self._tree)

    async def _watch_limits(self) -> None:
        """The sandbox's watchdog on the CLI's tree (processes, disk) until the call ends: as
        root the kernel ignores RLIMIT_NPROC, so only this counts the processes."""
        limits = self.settings.limits
        if limits is None or not (limits.max_procs or limits.max_disk_mb):
            return
        allowance = await asyncio.to_thread(self._disk.start) if self._disk is not None else 0
        pid = self.process_id
        while pid is None:  # the launcher, another process, has not recorded its pid yet
            await asyncio.sleep(0.05)
            pid = self.process_id
        guard = Guard(
            limits,
            pid,
            stop=lambda: self._stop_at_limit(limits, guard),
            disk=self._disk,
            allowance=allowance,
        )
        await guard.watch()

    def _stop_at_limit(self, limits: Limits, guard: Guard) -> None:
        if guard.tripped is None or self._forced is not None:
            return
        sentence = limits.sentence(guard.tripped)
        self._limit_hit = sentence.replace("The command was stopped", "Claude Code was stopped", 1)
        self._forced = "error"
        pid = self.process_id
        if pid is not None:  # stop the tree from growing, then kill all of it
            session = self.settings.isolation == "none"
            self._tree = frozen_tree(self._tree, pid, session=session)
        self._kill()

    def _expire(self) -> None:
        self._forced = "timeout"
        self._kill()
        if self._pump is not None and not self._pump.done() and self.process_id is None:
            asyncio.get_running_loop().call_later(0.2, self._expire)  # not spawned yet

    # figures

    def _secrets(self) -> list[str]:
        return [self._grant.token] if self._grant is not None else []

    def _meter(self) -> Meter | None:
        if self._final_meter is not None:
            return self._final_meter
        return self._proxy.meter(self.run_id) if self._grant is not None else None

    def _outcome(self, stop: AgentStop, summary: str, error: str | None) -> AgentOutcome:
        meter = self._meter()
        if meter is not None and meter.requests:
            cost, usage = meter.spent_usd, meter.usage
        else:
            cost, usage = self._reported[0], replace(self._reported[1])
        return AgentOutcome(
            stop=stop,
            summary=summary,
            turns=self._turns,
            usage=usage,
            cost_usd=cost,
            error=error,
            duration_s=self._active_s,
        )


# ---- what a run calls ------------------------------------------------------------------------

_proxies: dict[tuple[str, str], AnthropicProxy] = {}


def shared_proxy(api_key: str, base_url: str | None = None) -> AnthropicProxy:
    """The process's proxy for this key and upstream, started on first use."""
    upstream = base_url or DEFAULT_UPSTREAM
    proxy = _proxies.get((api_key, upstream))
    if proxy is None:
        proxy = _proxies[(api_key, upstream)] = AnthropicProxy(api_key, upstream_url=upstream)
    return proxy.start()


def open_claude_code_session(
    task: AgentTask,
    *,
    config: RepoConfig,
    api_key: str,
    base_url: str | None = None,
    progress: ProgressCallback = ignore_progress,
    audit: AuditCallback = ignore_audit,
    hidden_paths: Sequence[Path] = (),
    read_only_paths: Sequence[Path] = (),
    limits: Limits | None = None,
    isolation: Literal["bwrap", "none"] = "bwrap",
    egress_socket: Path | None = None,
) -> ClaudeCodeSession:
    """A session for a run whose repository chose `agent: claude-code`; `hidden_paths` (Honk's
    data dir, key file) join the `.env` of the working directory in being emptied;
    `egress_socket`, the run's grant of Honk's egress proxy, is the web's only way in with
    `allow_web`."""
    settings = ClaudeCodeSettings(
        allow_web=config.allow_web,
        egress_socket=egress_socket,
        allowed_commands=tuple(config.allowed_commands) or None,
        hidden_paths=tuple(str(p.resolve()) for p in [Path(".env"), *hidden_paths]),
        read_only_paths=tuple(str(p) for p in read_only_paths),
        limits=limits or DEFAULT_LIMITS,
        isolation=isolation,
    )
    backend = ClaudeCodeBackend(shared_proxy(api_key, base_url), settings)
    return backend.open(task, progress=progress, audit=audit)
