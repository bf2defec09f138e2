"""Pure: what a run's work concluded, in the words the tracking comment and the commit use."""

from __future__ import annotations

import uuid

import pytest

from honk_app.models import AgentOutcome, Outcome, Trigger
from honk_app.runs.outcome import (
    WorkResult,
    co_author,
    commit_message,
    located,
    no_change,
    pushed_outcome,
)
from honk_app.triggers import TriggerRules, decide
from honk_app.verify.results import ValidationResult
from tests.fixtures import payloads


def _trigger(event: str, payload: dict[str, object]) -> Trigger:
    decision = decide(event, str(uuid.uuid4()), payload, TriggerRules())
    assert isinstance(decision, Trigger), decision
    return decision


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (AgentOutcome(stop="error", error="The API failed."), (Outcome.FAILED, "The API failed.")),
        (AgentOutcome(stop="max_turns"), (Outcome.LIMIT, "The agent reached a limit (max_turns).")),
        (
            AgentOutcome(stop="done", summary="Nothing  to\nfix."),
            (Outcome.NO_CHANGE, "Nothing to fix."),
        ),
        (AgentOutcome(stop="done"), (Outcome.NO_CHANGE, "The agent made no change.")),
    ],
)
def test_no_change(agent: AgentOutcome, expected: tuple[str, str]) -> None:
    assert no_change(agent) == expected


def test_pushed_outcome_says_what_verified_the_change() -> None:
    done = AgentOutcome(stop="done")
    ran_failed = ValidationResult(ran=True, passed=False)
    assert pushed_outcome(done, ValidationResult(ran=True, passed=True), True) == (
        Outcome.VALIDATED,
        "",
    )
    assert pushed_outcome(done, None, False)[1].startswith("No test command is configured")
    assert pushed_outcome(done, ran_failed, False) == (
        Outcome.UNVALIDATED,
        "The tests still fail after the agent's fix attempts.",
    )
    timed_out = AgentOutcome(stop="timeout", error="The run timed out.")
    assert pushed_outcome(timed_out, ran_failed, False) == (Outcome.LIMIT, "The run timed out.")
    crashed = AgentOutcome(stop="error", error="The model call failed.")
    assert pushed_outcome(crashed, None, False) == (
        Outcome.UNVALIDATED,
        "The model call failed. This is the work so far.",
    )


def test_commit_message_redacts_secrets_and_names_the_run() -> None:
    trigger = _trigger("issue_comment", payloads.issue_comment("/honk fix it"))
    token = "ghs_" + "a" * 36
    message = commit_message(trigger, AgentOutcome(stop="done", summary=f"Fixed it with {token}"))
    assert token not in message
    assert message.startswith("Honk: ")
    assert message.endswith(f"Refs #{trigger.target.number}\nHonk-Run: {trigger.run_id}")
    assert co_author(trigger).endswith(f"+{trigger.sender_login}@users.noreply.github.com>")


def test_a_review_comment_says_where_it_is() -> None:
    trigger = _trigger("pull_request_review_comment", payloads.review_comment("/honk rename"))
    assert trigger.location is not None
    assert located(trigger).startswith(f"(review comment on `{trigger.location.path}`")
    plain = _trigger("issue_comment", payloads.issue_comment("/honk rename"))
    assert located(plain) == "rename"


def test_work_result_survives_json() -> None:
    result = WorkResult(outcome=Outcome.NO_CHANGE.value, changed_files=[("a.py", 1, 2)])
    assert WorkResult.from_json(result.to_json()) == result
