"""The built-in backend: Honk's own agent loop on the Anthropic Messages API.

Each turn streams one model response, runs the tool calls it asks for (text editor and bash, in
the workspace), and sends the results back, until the model answers without a tool call. The
prompt is cached: a breakpoint on the tools, one on the system prompt, and two that move with the
conversation (the newest user message and the one before it, whose prefix the previous turn wrote),
so a long run pays full price for each token once. The API key stays in the client: tools and the
commands they run never see it. Money goes through the run's `Ledger`, as Claude Code's through the
proxy: each turn reserves its worst case before it is sent, and a turn that would not fit in what
is left stops the run as `max_cost` instead of being sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic

from honk_app.agent.api_errors import describe_api_error, retry_delay_s
from honk_app.agent.base import (
    AgentTask,
    AuditCallback,
    CommandRunner,
    Progress,
    ProgressCallback,
    ignore_audit,
    ignore_progress,
)
from honk_app.agent.ledger import Ledger, Refused, RequestCost, Wait, reservation_usd
from honk_app.agent.loop_turns import (
    AUDIT_CAP,
    EPHEMERAL,
    assistant_blocks,
    cap_values,
    turn_usage,
    with_cache_breakpoints,
)
from honk_app.agent.pricing import cost_usd, fees_usd
from honk_app.agent.tools import DEFAULT_RESULT_CAP, WorkspaceTools, cut_middle
from honk_app.http_pool import tls_context
from honk_app.models import AgentOutcome, AgentStop, Usage
from honk_app.safety.secret_scan import redact


def anthropic_client_factory(
    api_key: str,
    *,
    base_url: str | None = None,
    max_retries: int = 0,  # the loop retries itself, each attempt reserved (api_errors.py)
    timeout_s: float = 600.0,
) -> Callable[[], anthropic.AsyncAnthropic]:
    """A factory for the loop's client: the key is passed in, never read from or put in an env."""

    def make() -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            timeout=timeout_s,
            # One TLS context for every session: loading the CA bundle per run was measurable.
            http_client=anthropic.DefaultAsyncHttpxClient(verify=tls_context()),
        )

    return make


# ---- the pure part of a turn is in loop_turns.py -------------------------------------------


# ---- the backend -----------------------------------------------------------------------------


class BuiltinBackend:
    """Makes sessions of Honk's own agent loop."""

    name = "builtin"

    def __init__(
        self,
        client_factory: Callable[[], anthropic.AsyncAnthropic],
        runner_factory: Callable[[Path], CommandRunner],
        *,
        max_tokens: int = 16_384,
        result_cap: int = DEFAULT_RESULT_CAP,
        command_timeout_s: float | None = 600.0,
    ) -> None:
        self.client_factory = client_factory
        self.runner_factory = runner_factory
        self.max_tokens = max_tokens
        self.result_cap = result_cap
        self.command_timeout_s = command_timeout_s

    def open(
        self,
        task: AgentTask,
        *,
        progress: ProgressCallback = ignore_progress,
        audit: AuditCallback = ignore_audit,
    ) -> BuiltinSession:
        tools = WorkspaceTools(
            task.workspace,
            self.runner_factory(task.workspace),
            result_cap=self.result_cap,
            command_timeout_s=self.command_timeout_s,
        )
        return BuiltinSession(self, task, tools, progress, audit)


class _Stop(Exception):
    def __init__(self, stop: AgentStop, error: str) -> None:
        super().__init__(error)
        self.stop: AgentStop = stop
        self.error = error


