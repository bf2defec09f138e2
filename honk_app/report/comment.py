"""Pure: what people read about a run, written for a phone first.

Every text opens with one line that says what happened, then what to do next, then a short list;
details are folded in `<details>`. Pull requests: `report_pull.py`; check runs: `report_checks.py`.

Outcomes, and why each is what it is:
- VALIDATED: the repository's `test` command ran and passed; the pull request is ready for review
  (unless `draft: always` asks otherwise; the caller then sets `draft_reason`).
- UNVALIDATED: a change was pushed as a draft because the tests still fail after the feedback
  rounds, or because no `test` command is configured: with no evidence, a human must verify.
- LIMIT: the agent stopped at `max_turns`, `max_cost_usd` or the timeout; its work so far, if any,
  is a draft.
- NO_CHANGE, BLOCKED (a policy refused the push: secret or size), FAILED (an error),
  CANCELLED (`/honk stop`), UNAUTHORIZED, CONFIG_ERROR: nothing new was pushed.

Everything that comes from people, the agent or the tests is untrusted: it reaches the text only
through `text.inline`, `code` and `fenced` (see `render.py`), and every whole text gets a last
pass that redacts secrets and defuses a closing keyword formed across Honk's and untrusted words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from honk_app.models import Outcome, Phase, PhaseState, Target, Usage
from honk_app.report.render import GITHUB_URL, Site, last_pass
from honk_app.report.text import (
    code,
    cut,
    duration,
    fenced,
    folded,
    inline,
    link,
    login,
    money,
    tail,
    tokens,
)
from honk_app.safety.policy import Annotation

UNCONFINED_LINE = (
    "⚠️ Commands ran unconfined: sandboxing is off on this Honk server (`HONK_SANDBOX=off`)."
)
OUTPUT_TAIL_CHARS = 20_000
ERROR_DETAIL_CHARS = 8_000
MAX_LISTED_FILES = 100
MAX_LISTED_FAILURES = 20
MAX_LISTED_FINDINGS = 15


@dataclass(frozen=True)
class TestFailure:
    """One failing test, shaped like `junit.FailedTest`; `file` is relative to the repository."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    file: str | None = None
    line: int | None = None
    message: str = ""
    details: str = ""  # traceback or captured output
    kind: str = "failure"  # or "error"


@dataclass(frozen=True)
class ValidationView:
    """The result of the repository's test command."""

    command: str
    exit_code: int | None
    duration_s: float
    passed: bool
    output_tail: str = ""
    failures: Sequence[TestFailure] = ()
    timed_out: bool = False
    total: int | None = None  # tests run, when a report said so


@dataclass(frozen=True)
class RunLimits:
    max_turns: int
    max_cost_usd: float
    timeout_minutes: int


def _pending_phases() -> dict[Phase, PhaseState]:
    return dict.fromkeys(Phase, PhaseState.PENDING)


@dataclass
class RunView:
    """Everything the renderers show about one run; the run workflow fills it as it goes."""

    run_id: str
    target: Target
    trigger_line: str = ""
    sender: str = ""
    phases: dict[Phase, PhaseState] = field(default_factory=_pending_phases)
    waiting_for: str | None = None  # run id or link of the run ahead in the queue
    turns: int = 0
    cost_usd: float = 0.0
    usage: Usage = field(default_factory=Usage)
    current_tool: str | None = None
    outcome: Outcome | None = None
    outcome_detail: str = ""  # one sentence
    error_detail: str = ""  # shown folded, redacted again here
    pr_url: str | None = None
    pr_number: int | None = None
    pr_updated: bool = False  # the pull request existed before this run
    draft_reason: str | None = None  # set by the caller for `draft: always`
    duration_s: float = 0.0
    stopped_by: str | None = None
    agent_summary: str = ""
    validation: ValidationView | None = None
    policy_findings: list[str] = field(default_factory=list)
    policy_annotations: list[Annotation] = field(default_factory=list)
    changed_files: list[tuple[str, int, int]] = field(default_factory=list)  # (path, +, -)
    changed_files_total: int = 0  # every changed file, listed or not; 0: len(changed_files)
    limits: RunLimits | None = None
    agent: str = "builtin"
    model: str = ""
    log_url: str | None = None
    unconfined: bool = False  # commands ran without the sandbox (HONK_SANDBOX=off)
    egress_refused: list[str] = field(default_factory=list)  # "host: reason" the proxy refused
    notes: list[str] = field(default_factory=list)  # one sentence each: what a reader should know
    github_url: str = GITHUB_URL  # the host links may point to (Settings.web_url)


