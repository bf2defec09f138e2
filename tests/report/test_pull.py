"""The pull request Honk opens, read as a person on a phone would read it."""

from __future__ import annotations

from honk_app.models import Outcome
from honk_app.report.comment import ValidationView
from honk_app.report.pull import pull_request_body, pull_request_title, summary_bullets
from honk_app.report.text import GITHUB_TEXT_LIMIT
from tests.report.test_comment import (
    FAILING,
    GHS_TOKEN,
    PASSING,
    PRIVATE_KEY,
    RUN_ID,
    finished,
    visible_lines,
)


def test_the_title_names_the_issue_and_fits_a_phone() -> None:
    assert pull_request_title("Login redirect is broken\n", 42) == (
        "Honk #42: Login redirect is broken"
    )
    assert pull_request_title("", 42) == "Honk #42"
    long = pull_request_title("word " * 100, 42)
    assert len(long) == 120 and long.endswith("…")
    assert GHS_TOKEN not in pull_request_title(f"leak {GHS_TOKEN}", 1)


def test_a_validated_pull_request_fixes_the_issue() -> None:
    view = finished(Outcome.VALIDATED, validation=PASSING)
    lines = visible_lines(pull_request_body(view, issue_number=42, validated=True))
    assert lines[0] == "✅ Honk made this change and the tests pass. Fixes #42."
    body = "\n".join(lines)
    assert "Refs #" not in body and "Draft" not in body
    assert "### Verification\n✅ `pytest -q` passed in 42s." in body


def test_an_unvalidated_pull_request_only_refers_to_the_issue_and_says_why_it_is_a_draft() -> None:
    view = finished(Outcome.UNVALIDATED, validation=FAILING)
    lines = visible_lines(pull_request_body(view, issue_number=42, validated=False))
    assert lines[0] == (
        "> **Draft:** The tests fail: `pytest -q` exited with 1 after 1m 13s, "
        "2 of 120 tests failed."
    )
    assert lines[2] == "🟡 Honk made this change, but the tests fail. Refs #42."
    body = "\n".join(lines)
    assert "Fixes #" not in body
    assert "- `tests/test_login.py::test_redirect`: assert 302 == 200" in body


def test_without_a_test_command_the_draft_says_nothing_was_verified() -> None:
    lines = visible_lines(
        pull_request_body(finished(Outcome.UNVALIDATED), issue_number=42, validated=False)
    )
    assert lines[0] == (
        "> **Draft:** No test command is configured (`test` in `.github/honk.yml`), "
        "so nothing verified it."
    )
    assert "⚠️ No tests ran: add a `test` command to `.github/honk.yml`." in lines


def test_a_limit_draft_says_which_limit() -> None:
    view = finished(Outcome.LIMIT, outcome_detail="Reached the limit of $2.00.")
    lines = visible_lines(pull_request_body(view, issue_number=42, validated=False))
    assert lines[0] == (
        "> **Draft:** Honk stopped at a limit before finishing (Reached the limit of \\$2.00.); "
        "this is the work so far."
    )
    assert lines[2] == "🟡 Honk stopped at a limit; this is its work so far. Refs #42."


def test_work_on_a_pull_request_refers_to_no_issue() -> None:
    view = finished(Outcome.VALIDATED, validation=PASSING)
    lines = visible_lines(pull_request_body(view, issue_number=None, validated=True))
    assert lines[0] == "✅ Honk made this change and the tests pass."


def test_the_body_lists_what_changed_spend_and_folded_details() -> None:
    view = finished(
        Outcome.VALIDATED,
        validation=PASSING,
        agent_summary="I fixed it.\n\n- Redirect to `/login` after a failed sign-in\n"
        "- Added a regression test\n",
        changed_files=[("app/login.py", 3, 1), ("tests/test_login.py", 20, 0)],
    )
    body = pull_request_body(view, issue_number=42, validated=True)
    assert (
        "### What changed\n- I fixed it.\n- Redirect to `/login` after a failed sign-in\n"
        "- Added a regression test\n" in body
    )
    assert "### Spend\n18 of 40 turns · $0.43 of $2.00 · 41.2k tokens in, 3.1k out · 3m 12s" in body
    details = body[body.index("<details><summary>Details</summary>") :]
    assert "- `app/login.py` +3 −1\n- `tests/test_login.py` +20 −0" in details
    assert f"Run `{RUN_ID}` · agent `builtin` · model `claude-sonnet-4-5`" in details
    assert details.rstrip().endswith("</details>")


def test_an_agent_summary_cannot_ping_people_close_issues_or_leak() -> None:
    summary = (
        f"Fixed it. Fixes #7, closes acme/other#3, resolves https://github.com/acme/x/issues/5. "
        f"Thanks @bob and @acme/security! <img src=https://evil.example/p.png> key {GHS_TOKEN}"
    )
    body = pull_request_body(
        finished(Outcome.VALIDATED, validation=PASSING, agent_summary=summary),
        issue_number=42,
        validated=True,
    )
    assert "Fixes issue #7" in body and "closes issue `acme/other#3`" in body
    assert "resolves issue `https://github.com/acme/x/issues/5`" in body
    assert "`@bob`" in body and "`@acme/security`" in body
    assert "<img" not in body and GHS_TOKEN not in body
    assert body.count("Fixes #") == 1


def test_summary_bullets_are_few_and_short() -> None:
    bullets = summary_bullets("\n".join(f"* change number {i} " + "x" * 400 for i in range(12)))
    assert len(bullets) == 9 and bullets[-1] == "- … and 4 more"
    assert all(len(b) <= 244 for b in bullets)
    assert summary_bullets("```\ncode\n```\n# Heading\n1. First\n2) Second") == [
        "- code",
        "- First",
        "- Second",
    ]
    assert summary_bullets("") == []


def test_huge_test_output_keeps_the_tail_and_fits() -> None:
    output = "".join(f"line {i}\n" for i in range(100_000))
    validation = ValidationView("pytest", 1, 1.0, False, output)
    body = pull_request_body(
        finished(Outcome.UNVALIDATED, validation=validation), issue_number=1, validated=False
    )
    assert len(body) <= GITHUB_TEXT_LIMIT
    assert "line 99999" in body and "line 10\n" not in body


def test_a_private_key_cut_in_half_by_the_tail_is_still_redacted() -> None:
    key_body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n" * 40
    output = (
        "x" * 50_000 + f"\n{PRIVATE_KEY.splitlines()[0]}\n{key_body}{PRIVATE_KEY.splitlines()[-1]}"
    )
    validation = ValidationView("pytest", 1, 1.0, False, output + "\n1 failed")
    body = pull_request_body(
        finished(Outcome.UNVALIDATED, validation=validation), issue_number=1, validated=False
    )
    assert "MIIEowIBAAKCAQEA" not in body
    assert "[REDACTED]\n1 failed" in body
