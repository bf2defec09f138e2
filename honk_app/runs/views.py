"""Pure: turn a trigger and a work result into the view the renderers in report.py show."""

from __future__ import annotations

from typing import Any

from honk_app.models import Outcome, Phase, PhaseState, Trigger
from honk_app.report.comment import RunLimits, RunView, TestFailure, ValidationView
from honk_app.runs.outcome import WorkResult
from honk_app.safety.policy import Annotation


def start_view(trigger: Trigger) -> RunView:
    view = RunView(
        run_id=trigger.run_id,
        target=trigger.target,
        trigger_line=trigger.command_line,
        sender=trigger.sender_login,
        github_url=trigger.repository.web_url,
    )
    view.phases[Phase.QUEUED] = PhaseState.ACTIVE
    return view


def validation_view(validation: dict[str, Any] | None) -> ValidationView | None:
    """From validate.ValidationResult.to_json(); None when no test command ran."""
    if not validation or not validation.get("ran") or validation.get("test") is None:
        return None
    test = validation["test"]
    failures = tuple(
        TestFailure(
            name=f.get("name", "test"),
            file=f.get("file"),
            line=f.get("line"),
            message=f.get("message", ""),
            details=f.get("details", ""),
            kind=f.get("kind", "failure"),
        )
        for f in validation.get("failures", ())
    )
    return ValidationView(
        command=test["command"],
        exit_code=test["exit_code"],
        duration_s=test["duration_s"],
        passed=bool(validation.get("passed")),
        output_tail=test.get("output_tail", ""),
        failures=failures,
        timed_out=bool(test.get("timed_out")),
    )


def final_view(trigger: Trigger, work: WorkResult, pull: dict[str, Any] | None) -> RunView:
    view = start_view(trigger)
    outcome = Outcome(work.outcome)
    failed_phase = _failed_phase(outcome)
    for phase in Phase:
        view.phases[phase] = PhaseState.DONE
    if pull is None:
        view.phases[Phase.PULL_REQUEST] = PhaseState.SKIPPED
    if work.validation is None or not work.validation.get("ran"):
        view.phases[Phase.VALIDATION] = PhaseState.SKIPPED
    elif not work.validation.get("passed"):
        view.phases[Phase.VALIDATION] = PhaseState.FAILED  # whatever else stopped the run
    if failed_phase is not None:
        view.phases[failed_phase] = PhaseState.FAILED
    if stopped_before_work(work):
        for phase in (Phase.WORKSPACE, Phase.AGENT):
            view.phases[phase] = PhaseState.SKIPPED
    view.outcome = outcome
    view.outcome_detail = work.outcome_detail
    view.turns = work.agent.turns
    view.cost_usd = work.agent.cost_usd
    view.usage = work.agent.usage
    view.duration_s = work.duration_s
    view.agent_summary = work.agent.summary
    view.validation = validation_view(work.validation)
    view.policy_findings = list(work.policy_findings)
    view.policy_annotations = [Annotation(**a) for a in work.annotations]
    view.changed_files = list(work.changed_files)
    view.changed_files_total = work.changed_files_total
    view.agent = work.agent_name
    view.unconfined = work.unconfined
    view.egress_refused = list(work.egress_refused)
    view.notes = list(work.notes)
    view.model = work.model
    if work.limits:
        view.limits = RunLimits(**work.limits)
    if work.draft_always and outcome is Outcome.VALIDATED:
        view.draft_reason = "`.github/honk.yml` asks for draft pull requests (`draft: always`)."
    if work.agent.error and outcome is Outcome.FAILED:
        view.error_detail = work.agent.error
    if pull is not None:
        view.pr_url = pull.get("url")
        view.pr_number = pull.get("number")
        view.pr_updated = bool(pull.get("updated"))
    return view


def stopped_before_work(work: WorkResult) -> bool:
    """A run refused before it cloned (where it would push): no agent turn, no change."""
    return (
        work.outcome == Outcome.BLOCKED.value
        and work.agent.turns == 0
        and work.validation is None
        and not work.changed_files
        and not work.pushed
    )


def _failed_phase(outcome: Outcome) -> Phase | None:
    if outcome is Outcome.UNVALIDATED:
        return Phase.VALIDATION
    if outcome in (Outcome.FAILED, Outcome.LIMIT):
        return Phase.AGENT
    if outcome is Outcome.BLOCKED:
        return Phase.PULL_REQUEST
    return None