def site(view: RunView) -> Site:
    """Where the view's text is published: links may stay links only to this host and repo."""
    return Site(view.github_url, view.target.full_name)


# --- markers ---------------------------------------------------------------------------------

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,200}")
_MARKER = re.compile(r"<!-- honk:run=([A-Za-z0-9][A-Za-z0-9._:-]{0,200}) -->")


def run_marker(run_id: str) -> str:
    """The hidden HTML comment by which Honk finds its own comment for a run again."""
    if not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"run id {run_id!r} cannot go into a marker")
    return f"<!-- honk:run={run_id} -->"


def find_run_marker(body: str | None) -> str | None:
    """The run id in a body Honk wrote; callers must also check that Honk is the author."""
    match = _MARKER.search(body or "")
    return match.group(1) if match else None


# --- shared phrases ---------------------------------------------------------------------------

_WORKING = {
    Phase.QUEUED: "🪿 Honk is queued…",
    Phase.WORKSPACE: "🪿 Honk is getting the code…",
    Phase.AGENT: "🪿 Honk is working on this…",
    Phase.VALIDATION: "🪿 Honk is running the tests…",
    Phase.PULL_REQUEST: "🪿 Honk is opening a pull request…",
}
_NEXT_STEP = {
    Outcome.UNVALIDATED: "Check the draft, or reply `/honk <what to change>` to continue.",
    Outcome.LIMIT: "Reply `/honk retry` to go on, or raise the limits in `.github/honk.yml`.",
    Outcome.NO_CHANGE: "Reply `/honk <more detail>` if something should change.",
    Outcome.BLOCKED: "Nothing was pushed; see the findings below.",
    Outcome.FAILED: "Reply `/honk retry` to try again.",
    Outcome.CANCELLED: "Reply `/honk retry` to start again.",
    Outcome.UNAUTHORIZED: "Ask someone with write access to comment `/honk`.",
    Outcome.CONFIG_ERROR: "Fix `.github/honk.yml` on the default branch, then reply `/honk retry`.",
}


def is_draft(view: RunView) -> bool:
    return draft_reason(view) is not None


def draft_reason(view: RunView) -> str | None:
    """Why the pull request is a draft, as one sentence; None when it is ready for review."""
    if view.draft_reason:
        return inline(view.draft_reason, site=site(view))
    if view.outcome is Outcome.LIMIT:
        detail = f" ({inline(view.outcome_detail, 200, site(view))})" if view.outcome_detail else ""
        return f"Honk stopped at a limit before finishing{detail}; this is the work so far."
    if view.outcome is not Outcome.UNVALIDATED:
        return None
    if view.validation is None:
        return (
            "No test command is configured (`test` in `.github/honk.yml`), so nothing verified it."
        )
    return f"The tests fail: {test_result(view.validation)}."


def test_result(validation: ValidationView) -> str:
    """`pytest -q` passed in 12s / exited with 1 after 12s, 3 of 120 tests failed."""
    took = duration(validation.duration_s)
    command = code(validation.command)
    if validation.passed:
        return f"{command} passed in {took}"
    if validation.timed_out:
        result = f"{command} timed out after {took}"
    else:
        result = f"{command} exited with {validation.exit_code} after {took}"
    failed = len(validation.failures)
    if failed:
        of = f" of {validation.total:,}" if validation.total else ""
        result += (
            f", {failed:,}{of} test{'s' if failed + (validation.total or 0) > 1 else ''} failed"
        )
    return result


