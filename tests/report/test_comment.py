"""The tracking comment and run markers, read as a person on a phone would read them."""

from __future__ import annotations

import pytest

from honk_app.models import Outcome, Phase, PhaseState, Target, Usage
from honk_app.report.comment import (
    RunLimits,
    RunView,
    TestFailure,
    ValidationView,
    find_run_marker,
    run_marker,
    tracking_comment,
)
from honk_app.report.pull import pull_request_body
from honk_app.report.text import GITHUB_TEXT_LIMIT

RUN_ID = "honk-72d4c1e0-5f1a-11ef-9e0b-3c7d2a1b9f00-c2213"
GHS_TOKEN = "ghs_" + "Zq7Lm2Np9R" * 3 + "t4Vx6Y"  # built at runtime: no token-shaped literal
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "-----END RSA PRIVATE KEY-----"
)

LOGIN_TESTS = "tests/test_login.py"
PASSING = ValidationView("pytest -q", 0, 42.0, True, "120 passed in 41.7s", total=120)
FAILING = ValidationView(
    "pytest -q",
    1,
    73.4,
    False,
    "....F..F\nFAILED tests/test_login.py::test_redirect\n2 failed, 118 passed",
    failures=[
        TestFailure("tests/test_login.py::test_redirect", LOGIN_TESTS, 31, "assert 302 == 200"),
        TestFailure("tests/test_login.py::test_logout", LOGIN_TESTS, 55, "KeyError: 'sid'"),
    ],
    total=120,
)


def make_view(**changes: object) -> RunView:
    view = RunView(
        run_id=RUN_ID,
        target=Target("acme", "shop", 42),
        trigger_line="/honk fix the login redirect",
        sender="alice",
        limits=RunLimits(max_turns=40, max_cost_usd=2.0, timeout_minutes=30),
        turns=18,
        cost_usd=0.4312,
        usage=Usage(input_tokens=20_000, output_tokens=3_100, cache_read_input_tokens=21_200),
        agent="builtin",
        model="claude-sonnet-4-5",
        duration_s=192,
        log_url="https://honk.example.com/runs/" + RUN_ID,
    )
    for name, value in changes.items():
        setattr(view, name, value)
    return view


def finished(outcome: Outcome, **changes: object) -> RunView:
    phases = dict.fromkeys(Phase, PhaseState.DONE)
    defaults: dict[str, object] = {"outcome": outcome, "phases": phases}
    if outcome in (Outcome.VALIDATED, Outcome.UNVALIDATED, Outcome.LIMIT):
        defaults |= {"pr_number": 57, "pr_url": "https://github.com/acme/shop/pull/57"}
    return make_view(**(defaults | changes))


def visible_lines(body: str) -> list[str]:
    lines = body.splitlines()
    assert lines[0] == run_marker(RUN_ID)
    return lines[1:]


# --- markers -------------------------------------------------------------------------------------


def test_the_marker_round_trips_through_every_rendered_body() -> None:
    assert run_marker(RUN_ID) == f"<!-- honk:run={RUN_ID} -->"
    view = finished(Outcome.VALIDATED, validation=PASSING)
    assert find_run_marker(tracking_comment(view)) == RUN_ID
    assert find_run_marker(pull_request_body(view, issue_number=42, validated=True)) == RUN_ID


def test_bodies_without_a_marker_have_no_run() -> None:
    assert find_run_marker("/honk fix it") is None
    assert find_run_marker(None) is None
    assert find_run_marker("<!-- honk:run= -->") is None


@pytest.mark.parametrize("bad", ["", "a b", "x-->y", "id\n", "-x"])
def test_run_ids_that_could_break_out_of_the_comment_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        run_marker(bad)


# --- the tracking comment while working ----------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "first_line"),
    [
        (Phase.QUEUED, "🪿 Honk is queued…"),
        (Phase.WORKSPACE, "🪿 Honk is getting the code…"),
        (Phase.AGENT, "🪿 Honk is working on this…"),
        (Phase.VALIDATION, "🪿 Honk is running the tests…"),
        (Phase.PULL_REQUEST, "🪿 Honk is opening a pull request…"),
    ],
)
def test_the_first_line_says_what_honk_is_doing_now(active: Phase, first_line: str) -> None:
    phases = dict.fromkeys(Phase, PhaseState.PENDING)
    for phase in Phase:
        if phase is active:
            phases[phase] = PhaseState.ACTIVE
            break
        phases[phase] = PhaseState.DONE
    assert visible_lines(tracking_comment(make_view(phases=phases)))[0] == first_line


def test_a_queued_run_says_which_run_it_waits_for() -> None:
    phases = dict.fromkeys(Phase, PhaseState.PENDING) | {Phase.QUEUED: PhaseState.ACTIVE}
    body = tracking_comment(make_view(phases=phases, waiting_for="honk-older-run"))
    lines = visible_lines(body)
    assert lines[0] == "⏳ Waiting for run `honk-older-run` to finish; this one is next."
    assert "- 🔄 Queued behind run `honk-older-run`" in lines
    linked = tracking_comment(make_view(waiting_for="https://github.com/acme/shop/issues/42#c1"))
    assert "[the run ahead](https://github.com/acme/shop/issues/42#c1)" in linked


