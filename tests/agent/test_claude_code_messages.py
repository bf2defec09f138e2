"""What Honk tells Claude Code and reads back from it: tools, permissions and SDK options, the
CLI's result and audit records, and the stop reason of a call."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from honk_app.agent.base import AgentTask, Limits
from honk_app.agent.claude_code_launch import ClaudeCodeSettings
from honk_app.agent.claude_code_messages import (
    AUDIT_CAP,
    ResultView,
    allow_rules,
    capped,
    classify,
    early_stop,
    failure_text,
    option_values,
    readable_api_error,
    result_view,
    tool_names,
    tool_result_record,
    turn_records,
)
from honk_app.agent.proxy_rules import Meter
from honk_app.models import Usage

TOKEN = "honk-proxy-" + "t" * 43


def test_tools_and_permission_rules_follow_the_repository_config() -> None:
    assert tool_names(ClaudeCodeSettings()) == ["Read", "Write", "Edit", "Glob", "Grep", "Bash"]
    assert "WebFetch" in tool_names(ClaudeCodeSettings(allow_web=True))
    assert allow_rules(ClaudeCodeSettings())[-1] == "Bash"
    limited = allow_rules(ClaudeCodeSettings(allowed_commands=("npm test", "make")))
    assert limited[-2:] == ["Bash(npm test:*)", "Bash(make:*)"] and "Bash" not in limited


def test_api_errors_read_as_one_sentence() -> None:
    text = readable_api_error("API Error: 400 max_tokens: 9999999 > 64000, the maximum.", 400)
    assert text == (
        "Claude Code stopped on an Anthropic API error (HTTP 400): "
        "max_tokens: 9999999 > 64000, the maximum."
    )
    rejected = readable_api_error("API Error: Request rejected (429) · Slow down.", 429)
    assert rejected.endswith("(HTTP 429): Slow down.")
    overloaded = readable_api_error(
        "API Error: 529 Overloaded This is a server-side issue, usually temporary — try again "
        "in a moment. If it persists, check your inference gateway (127.0.0.1:4242).",
        529,
    )
    assert overloaded.endswith("(HTTP 529): Overloaded.")  # no advice meant for a terminal


@pytest.mark.parametrize(
    ("result", "forced", "meter", "expected"),
    [
        (ResultView("success", False, "ok"), None, None, "done"),
        (ResultView("error_max_turns", True), None, None, "max_turns"),
        (ResultView("error_max_budget_usd", True), None, None, "max_cost"),
        (
            ResultView("success", True, "API Error: 529 x", api_error_status=529),
            None,
            None,
            "error",
        ),
        (ResultView("error_during_execution", True, errors=("boom",)), None, None, "error"),
        (
            ResultView("success", True, "API Error: 402 b"),
            None,
            Meter(1, 1.2, refused=1),
            "max_cost",
        ),
        (None, None, None, "error"),
        (None, "timeout", None, "timeout"),
        (ResultView("success", False, "ok"), "cancelled", None, "cancelled"),
    ],
)
def test_results_map_to_stop_reasons_with_a_sentence_unless_done(
    result: ResultView | None, forced: Any, meter: Meter | None, expected: str
) -> None:
    stop, error = classify(result, forced=forced, meter=meter, limits_timeout_s=60, failure=None)
    assert stop == expected
    assert (error is None) == (expected == "done")
    assert error is None or error.endswith(".")


def test_options_carry_the_limits_left_and_none_of_the_hosts_configuration() -> None:
    task = AgentTask(
        workspace=Path("/w"),
        system_prompt="You are Honk.",
        task_prompt="x",
        model="claude-sonnet-4-5",
        limits=Limits(max_turns=10, max_cost_usd=2.0),
    )
    values = option_values(
        ClaudeCodeSettings(),
        task,
        workspace=Path("/w"),
        launcher=Path("/run/launch"),
        turns=4,
        spent_usd=0.5,
        session_id="s-1",
    )
    assert values["cwd"] == "/w" and values["cli_path"] == "/run/launch"
    assert values["system_prompt"]["append"] == "You are Honk."
    assert values["max_turns"] == 6 and values["max_budget_usd"] == 1.5
    assert values["disallowed_tools"] == ["WebFetch", "WebSearch"]
    assert values["permission_mode"] == "dontAsk" and values["setting_sources"] == []
    assert json.loads(values["settings"]) == {"disableAllHooks": True}
    assert values["resume"] == "s-1"
    spent = option_values(
        ClaudeCodeSettings(allow_web=True),
        task,
        workspace=Path("/w"),
        launcher=Path("/run/launch"),
        turns=12,
        spent_usd=3.0,
        session_id=None,
    )
    assert spent["max_turns"] == 1 and spent["max_budget_usd"] == 0.0
    assert spent["disallowed_tools"] == []


def test_the_result_is_read_with_the_token_redacted() -> None:
    message = SimpleNamespace(
        subtype="error_during_execution",
        is_error=True,
        result=f"leaked {TOKEN}",
        num_turns=None,
        api_error_status=None,
        errors=[f"boom {TOKEN}"],
        total_cost_usd=None,
        usage={"input_tokens": 3, "output_tokens": 2},
        session_id="s-1",
    )
    view = result_view(message, [TOKEN])
    assert TOKEN not in view.text and TOKEN not in view.errors[0]
    assert view.num_turns == 0 and view.total_cost_usd == 0.0
    assert view.usage == Usage(input_tokens=3, output_tokens=2)
    assert view.session_id == "s-1"


def test_audit_records_are_capped_and_redacted() -> None:
    use = SimpleNamespace(id="toolu_1", name="Bash", input={"command": f"echo {TOKEN}"})
    records = list(turn_records(3, ["Let me", "look."], [use], [TOKEN]))
    assert records[0] == ("model_turn", {"turn": 3, "text": "Let me\nlook."})
    kind, call = records[1]
    assert kind == "tool_call" and call["tool"] == "Bash" and TOKEN not in call["input"]
    assert list(turn_records(1, [], [])) == []
    listed = SimpleNamespace(
        tool_use_id="toolu_1", is_error=None, content=[{"text": "a"}, {"type": "image"}]
    )
    assert tool_result_record(listed) == {"id": "toolu_1", "is_error": False, "output": "a\n"}
    long = SimpleNamespace(tool_use_id="toolu_2", is_error=True, content="x" * (AUDIT_CAP * 2))
    assert len(tool_result_record(long)["output"]) == AUDIT_CAP
    assert capped("y" * AUDIT_CAP) == "y" * AUDIT_CAP


def test_a_failure_names_the_error_and_the_last_lines_of_stderr() -> None:
    stderr = ["first", "second", "third", f"fourth {TOKEN}"]
    text = failure_text(RuntimeError("gone"), stderr, [TOKEN])
    assert text.startswith("Claude Code failed: RuntimeError: gone second third fourth")
    assert TOKEN not in text and "first" not in text


@pytest.mark.parametrize(
    ("turns", "meter", "active_s", "expected"),
    [
        (0, None, 0.0, None),
        (5, None, 0.0, "max_turns"),
        (0, Meter(1.0, 1.0), 0.0, "max_cost"),
        (0, Meter(1.0, 0.5), 60.0, "timeout"),
    ],
)
def test_a_call_past_a_limit_stops_before_the_cli_starts(
    turns: int, meter: Meter | None, active_s: float, expected: str | None
) -> None:
    limits = Limits(max_turns=5, timeout_s=60)
    early = early_stop(limits, turns=turns, meter=meter, active_s=active_s)
    assert (early and early[0]) == expected
    assert early is None or early[1].endswith(".")