class BuiltinSession:
    """One conversation; `start` and `follow_up` return the cumulative outcome."""

    def __init__(
        self,
        backend: BuiltinBackend,
        task: AgentTask,
        tools: WorkspaceTools,
        progress: ProgressCallback,
        audit: AuditCallback,
    ) -> None:
        self.backend = backend
        self.task = task
        self.tools = tools
        self.progress = progress
        self.audit = audit
        self.messages: list[dict[str, Any]] = []
        self.turns = 0
        self.usage = Usage()
        self.ledger = Ledger(task.limits.max_cost_usd, max_in_flight=1)  # one turn at a time
        self.active_s = 0.0  # time spent inside start/follow_up, which the timeout limits
        self.summary = ""
        self._client: anthropic.AsyncAnthropic | None = None
        self._closed = False

    @property
    def cost_usd(self) -> float:
        return self.ledger.spent_usd

    # -- the AgentSession protocol --

    async def start(self) -> AgentOutcome:
        if self.messages:
            raise RuntimeError("this session has already started; use follow_up")
        self.messages.append(
            {"role": "user", "content": [{"type": "text", "text": self.task.task_prompt}]}
        )
        return await self._run()

    async def follow_up(self, message: str) -> AgentOutcome:
        if not self.messages:
            raise RuntimeError("follow_up before start")
        self._answer_interrupted_tools()
        block = {"type": "text", "text": message}
        last = self.messages[-1]
        if last["role"] == "user":  # the previous call stopped before the model answered
            last["content"] = [*last["content"], block]
        else:
            self.messages.append({"role": "user", "content": [block]})
        return await self._run()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._client is not None:
            await self._client.close()
        close_runner = getattr(self.tools.runner, "close", None)  # the sandbox's temp dir
        if close_runner is not None:
            await close_runner()

    # -- the loop --

    def _outcome(self, stop: AgentStop, error: str | None = None) -> AgentOutcome:
        usage = Usage()
        usage.add(self.usage)
        return AgentOutcome(
            stop=stop,
            summary=self.summary,
            turns=self.turns,
            usage=usage,
            cost_usd=self.cost_usd,
            error=error,
            duration_s=self.active_s,
        )

    async def _run(self) -> AgentOutcome:
        began = time.monotonic()
        try:
            stop, error = await self._attempt(self.task.limits.timeout_s - self.active_s)
        finally:
            self.active_s += time.monotonic() - began
        return self._outcome(stop, error)

    async def _attempt(self, remaining_s: float) -> tuple[AgentStop, str | None]:
        try:
            if remaining_s <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining_s):
                await self._loop()
            return "done", None
        except TimeoutError:
            limit = self.task.limits.timeout_s
            shown = f"{limit:g} seconds" if limit < 120 else f"{limit / 60:g} minutes"
            return "timeout", f"The agent was stopped at its time limit of {shown}."
        except _Stop as stop:
            return stop.stop, stop.error
        except anthropic.AnthropicError as exc:
            return "error", describe_api_error(exc, self._secrets())

    def _secrets(self) -> list[str]:
        client = self._client
        return [s for s in (client.api_key, client.auth_token) if s] if client else []

    def _check_budget(self) -> None:
        if self.turns >= self.task.limits.max_turns:
            raise _Stop(
                "max_turns", f"The agent was stopped after {self.turns} turns, its turn limit."
            )

    async def _loop(self) -> None:
        while True:
            self._check_budget()
            message, used = await self._call_model()
            self.turns += 1
            self.usage.add(used)
            content = assistant_blocks(message.content)
            self.messages.append({"role": "assistant", "content": content})
            text = "\n\n".join(b.text for b in message.content if b.type == "text").strip()
            if text:
                self.summary = text
            await self.audit(
                "model_turn",
                {
                    "turn": self.turns,
                    "usage": vars(used),
                    "stop_reason": message.stop_reason,
                    "text": cut_middle(text, AUDIT_CAP),
                },
            )
            await self.progress(self._progress())
            calls = [b for b in content if b["type"] == "tool_use"]
            if message.stop_reason == "refusal":
                raise _Stop("error", "The model declined to do this task.")
            if message.stop_reason == "model_context_window_exceeded":
                raise _Stop("error", "The conversation outgrew the model's context window.")
            if not calls:
                return
            self.messages.append({"role": "user", "content": await self._run_tools(calls, message)})

    async def _call_model(self) -> tuple[Any, Usage]:
        """One turn: reserve its worst case, send it, settle what it cost."""
        if self._client is None:
            self._client = self.backend.client_factory()
        tools: list[dict[str, Any]] = [dict(t) for t in WorkspaceTools.definitions()]
        tools[-1] = {**tools[-1], "cache_control": EPHEMERAL}
        system = [{"type": "text", "text": self.task.system_prompt, "cache_control": EPHEMERAL}]
        params: dict[str, Any] = {
            "model": self.task.model,
            "max_tokens": self.backend.max_tokens,
            "system": system,
            "tools": tools,
            "messages": with_cache_breakpoints(self.messages),
        }
        size = len(json.dumps(params).encode())
        reservation = reservation_usd(RequestCost(self.task.model, self.backend.max_tokens, size))
        attempt = 0
        while True:
            try:
                return await self._send(params, reservation)
            except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
                delay = retry_delay_s(exc, attempt)
                if delay is None:
                    raise
            attempt += 1
            await asyncio.sleep(delay)

    async def _send(self, params: dict[str, Any], reservation: float) -> tuple[Any, Usage]:
        """One attempt under its own reservation, settled from its usage or charged if lost."""
        assert self._client is not None
        admission = self.ledger.admit(reservation)
        if isinstance(admission, Refused | Wait):  # one turn at a time: never Wait
            raise _Stop("max_cost", self._over_budget(reservation))
        try:
            async with self._client.messages.stream(**params) as stream:
                message = await stream.get_final_message()
        except anthropic.APIStatusError as exc:
            if exc.status_code >= 400:  # refused before any work: the API charges nothing
                self.ledger.release(admission.ticket)
            else:  # failed mid-stream: what it used is unknown
                self.ledger.charge(admission.ticket)
            raise
        except ValueError as exc:  # the SDK could not read the stream (say, broken tool JSON)
            self.ledger.charge(admission.ticket)
            raise _Stop(
                "error", "The model's answer could not be read, so the run stopped."
            ) from exc
        except BaseException:  # lost, timed out or cancelled: it may have been billed
            self.ledger.charge(admission.ticket)
            raise
        used = turn_usage(message.usage)
        searches = getattr(
            getattr(message.usage, "server_tool_use", None), "web_search_requests", 0
        )
        cost = cost_usd(self.task.model, used) + fees_usd(searches or 0)
        self.ledger.settle(admission.ticket, cost, used, web_searches=searches or 0)
        return message, used

    def _over_budget(self, reservation: float) -> str:
        return (
            f"The agent was stopped after spending ${self.cost_usd:.2f}: its next turn could cost "
            f"up to ${reservation:.2f}, more than is left of its ${self.ledger.budget_usd:.2f} "
            "budget."
        )

    async def _run_tools(self, calls: list[dict[str, Any]], message: Any) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for call in calls:
            if message.stop_reason == "max_tokens":
                content, is_error = (
                    "Your response was cut off at the output limit, so this call was not run. "
                    "Make smaller edits (several str_replace calls instead of one large create).",
                    True,
                )
            else:
                try:
                    result = await self.tools.call(call["name"], call["input"])
                except Exception as exc:  # the sandbox itself failed: not the model's doing
                    raise _Stop(
                        "error",
                        redact(f"Running the {call['name']} tool failed: {exc}.", self._secrets()),
                    ) from exc
                # capped here too: whatever a tool returns, the conversation holds at most this
                content = cut_middle(result.content, self.backend.result_cap)
                is_error = result.is_error
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": call["id"],
                "content": content,
            }
            if is_error:
                block["is_error"] = True
            results.append(block)
            await self.audit(
                "tool_call",
                {
                    "name": call["name"],
                    "input": cap_values(call["input"]),
                    "result": cut_middle(content, AUDIT_CAP),
                    "is_error": is_error,
                },
            )
            await self.progress(self._progress(tool=call["name"]))
        return results

    def _progress(self, tool: str | None = None) -> Progress:
        usage = Usage()
        usage.add(self.usage)
        return Progress(turns=self.turns, cost_usd=self.cost_usd, usage=usage, tool=tool)

    def _answer_interrupted_tools(self) -> None:
        """After a timeout or cancellation mid-tools, the API still needs every tool answered."""
        last = self.messages[-1]
        if last["role"] != "assistant":
            return
        pending = [b["id"] for b in last["content"] if b["type"] == "tool_use"]
        if pending:
            self.messages.append(
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": call_id,
                            "content": "Interrupted before this call finished.",
                            "is_error": True,
                        }
                        for call_id in pending
                    ],
                }
            )