def test_the_checklist_shows_each_phase_state_and_the_spend_so_far() -> None:
    phases = {
        Phase.QUEUED: PhaseState.DONE,
        Phase.WORKSPACE: PhaseState.DONE,
        Phase.AGENT: PhaseState.ACTIVE,
        Phase.VALIDATION: PhaseState.PENDING,
        Phase.PULL_REQUEST: PhaseState.PENDING,
    }
    body = tracking_comment(make_view(phases=phases, current_tool="str_replace_based_edit_tool"))
    assert [line for line in body.splitlines() if line.startswith("- ")] == [
        "- ✅ Queued",
        "- ✅ Workspace",
        "- 🔄 Agent (builtin) · 18 of 40 turns · $0.43 of $2.00 · running "
        "`str_replace_based_edit_tool`",
        "- ⬜ Tests",
        "- ⬜ Pull request",
    ]
    assert "[Full log]" not in body and "[full log](https://honk.example.com/runs/" in body


def test_the_checklist_marks_failed_and_skipped_phases() -> None:
    phases = dict.fromkeys(Phase, PhaseState.DONE) | {
        Phase.VALIDATION: PhaseState.SKIPPED,
        Phase.PULL_REQUEST: PhaseState.FAILED,
    }
    body = tracking_comment(make_view(phases=phases, outcome=Outcome.FAILED))
    assert "- ⏭️ Tests · not run" in body
    assert "- ❌ Pull request" in body
    failing = dict.fromkeys(Phase, PhaseState.DONE) | {Phase.VALIDATION: PhaseState.FAILED}
    body = tracking_comment(finished(Outcome.UNVALIDATED, phases=failing, validation=FAILING))
    assert "- ❌ Tests · `pytest -q` exited with 1 after 1m 13s, 2 of 120 tests failed" in body
    assert "- ✅ Pull request · #57 (draft)" in body


def test_the_triggering_line_is_quoted_and_cannot_trigger_or_inject() -> None:
    view = make_view(
        trigger_line="/honk fix it <!-- honk:run=evil --> <img src=x> cc @bob, fixes #9",
        sender="alice",
    )
    body = tracking_comment(view)
    quote = next(line for line in body.splitlines() if line.startswith("> "))
    assert quote == ("> /honk fix it &lt;img src=x> cc `@bob`, fixes issue #9 (@alice)")
    assert not any(line.startswith("/honk") for line in body.splitlines())
    assert find_run_marker(body) == RUN_ID


# --- the tracking comment when finished ----------------------------------------------------------


@pytest.mark.parametrize(
    ("view", "first_line"),
    [
        (finished(Outcome.VALIDATED, validation=PASSING), "✅ Opened #57, tests pass."),
        (
            finished(Outcome.VALIDATED, validation=PASSING, pr_updated=True),
            "✅ Updated #57, tests pass.",
        ),
        (
            finished(Outcome.VALIDATED, validation=PASSING, draft_reason="`draft: always` is set."),
            "✅ Opened draft #57, tests pass.",
        ),
        (
            finished(
                Outcome.VALIDATED,
                validation=PASSING,
                target=Target("acme", "shop", 57, is_pull_request=True),
            ),
            "✅ Pushed to this pull request, tests pass.",
        ),
        (finished(Outcome.UNVALIDATED, validation=FAILING), "🟡 Opened draft #57: tests fail."),
        (finished(Outcome.UNVALIDATED), "🟡 Opened draft #57: no tests ran."),
        (
            finished(Outcome.LIMIT, outcome_detail="Reached the limit of 40 turns."),
            "🟡 Stopped at a limit; opened draft #57 with the work so far.",
        ),
        (
            finished(Outcome.LIMIT, pr_number=None, pr_url=None),
            "🟡 Stopped at a limit before making a change.",
        ),
        (finished(Outcome.NO_CHANGE), "➖ Finished without changing anything."),
        (finished(Outcome.BLOCKED), "⛔ Nothing pushed: the change broke a Honk policy."),
        (
            finished(Outcome.FAILED, outcome_detail="Cloning failed because GitHub answered 502."),
            "❌ Honk failed: Cloning failed because GitHub answered 502.",
        ),
        (finished(Outcome.FAILED), "❌ Honk hit an error and stopped."),
        (finished(Outcome.CANCELLED, stopped_by="carol"), "⏹️ Stopped by @carol."),
        (finished(Outcome.CANCELLED), "⏹️ Stopped."),
        (
            finished(Outcome.UNAUTHORIZED),
            "🔒 Honk only runs for people with write access here.",
        ),
        (finished(Outcome.CONFIG_ERROR), "⚠️ Honk could not use its configuration."),
    ],
)
def test_every_outcome_opens_with_one_line_saying_what_happened(
    view: RunView, first_line: str
) -> None:
    body = tracking_comment(view)
    assert visible_lines(body)[0] == first_line
    assert len(body) <= GITHUB_TEXT_LIMIT


