"""Pure: the pull request Honk opens or updates, written for a phone first.

The body opens with the outcome; `Fixes #N` only when the tests passed, so merging closes only
verified work, and it is the only closing keyword Honk writes: it is added after the last pass
that defuses every other one. The agent's summary is untrusted (it read the issue) and is made
safe like all other text. The title is plain text: squash-merging makes it a commit subject on
the default branch, where GitHub reads closing keywords and mentions too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from honk_app.models import Outcome
from honk_app.report.comment import (
    MAX_LISTED_FAILURES,
    OUTPUT_TAIL_CHARS,
    UNCONFINED_LINE,
    RunView,
    changed_files_count,
    changed_files_list,
    draft_reason,
    findings_list,
    headline,
    run_marker,
    site,
    spend_line,
    test_result,
)
from honk_app.report.render import GITHUB, Site, last_pass
from honk_app.report.text import code, cut, fenced, folded, inline, link, plain, shorten, tail


def pull_request_title(issue_title: str, number: int, site: Site = GITHUB) -> str:
    """`Honk #12: Fix the login redirect`, short enough for a phone's list of pull requests."""
    title = plain(issue_title, 110, site)
    return shorten(f"Honk #{number}: {title}" if title else f"Honk #{number}", 120)


def pull_request_body(
    view: RunView,
    *,
    issue_number: int | None,
    validated: bool,
    known_secrets: Iterable[str] = (),
) -> str:
    """Outcome first; `Fixes #N` only when tests passed, so a merge closes only verified work."""
    lines = [run_marker(view.run_id)]
    if reason := draft_reason(view):
        lines += [f"> **Draft:** {reason}", ""]
    if view.unconfined:
        lines += [UNCONFINED_LINE, ""]
    lines.append(_pull_request_outcome(view, validated))
    ref = ""
    if issue_number is not None:
        ref = f" {'Fixes' if validated else 'Refs'} #{issue_number}."
    head = last_pass("\n".join(lines), known_secrets)
    lines = []
    bullets = summary_bullets(view.agent_summary, site=site(view))
    if bullets:
        lines += ["", "### What changed", *bullets]
    lines += ["", "### Verification", _verification(view)]
    if view.policy_findings:
        lines.append(findings_list(view))
    lines += ["", "### Spend", spend_line(view)]
    details = []
    if view.changed_files:
        count = changed_files_count(view)
        details += [f"**Changed files ({count})**", changed_files_list(view), ""]
    model = f" · model {code(view.model, 60)}" if view.model else ""
    details.append(f"Run {code(view.run_id)} · agent {code(view.agent, 40)}{model}")
    if view.log_url:
        details.append(link(view.log_url, "Full log"))
    if view.validation is not None and view.validation.output_tail.strip():
        tail_text = tail(view.validation.output_tail, OUTPUT_TAIL_CHARS)
        details += ["", "**Test output (last lines)**", "", fenced(tail_text)]
    lines += ["", folded("Details", "\n".join(details))]
    return cut(head + ref + last_pass("\n".join(lines), known_secrets))


def _pull_request_outcome(view: RunView, validated: bool) -> str:
    if validated:
        return "✅ Honk made this change and the tests pass."
    if view.outcome is Outcome.LIMIT:
        return "🟡 Honk stopped at a limit; this is its work so far."
    if view.outcome is None:
        return "🪿 Honk is still working on this."
    if view.outcome is Outcome.UNVALIDATED or view.validation is not None:
        why = "no tests ran" if view.validation is None else "the tests fail"
        return f"🟡 Honk made this change, but {why}."
    return headline(view)


def _verification(view: RunView) -> str:
    validation = view.validation
    if validation is None:
        return "⚠️ No tests ran: add a `test` command to `.github/honk.yml`."
    icon = "✅" if validation.passed else "❌"
    lines = [f"{icon} {test_result(validation)}."]
    for failure in validation.failures[:MAX_LISTED_FAILURES]:
        message = f": {inline(failure.message, 200, site(view))}" if failure.message.strip() else ""
        lines.append(f"- {code(failure.name, 150)}{message}")
    if len(validation.failures) > MAX_LISTED_FAILURES:
        lines.append(f"- … and {len(validation.failures) - MAX_LISTED_FAILURES} more")
    return "\n".join(lines)


_BULLET = re.compile(r"^(?:[-*+•]|\d+[.)])\s+")


def summary_bullets(
    summary: str, max_bullets: int = 8, max_chars: int = 240, *, site: Site = GITHUB
) -> list[str]:
    """The agent's own summary as a few short bullets (untrusted: it read the issue)."""
    lines = [line.strip() for line in summary.splitlines()]
    lines = [line for line in lines if line and not line.startswith(("```", "#", "<!--"))]
    if len(lines) == 1:
        lines = re.split(r"(?<=[.!?])\s+", lines[0])
    items = [inline(_BULLET.sub("", line), max_chars, site) for line in lines]
    items = [item for item in items if item]
    extra = len(items) - max_bullets
    bullets = [f"- {item}" for item in items[:max_bullets]]
    return bullets + ([f"- … and {extra} more"] if extra > 0 else [])