def headline(view: RunView) -> str:
    """The first line anyone reads: what Honk is doing, or what it did."""
    outcome, pr = view.outcome, _pr_ref(view)
    if outcome is None:
        if view.waiting_for:
            return f"⏳ Waiting for {_waiting_ref(view.waiting_for)} to finish; this one is next."
        active = [p for p, s in view.phases.items() if s is PhaseState.ACTIVE]
        return _WORKING[active[-1]] if active else "🪿 Honk is on it…"
    if outcome is Outcome.VALIDATED:
        return f"✅ {pr}, tests pass." if pr else "✅ Tests pass."
    if outcome is Outcome.UNVALIDATED:
        why = "no tests ran" if view.validation is None else "tests fail"
        return f"🟡 {pr}: {why}." if pr else f"🟡 Not verified: {why}."
    if outcome is Outcome.LIMIT:
        if pr:
            return f"🟡 Stopped at a limit; {pr[0].lower()}{pr[1:]} with the work so far."
        return "🟡 Stopped at a limit before making a change."
    if outcome is Outcome.CANCELLED:
        who = f" by @{login(view.stopped_by)}" if login(view.stopped_by) else ""
        return f"⏹️ Stopped{who}."
    if outcome is Outcome.FAILED:
        detail = (
            inline(view.outcome_detail, 250, site(view)).rstrip(".") if view.outcome_detail else ""
        )
        return f"❌ Honk failed: {detail}." if detail else "❌ Honk hit an error and stopped."
    return {
        Outcome.NO_CHANGE: "➖ Finished without changing anything.",
        Outcome.BLOCKED: "⛔ Nothing pushed: the change broke a Honk policy.",
        Outcome.UNAUTHORIZED: "🔒 Honk only runs for people with write access here.",
        Outcome.CONFIG_ERROR: "⚠️ Honk could not use its configuration.",
    }[outcome]


def next_step(view: RunView) -> str | None:
    return _NEXT_STEP.get(view.outcome) if view.outcome is not None else None


def _pr_ref(view: RunView) -> str | None:
    """What happened to the pull request: `Opened draft #12`, `Updated #12`, or a push to it."""
    if view.pr_number is None:
        return None
    if view.target.is_pull_request and view.pr_number == view.target.number:
        return "Pushed to this pull request"
    verb = "Updated" if view.pr_updated else "Opened"
    return f"{verb} {'draft ' if is_draft(view) else ''}#{view.pr_number}"


def _waiting_ref(waiting_for: str) -> str:
    if waiting_for.startswith(("https://", "http://")):
        return link(waiting_for, "the run ahead")
    return f"run {code(waiting_for, 100)}"


def budget_line(view: RunView) -> str:
    """18 of 40 turns · $0.43 of $2.00"""
    limits = view.limits
    turns = f"{view.turns} of {limits.max_turns} turns" if limits else f"{view.turns} turns"
    return f"{turns} · {money(view.cost_usd)}" + (
        f" of {money(limits.max_cost_usd)}" if limits else ""
    )


def spend_line(view: RunView) -> str:
    """18 of 40 turns · $0.43 of $2.00 · 41.2k tokens in, 3.1k out · 3m 12s"""
    parts = [budget_line(view)]
    if view.usage.total_input or view.usage.output_tokens:
        parts.append(
            f"{tokens(view.usage.total_input)} tokens in, {tokens(view.usage.output_tokens)} out"
        )
    if view.duration_s:
        parts.append(duration(view.duration_s))
    return " · ".join(parts)


def changed_files_count(view: RunView) -> int:
    return max(view.changed_files_total, len(view.changed_files))


def changed_files_list(view: RunView) -> str:
    lines = [
        f"- {code(path, 150)} +{added} −{removed}"
        for path, added, removed in view.changed_files[:MAX_LISTED_FILES]
    ]
    if changed_files_count(view) > len(lines):
        lines.append(f"- … and {changed_files_count(view) - len(lines)} more")
    return "\n".join(lines)


def findings_list(view: RunView) -> str:
    lines = [f"- {inline(f, 400, site(view))}" for f in view.policy_findings[:MAX_LISTED_FINDINGS]]
    if len(view.policy_findings) > MAX_LISTED_FINDINGS:
        lines.append(f"- … and {len(view.policy_findings) - MAX_LISTED_FINDINGS} more")
    return "\n".join(lines)


