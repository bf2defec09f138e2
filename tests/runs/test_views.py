"""Pure: the phases a finished run shows agree with what happened to it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from honk_app.models import Outcome, Phase, PhaseState, Trigger
from honk_app.runs.outcome import WorkResult
from honk_app.runs.views import final_view
from honk_app.triggers import TriggerRules, decide
from tests.fixtures import payloads

PASSED = {
    "ran": True,
    "passed": True,
    "test": {"command": "pytest", "exit_code": 0, "duration_s": 1},
}
FAILED = {
    "ran": True,
    "passed": False,
    "test": {"command": "pytest", "exit_code": 1, "duration_s": 1},
}
PULL = {"number": 7, "url": "https://github.com/o/r/pull/7"}


def _trigger() -> Trigger:
    decision = decide(
        "issue_comment", str(uuid.uuid4()), payloads.issue_comment("/honk go"), TriggerRules()
    )
    assert isinstance(decision, Trigger)
    return decision


@pytest.mark.parametrize(
    ("outcome", "validation", "pull", "tests", "pull_request", "agent"),
    [
        (Outcome.VALIDATED, PASSED, PULL, PhaseState.DONE, PhaseState.DONE, PhaseState.DONE),
        (Outcome.UNVALIDATED, FAILED, PULL, PhaseState.FAILED, PhaseState.DONE, PhaseState.DONE),
        # Blocked: nothing was pushed, and that is the failure, not a skip.
        (Outcome.BLOCKED, PASSED, None, PhaseState.DONE, PhaseState.FAILED, PhaseState.DONE),
        # Failing tests never show a tick, whatever else stopped the run.
        (Outcome.BLOCKED, FAILED, None, PhaseState.FAILED, PhaseState.FAILED, PhaseState.DONE),
        (Outcome.LIMIT, FAILED, None, PhaseState.FAILED, PhaseState.SKIPPED, PhaseState.FAILED),
        (Outcome.NO_CHANGE, None, None, PhaseState.SKIPPED, PhaseState.SKIPPED, PhaseState.DONE),
    ],
)
def test_the_phases_say_what_happened(
    outcome: Outcome,
    validation: dict[str, Any] | None,
    pull: dict[str, Any] | None,
    tests: PhaseState,
    pull_request: PhaseState,
    agent: PhaseState,
) -> None:
    work = WorkResult(outcome=outcome.value, validation=validation)
    view = final_view(_trigger(), work, pull)
    assert view.phases[Phase.VALIDATION] is tests
    assert view.phases[Phase.PULL_REQUEST] is pull_request
    assert view.phases[Phase.AGENT] is agent


def test_a_run_refused_before_its_workspace_shows_what_never_ran() -> None:
    sentence = "Honk does not push to `main`: it is this repository's default branch."
    work = WorkResult(
        outcome=Outcome.BLOCKED.value, outcome_detail=sentence, policy_findings=[sentence]
    )
    view = final_view(_trigger(), work, None)
    assert view.outcome_detail == sentence
    assert {phase: view.phases[phase] for phase in Phase} == {
        Phase.QUEUED: PhaseState.DONE,
        Phase.WORKSPACE: PhaseState.SKIPPED,
        Phase.AGENT: PhaseState.SKIPPED,
        Phase.VALIDATION: PhaseState.SKIPPED,
        Phase.PULL_REQUEST: PhaseState.FAILED,
    }