def test_every_outcome_renders_everything() -> None:
    for outcome in Outcome:
        view = finished(outcome, validation=FAILING, outcome_detail="Something happened.")
        body = tracking_comment(view)
        pr = pull_request_body(view, issue_number=42, validated=False)
        assert find_run_marker(body) == find_run_marker(pr) == RUN_ID
        assert "⏱️ 3m 12s · 💰 $0.43" in body


def test_a_refused_sender_sees_no_checklist_and_no_spend() -> None:
    view = make_view(
        outcome=Outcome.UNAUTHORIZED, turns=0, cost_usd=0.0, duration_s=0, log_url=None
    )
    body = tracking_comment(view)
    assert visible_lines(body) == [
        "🔒 Honk only runs for people with write access here.",
        "Ask someone with write access to comment `/honk`.",
        "",
        "> /honk fix the login redirect (@alice)",
    ]


def test_logins_cannot_smuggle_markup() -> None:
    body = tracking_comment(make_view(sender="eve<script>", outcome=Outcome.CANCELLED))
    assert "(@evescript)" in body and "<script>" not in body
    assert tracking_comment(make_view(sender="dependabot[bot]")).count("(@dependabot[bot])") == 1


def test_the_next_step_follows_the_outcome() -> None:
    lines = visible_lines(
        tracking_comment(
            finished(
                Outcome.CONFIG_ERROR,
                outcome_detail="`.github/honk.yml`: `max_turns` must be an integer, got 'lots'.",
            )
        )
    )
    assert lines[1] == "`.github/honk.yml`: `max_turns` must be an integer, got 'lots'."
    assert lines[2] == "Fix `.github/honk.yml` on the default branch, then reply `/honk retry`."
    failed = visible_lines(tracking_comment(finished(Outcome.FAILED, outcome_detail="Boom.")))
    assert failed[1] == "Reply `/honk retry` to try again."


def test_the_end_says_pull_request_duration_and_cost() -> None:
    body = tracking_comment(finished(Outcome.VALIDATED, validation=PASSING))
    assert body.splitlines()[-1] == (
        "[#57](https://github.com/acme/shop/pull/57) · ⏱️ 3m 12s · 💰 $0.43 · "
        f"[full log](https://honk.example.com/runs/{RUN_ID})"
    )


def test_policy_findings_are_listed_when_blocked() -> None:
    finding = "`config/app.env` line 4 adds what looks like a GitHub token (`ghp_… (44 chars)`)."
    body = tracking_comment(finished(Outcome.BLOCKED, policy_findings=[finding]))
    assert f"**Policy**\n- {finding}" in body


def test_error_detail_is_folded_and_redacted() -> None:
    detail = f"Traceback (most recent call last):\n  token={GHS_TOKEN}\n{PRIVATE_KEY}\nboom"
    view = finished(
        Outcome.FAILED,
        outcome_detail=f"Pushing failed with {GHS_TOKEN}.",
        error_detail=detail,
    )
    body = tracking_comment(view)
    assert GHS_TOKEN not in body
    assert "MIIEowIBAAKCAQEA" not in body
    assert "BEGIN RSA PRIVATE KEY" not in body
    assert visible_lines(body)[0] == "❌ Honk failed: Pushing failed with \\[REDACTED\\]."
    assert "<details><summary>Error details</summary>" in body
    assert "token=[REDACTED]\n[REDACTED]\nboom" in body


def test_known_secret_values_are_redacted_wherever_they_appear() -> None:
    webhook_secret = "not-a-pattern-but-secret-123"
    view = finished(Outcome.FAILED, error_detail=f"signature key {webhook_secret}")
    body = tracking_comment(view, known_secrets=[webhook_secret])
    assert webhook_secret not in body and "signature key [REDACTED]" in body


def test_a_huge_error_keeps_its_end_and_fits() -> None:
    view = finished(Outcome.FAILED, error_detail="x" * 200_000 + "\nthe cause")
    body = tracking_comment(view)
    assert len(body) <= GITHUB_TEXT_LIMIT
    assert "earlier characters not shown" in body and "the cause\n```" in body


def test_many_findings_are_counted_after_the_first_fifteen() -> None:
    view = finished(Outcome.BLOCKED, policy_findings=[f"Finding {i}." for i in range(400)])
    body = tracking_comment(view)
    assert "- Finding 14.\n- … and 385 more" in body
    assert "Finding 15." not in body


def test_notes_are_listed_as_safe_single_lines() -> None:
    view = RunView(
        run_id="honk-1",
        target=Target("o", "r", 1),
        notes=["The issue was edited after @mallory asked; fixes #9 ![x](https://evil/x)"],
    )
    body = tracking_comment(view)
    note = next(line for line in body.splitlines() if line.startswith("ℹ️"))
    assert "`@mallory`" in note and "fixes issue #9" in note
    assert note.endswith("!\\[x\\](`https://evil/x`)")