def error_fold(view: RunView) -> str | None:
    if not view.error_detail.strip():
        return None
    return folded("Error details", fenced(tail(view.error_detail, ERROR_DETAIL_CHARS)))


# --- the tracking comment ------------------------------------------------------------------------

_STATE_ICON = {
    PhaseState.PENDING: "⬜",
    PhaseState.ACTIVE: "🔄",
    PhaseState.DONE: "✅",
    PhaseState.FAILED: "❌",
    PhaseState.SKIPPED: "⏭️",
}


def tracking_comment(view: RunView, *, known_secrets: Iterable[str] = ()) -> str:
    """The one comment Honk edits in place while a run goes on."""
    lines = [run_marker(view.run_id), headline(view)]
    if view.outcome_detail and view.outcome is not Outcome.FAILED:
        lines.append(inline(view.outcome_detail, site=site(view)))
    if step := next_step(view):
        lines.append(step)
    if view.unconfined:
        lines.append(UNCONFINED_LINE)
    lines += [f"ℹ️ {inline(note, site=site(view))}" for note in view.notes[:MAX_LISTED_FINDINGS]]
    if view.trigger_line.strip():
        by = f" (@{login(view.sender)})" if login(view.sender) else ""
        lines += ["", f"> {inline(view.trigger_line, site=site(view))}{by}"]
    if view.outcome is not Outcome.UNAUTHORIZED:  # nothing ran: a checklist would be noise
        lines += ["", *(_checklist_item(view, phase) for phase in Phase)]
    if view.policy_findings:
        lines += ["", "**Policy**", findings_list(view)]
    if view.egress_refused:
        refused = "\n".join(
            f"- {inline(line, site=site(view))}"
            for line in view.egress_refused[:MAX_LISTED_FINDINGS]
        )
        lines += ["", "**Network requests refused** (`HONK_EGRESS_ALLOW`)", refused]
    footer = []
    if view.outcome is not None:
        if view.pr_number is not None:
            footer.append(link(view.pr_url, f"#{view.pr_number}"))
        if view.duration_s:
            footer.append(f"⏱️ {duration(view.duration_s)}")
        if view.turns or view.cost_usd:
            footer.append(f"💰 {money(view.cost_usd)}")
    if view.log_url:
        footer.append(link(view.log_url, "full log"))
    if footer:
        lines += ["", " · ".join(footer)]
    if fold := error_fold(view):
        lines += ["", fold]
    return cut(last_pass("\n".join(lines), known_secrets))


def _checklist_item(view: RunView, phase: Phase) -> str:
    state = view.phases.get(phase, PhaseState.PENDING)
    return f"- {_STATE_ICON[state]} {_phase_text(view, phase, state)}"


def _phase_text(view: RunView, phase: Phase, state: PhaseState) -> str:
    if phase is Phase.QUEUED:
        if state is PhaseState.ACTIVE and view.waiting_for:
            return f"Queued behind {_waiting_ref(view.waiting_for)}"
        return "Queued"
    if phase is Phase.WORKSPACE:
        return "Workspace"
    if phase is Phase.AGENT:
        text = f"Agent ({inline(view.agent, 40, site(view))})"
        if state is not PhaseState.PENDING:
            text += f" · {budget_line(view)}"
        if state is PhaseState.ACTIVE and view.current_tool:
            text += f" · running {code(view.current_tool, 60)}"
        return text
    if phase is Phase.VALIDATION:
        if view.validation is not None and state in (PhaseState.DONE, PhaseState.FAILED):
            return f"Tests · {test_result(view.validation)}"
        if state is PhaseState.SKIPPED and view.validation is None:
            return "Tests · not run"
        return "Tests · running" if state is PhaseState.ACTIVE else "Tests"
    if view.pr_number is not None and state is PhaseState.DONE:
        return f"Pull request · #{view.pr_number}{' (draft)' if is_draft(view) else ''}"
    return "Pull request"
