"""Pure: the check run Honk reports on the pushed commit, in the shapes GitHub's API takes.

Conclusions, and why:
- success: VALIDATED, the tests ran and passed.
- failure: tests that ran and failed (whatever the outcome), BLOCKED (a policy refused the push),
  FAILED (an error) and CONFIG_ERROR (the repository must fix its `.github/honk.yml`).
- neutral: NO_CHANGE, CANCELLED (stopped by someone), LIMIT (a draft for a human to carry on),
  UNVALIDATED with no test command (nothing was verified either way) and UNAUTHORIZED.
  A stopped run is `neutral`, not GitHub's `cancelled`: branch protection treats `cancelled` as a
  failing required check, and stopping Honk says nothing about the code.

GitHub caps summary and text at 65,535 characters each and takes at most 50 annotations per
request. Honk posts at most `MAX_ANNOTATIONS` (one request), blocking findings first, and says in
the summary how many it left out: 20,000 secret-looking lines must not cost 400 requests, and no
reviewer reads past the first screenful anyway.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from honk_app.models import Outcome
from honk_app.report.comment import (
    MAX_LISTED_FAILURES,
    OUTPUT_TAIL_CHARS,
    UNCONFINED_LINE,
    RunView,
    TestFailure,
    ValidationView,
    changed_files_count,
    changed_files_list,
    error_fold,
    findings_list,
    headline,
    next_step,
    site,
    spend_line,
    test_result,
)
from honk_app.report.render import GITHUB, Site, defuse_closing, last_pass, plain_lines, untrusted
from honk_app.report.text import (
    code,
    cut,
    fenced,
    folded,
    inline,
    link,
    login,
    money,
    plain,
    shorten,
    tail,
)
from honk_app.safety.policy import Annotation

CHECK_NAME = "Honk"
ANNOTATIONS_PER_REQUEST = 50
MAX_ANNOTATIONS = 50
TITLE_CHARS = 120
ANNOTATION_MESSAGE_CHARS = 4_000
ANNOTATION_DETAILS_CHARS = 16_000

Conclusion = Literal["success", "failure", "neutral", "cancelled"]

RETRY_ACTION: dict[str, str] = {
    "label": "Retry",  # GitHub: at most 20 characters
    "description": "Run Honk again on the same request",  # at most 40
    "identifier": "retry",  # at most 20; comes back in `check_run.requested_action`
}


@dataclass(frozen=True)
class CheckOutput:
    """A check run's `output`; `annotations` holds them all, send them in `annotation_batches`."""

    title: str
    summary: str
    text: str
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def payload(self, annotations: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        """The `output` object for one create or update request, with one batch of annotations."""
        return {
            "title": self.title,
            "summary": self.summary,
            "text": self.text,
            "annotations": list(annotations),
        }


def check_conclusion(outcome: Outcome, validation: ValidationView | None = None) -> Conclusion:
    """What the check run concludes for a finished run (see the module docstring)."""
    if validation is not None and not validation.passed:
        return "failure"
    if outcome is Outcome.VALIDATED:
        return "success"
    if outcome in (Outcome.BLOCKED, Outcome.FAILED, Outcome.CONFIG_ERROR):
        return "failure"
    return "neutral"


def check_run_actions(view: RunView) -> list[dict[str, str]]:
    """Buttons under a finished check run: `Retry` starts the same request again."""
    return [dict(RETRY_ACTION)] if view.outcome is not None else []


def check_run_output(view: RunView, *, known_secrets: Iterable[str] = ()) -> CheckOutput:
    """Title, a 1–3 line summary, folded details, and every annotation."""
    secrets = list(known_secrets)
    summary = [headline(view)]
    if view.outcome_detail and view.outcome is not Outcome.FAILED:
        summary.append(inline(view.outcome_detail, site=site(view)))
    elif step := next_step(view):
        summary.append(step)
    if view.unconfined:
        summary.append(UNCONFINED_LINE)
    pr = f"{link(view.pr_url, f'#{view.pr_number}')} · " if view.pr_number is not None else ""
    notes, left_out = capped_annotations(view)
    shown = f" · {len(notes)} annotations shown, {left_out:,} left out" if left_out else ""
    summary.append(pr + spend_line(view) + shown)
    return CheckOutput(
        title=last_pass(check_title(view), secrets),
        summary=cut(last_pass("\n".join(summary), secrets)),
        text=cut(last_pass(_details(view), secrets)),
        annotations=[_last_pass_values(note, secrets) for note in notes],
    )


def _last_pass_values(note: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    return {
        key: last_pass(val, secrets) if isinstance(val, str) else val for key, val in note.items()
    }


def check_title(view: RunView) -> str:
    outcome, validation = view.outcome, view.validation
    if outcome is None:
        if view.waiting_for:
            return "Waiting for the run ahead"
        return f"Working · {view.turns} turns · {money(view.cost_usd)}"
    if validation is not None and not validation.passed:
        failed = len(validation.failures)
        title = (
            f"Tests fail: {failed} failure{'s' if failed != 1 else ''}" if failed else "Tests fail"
        )
    elif outcome is Outcome.VALIDATED:
        title = "Tests pass"
    elif outcome is Outcome.UNVALIDATED:
        title = "Not verified: no test command configured"
    elif outcome is Outcome.CANCELLED and login(view.stopped_by):
        title = f"Stopped by @{login(view.stopped_by)}"
    else:
        title = _TITLES[outcome]
    if view.pr_number is not None:
        title += f" · #{view.pr_number}"
    return shorten(" ".join(title.split()), TITLE_CHARS)


_TITLES = {
    Outcome.LIMIT: "Stopped at a limit",
    Outcome.NO_CHANGE: "No changes",
    Outcome.BLOCKED: "Blocked by policy",
    Outcome.FAILED: "Honk failed",
    Outcome.CANCELLED: "Stopped",
    Outcome.UNAUTHORIZED: "Not authorized",
    Outcome.CONFIG_ERROR: "Configuration error",
}


def _details(view: RunView) -> str:
    parts: list[str] = []
    if view.validation is not None:
        parts += ["### Tests", _tests_section(view.validation, site(view))]
    if view.policy_findings:
        parts += ["### Policy", findings_list(view)]
    if view.changed_files:
        parts += [f"### Changed files ({changed_files_count(view)})", changed_files_list(view)]
    model = f" · model {code(view.model, 60)}" if view.model else ""
    log = f" · {link(view.log_url, 'full log')}" if view.log_url else ""
    parts += [
        "### Run",
        f"{spend_line(view)}\n\nRun {code(view.run_id)} · agent {code(view.agent, 40)}{model}{log}",
    ]
    if fold := error_fold(view):
        parts.append(fold)
    return "\n\n".join(parts)


def _tests_section(validation: ValidationView, on: Site) -> str:
    icon = "✅" if validation.passed else "❌"
    lines = [f"{icon} {test_result(validation)}."]
    if validation.failures:
        lines.append("")
    for failure in validation.failures[:MAX_LISTED_FAILURES]:
        where = f" ({code(_location(failure), 160)})" if failure.file else ""
        message = f": {inline(failure.message, 300, on)}" if failure.message.strip() else ""
        lines.append(f"- {code(failure.name, 150)}{where}{message}")
    if len(validation.failures) > MAX_LISTED_FAILURES:
        lines.append(f"- … and {len(validation.failures) - MAX_LISTED_FAILURES} more")
    if validation.output_tail.strip():
        output = fenced(tail(validation.output_tail, OUTPUT_TAIL_CHARS))
        lines += ["", folded("Test output (last lines)", output)]
    return "\n".join(lines)


def _location(failure: TestFailure) -> str:
    return f"{failure.file}:{failure.line}" if failure.line else str(failure.file)


def capped_annotations(
    view: RunView, limit: int = MAX_ANNOTATIONS
) -> tuple[list[dict[str, Any]], int]:
    """At most `limit` annotations, and how many were left out.

    Chosen before any is rendered, so a flood costs a count, not a rendering each. Policy
    failures (a secret blocks the push) come first, then failing tests, then warnings.
    """
    where = site(view)
    failures = view.validation.failures if view.validation is not None else []
    tests = [failure for failure in failures if _repository_path(failure.file)]
    policy = [note for note in view.policy_annotations if _repository_path(note.path)]
    ranked: list[tuple[int, int, TestFailure | Annotation]] = [
        (1, i, failure) for i, failure in enumerate(tests)
    ]
    ranked += [
        (0 if note.level == "failure" else 2, len(tests) + i, note) for i, note in enumerate(policy)
    ]
    kept = heapq.nsmallest(limit, ranked, key=lambda item: item[:2])
    notes = [
        _failure_annotation(item, where)
        if isinstance(item, TestFailure)
        else _policy_annotation(item, where)
        for _, _, item in kept
    ]
    return notes, len(ranked) - len(kept)


def failure_annotations(
    validation: ValidationView | None, where: Site = GITHUB
) -> list[dict[str, Any]]:
    """One `failure` annotation per failing test whose file is known and inside the repository."""
    if validation is None:
        return []
    failures = validation.failures
    return [_failure_annotation(f, where) for f in failures if _repository_path(f.file)]


def _failure_annotation(failure: TestFailure, where: Site) -> dict[str, Any]:
    """Annotations are plain text; the test's name, message and output are untrusted (the agent
    wrote the tests), so they go through the plain-text renderer, the output verbatim but defused.
    """
    path = _repository_path(failure.file)
    assert path is not None
    line = failure.line if failure.line and failure.line > 0 else 1
    note = _annotation(
        path,
        line,
        "failure",
        f"Test failed: {plain(failure.name, 200, where)}",
        failure.message.strip() or "This test failed.",
        where,
    )
    if failure.details.strip():
        note["raw_details"] = defuse_closing(tail(failure.details, ANNOTATION_DETAILS_CHARS))
    return note


def policy_annotations(view: RunView) -> list[dict[str, Any]]:
    where = site(view)
    notes = view.policy_annotations
    return [_policy_annotation(note, where) for note in notes if _repository_path(note.path)]


def _policy_annotation(note: Annotation, where: Site) -> dict[str, Any]:
    path = _repository_path(note.path)
    assert path is not None
    title = plain(note.title, 255, where)
    return _annotation(path, max(note.line, 1), note.level, title, note.message, where)


def _annotation(
    path: str, line: int, level: str, title: str, message: str, where: Site
) -> dict[str, Any]:
    """`title` is rendered already; `message` is untrusted plain text, kept line by line."""
    return {
        "path": path,
        "start_line": line,
        "end_line": line,
        "annotation_level": level,
        "title": shorten(title, 255),
        "message": plain_lines(untrusted(message, ANNOTATION_MESSAGE_CHARS, one_line=False), where),
    }


def _repository_path(path: str | None) -> str | None:
    """A path GitHub can place in the diff: relative, without `..`; None otherwise."""
    if not path:
        return None
    path = path.strip().removeprefix("./")
    if not path or path.startswith("/") or ".." in path.split("/"):
        return None
    return path


def annotation_batches(
    annotations: Sequence[dict[str, Any]], size: int = ANNOTATIONS_PER_REQUEST
) -> list[list[dict[str, Any]]]:
    """Split annotations into requests GitHub accepts (50 each)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [list(annotations[i : i + size]) for i in range(0, len(annotations), size)]
