"""The run's steps (configure, report, fail) against an in-memory GitHub, without DBOS.

Each test reads what a person would: the tracking comment, the check run, the run's record. A
crash replay is the same step awaited again with the same inputs; it must change nothing twice.
Publishing is in test_publish.py, intake in test_intake.py, the work step in test_work.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from honk_app.models import AgentOutcome, Outcome
from honk_app.repo_config import RepoConfig
from honk_app.runs import checks, intake, steps
from honk_app.runs.views import start_view
from honk_app.workspace.git import GitError
from tests.fixtures import payloads
from tests.runs.memory_world import (
    PR,
    REPO,
    SENDER,
    World,
    failed_tests,
    headline,
    seen,
    work_result,
)

CONFIG = f"{REPO}/.github/honk.yml"
ORG_REPO = "octo-org/.github"
ORG_CONFIG = f"{ORG_REPO}/.github/honk.yml"


# ---- configure ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("repo_yml", "org_yml", "org_installed", "source", "max_turns"),
    [
        (None, None, False, "defaults", 40),
        ("", None, False, CONFIG, 40),  # an empty file is the defaults
        ("max_turns: 5\n", None, False, CONFIG, 5),
        (None, "max_turns: 7\n", True, ORG_CONFIG, 7),
        (None, "max_turns: 7\n", False, "defaults", 40),  # the owner's .github is not installed
        ("max_turns: 5\n", "max_turns: 7\n", True, CONFIG, 5),  # the repository's own wins
    ],
    ids=["none", "empty", "repo", "owner", "owner-not-installed", "repo-over-owner"],
)
async def test_configure_reads_the_repository_then_its_owner_then_defaults(
    world: World,
    repo_yml: str | None,
    org_yml: str | None,
    org_installed: bool,
    source: str,
    max_turns: int,
) -> None:
    if repo_yml is not None:
        world.github.set_file(REPO, ".github/honk.yml", repo_yml)
    if org_yml is not None:
        installation = payloads.INSTALLATION_ID if org_installed else 99
        world.github.add_repo(
            ORG_REPO, installation_id=installation, files={".github/honk.yml": org_yml}
        )
    trigger = world.trigger()
    data = await world.recorded(trigger)

    result = await steps.configure(world.rt, data, None)

    assert result["source"] == source
    config = RepoConfig.model_validate(result["config"])
    assert config.max_turns == max_turns
    assert config.protected_paths == [".github/workflows/**"]
    assert world.row(trigger).status == "running"
    assert world.store.audit_trail(trigger.run_id) == [
        ("config", {"source": source, "config": result["config"]})
    ]
    assert world.github.writes == [], "a good configuration is read, nothing is written"


async def test_configure_reads_the_default_branch_only(world: World) -> None:
    world.github.set_branch(REPO, "wip")
    world.github.set_file(REPO, ".github/honk.yml", "max_turns: [\n", branch="wip")
    data = await world.recorded(world.trigger())
    result = await steps.configure(world.rt, data, None)
    assert result["source"] == "defaults"


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("max_turns: lots\n", f"`{CONFIG}`: `max_turns` must be an integer, got 'lots'."),
        (
            "test: [\n",
            f"`{CONFIG}` is not valid YAML: expected the node content, but found "
            "'&lt;stream end>' at line 2, column 1.",
        ),
        ("- a\n- b\n", f"`{CONFIG}` must be a mapping of `key: value` lines, got a list."),
        ("max_turnz: 5\n", f"`{CONFIG}`: unknown key `max_turnz` (did you mean `max_turns`?)"),
        (
            "max_turns: 0\nmodel: 3\n",
            f"`{CONFIG}`: `max_turns` must be at least 1, got 0 (and 1 more problem).",
        ),
    ],
    ids=["type", "yaml", "shape", "unknown-key", "two-problems"],
)
async def test_an_invalid_configuration_is_one_sentence_in_the_tracking_comment(
    world: World, text: str, sentence: str
) -> None:
    world.github.set_file(REPO, ".github/honk.yml", text)
    trigger = world.trigger()
    data = await world.recorded(trigger)
    comment_id = await intake.announce(world.rt, data)

    result = await steps.configure(world.rt, data, comment_id)

    assert "error" in result and "config" not in result
    body = world.tracking_comment()
    lines = body.splitlines()
    assert lines[1] == "⚠️ Honk could not use its configuration."
    assert lines[2] == sentence
    assert lines[3] == "Fix `.github/honk.yml` on the default branch, then reply `/honk retry`."
    row = world.row(trigger)
    assert (row.status, row.outcome) == ("failed", "config_error")
    assert row.summary == result["error"]
    assert [kind for kind, _ in world.store.audit_trail(trigger.run_id)] == ["config"]


async def test_a_configuration_error_without_a_tracking_comment_posts_one(world: World) -> None:
    """The run's comment id may be unknown (None): the step finds or posts it by its marker."""
    world.github.set_file(REPO, ".github/honk.yml", "max_turns: lots\n")
    data = await world.recorded(world.trigger())
    await steps.configure(world.rt, data, None)
    await steps.configure(world.rt, data, None)  # replayed after a crash
    assert headline(world.tracking_comment()) == "⚠️ Honk could not use its configuration."


@pytest.mark.parametrize("level", ["read", "none"])
async def test_a_requester_who_lost_write_access_while_queued_gets_no_run(
    world: World, level: str
) -> None:
    trigger = world.trigger()
    data = await world.recorded(trigger)
    comment_id = await intake.announce(world.rt, data)
    world.github.set_permission(REPO, SENDER, level)  # removed while the run waited

    result = await steps.configure(world.rt, data, comment_id)

    assert "config" not in result
    body = world.tracking_comment()  # the mention is shown, not sent
    assert f"`@{SENDER}` no longer has write access here, so this run did not start." in body
    row = world.row(trigger)
    assert (row.status, row.outcome) == ("refused", "unauthorized")


async def test_a_stopped_run_does_not_start(world: World) -> None:
    world.github.set_file(REPO, ".github/honk.yml", "max_turns: lots\n")
    trigger = world.trigger()
    data = await world.recorded(trigger)
    comment_id = await intake.announce(world.rt, data)
    await world.store.aupdate(trigger.run_id, status="cancelled", outcome="cancelled")
    writes = list(world.github.writes)

    result = await steps.configure(world.rt, data, comment_id)

    assert result == {"error": "stopped before it started"}
    assert world.row(trigger).status == "cancelled"
    assert world.github.writes == writes, "a stopped run touches nothing on GitHub"
    assert headline(world.tracking_comment()) == "🪿 Honk is queued…"


# ---- report -------------------------------------------------------------------------------------

PUSHED_SHA = "c0ffee" + "0" * 34


@pytest.mark.parametrize(
    ("outcome", "extra", "expected_headline", "status", "conclusion"),
    [
        (Outcome.VALIDATED, {}, "✅ Opened #{pr}, tests pass.", "succeeded", "success"),
        (Outcome.UNVALIDATED, {}, "🟡 Opened draft #{pr}: no tests ran.", "succeeded", "neutral"),
        (
            Outcome.UNVALIDATED,
            {"validation": failed_tests()},
            "🟡 Opened draft #{pr}: tests fail.",
            "succeeded",
            "failure",
        ),
        (
            Outcome.LIMIT,
            {"agent": AgentOutcome(stop="max_turns", turns=40, cost_usd=0.12)},
            "🟡 Stopped at a limit; opened draft #{pr} with the work so far.",
            "succeeded",
            "neutral",
        ),
        (Outcome.NO_CHANGE, {}, "➖ Finished without changing anything.", "succeeded", None),
        (
            Outcome.BLOCKED,
            {"detail": "Nothing was pushed: the change adds a secret."},
            "⛔ Nothing pushed: the change broke a Honk policy.",
            "succeeded",
            None,
        ),
        (
            Outcome.FAILED,
            {"agent": AgentOutcome(stop="error", error="The model call failed."), "detail": "x."},
            "❌ Honk failed: x.",
            "failed",
            None,
        ),
    ],
    ids=["validated", "unvalidated", "tests-fail", "limit", "no-change", "blocked", "failed"],
)
async def test_report_ends_the_tracking_comment_with_the_outcome(
    world: World,
    outcome: Outcome,
    extra: dict[str, Any],
    expected_headline: str,
    status: str,
    conclusion: str | None,
) -> None:
    trigger = world.trigger()
    data = await world.recorded(trigger)
    comment_id = await intake.announce(world.rt, data)
    work = work_result(outcome, **extra)
    if work.pushed:
        work.head_sha = world.github.set_branch(REPO, work.branch, PUSHED_SHA)
    pull = await steps.publish(world.rt, data, work.to_json())

    await steps.report(world.rt, data, comment_id, work.to_json(), pull)

    body = world.tracking_comment()
    number = pull["number"] if pull else None
    assert headline(body) == expected_headline.format(pr=number)
    if pull is not None:
        assert body.splitlines()[-1] == f"[#{number}]({pull['url']}) · 💰 $0.12"
    assert "🔄" not in body and "⬜" not in body, "every phase of a finished run is settled"
    row = world.row(trigger)
    assert (row.status, row.outcome) == (status, outcome.value)
    assert row.pr_url == (pull["url"] if pull else None)
    honk_checks = world.honk_checks()
    if conclusion is None:
        assert honk_checks == []  # nothing was pushed on an issue: no commit to check
    else:
        [check] = honk_checks
        assert (check.head_sha, check.status, check.conclusion) == (
            PUSHED_SHA,
            "completed",
            conclusion,
        )
        assert check.external_id == trigger.run_id
        assert [a["identifier"] for a in check.actions] == ["retry"]


async def test_report_completes_the_check_on_the_pull_requests_old_and_new_head(
    world: World,
) -> None:
    """On a pull request, work started on its head (check in progress) and pushed a new one."""
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk fix it", is_pr=True))
    data = await world.recorded(trigger)
    comment_id = await intake.announce(world.rt, data)
    await world.store.aupdate(trigger.run_id, head_sha=payloads.HEAD_SHA)
    gh = await world.github.installation(trigger.installation_id)
    await checks.start_in_progress(world.rt, gh, trigger, payloads.HEAD_SHA, start_view(trigger))
    assert [c.status for c in world.honk_checks()] == ["in_progress"]
    new_sha = world.github.set_branch(REPO, payloads.HEAD_REF)
    work = work_result(Outcome.VALIDATED, head_sha=new_sha, branch=payloads.HEAD_REF)
    pull = await steps.publish(world.rt, data, work.to_json())

    await steps.report(world.rt, data, comment_id, work.to_json(), pull)

    assert headline(world.tracking_comment(PR)) == "✅ Pushed to this pull request, tests pass."
    assert len(world.honk_checks()) == 2
    by_sha = {c.head_sha: (c.status, c.conclusion) for c in world.honk_checks()}
    assert by_sha == {
        payloads.HEAD_SHA: ("completed", "success"),
        new_sha: ("completed", "success"),
    }
    assert len(world.github.pulls_in(REPO)) == 1, "no new pull request for a pull request"


async def test_report_repeated_after_a_crash_changes_nothing(world: World) -> None:
    trigger = world.trigger()
    data = await world.recorded(trigger)
    comment_id = await intake.announce(world.rt, data)
    work = work_result(Outcome.VALIDATED)
    work.head_sha = world.github.set_branch(REPO, work.branch, PUSHED_SHA)
    pull = await steps.publish(world.rt, data, work.to_json())
    await steps.report(world.rt, data, comment_id, work.to_json(), pull)
    before, row = seen(world), world.row(trigger)

    await steps.report(world.rt, data, comment_id, work.to_json(), pull)

    assert seen(world) == before
    assert len(world.tracking_comments()) == 1
    assert len(world.honk_checks()) == 1
    after = world.row(trigger)
    assert (after.status, after.outcome, after.pr_url) == (row.status, row.outcome, row.pr_url)


# ---- fail ---------------------------------------------------------------------------------------

TOKEN = "ghs_" + "Z" * 36


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (RuntimeError("boom"), "boom."),
        (RuntimeError("Already a sentence."), "Already a sentence."),
        (RuntimeError("first line\n   second line"), "first line second line."),
        (RuntimeError(""), "RuntimeError."),
        (GitError("git could not fetch: timed out."), "git could not fetch: timed out."),
        (RuntimeError(f"push failed with {TOKEN}"), "push failed with [REDACTED]."),
    ],
    ids=["bare", "sentence", "lines", "empty", "git", "token"],
)
def test_describe_error_is_one_readable_sentence(error: Exception, sentence: str) -> None:
    assert steps.describe_error(error, []) == sentence


async def test_fail_shows_one_sentence_with_secrets_redacted(world: World) -> None:
    settings = world.rt.settings
    assert settings.WEBHOOK_SECRET is not None and settings.ANTHROPIC_API_KEY is not None
    secrets = [
        settings.WEBHOOK_SECRET.get_secret_value(),
        settings.ANTHROPIC_API_KEY.get_secret_value(),
    ]
    trigger = world.trigger()
    data = await world.recorded(trigger)
    comment_id = await intake.announce(world.rt, data)
    error = RuntimeError(
        f"The proxy refused\n  key {secrets[1]} and secret {secrets[0]}\n  with token {TOKEN}"
    )

    sentence = steps.describe_error(error, world.rt.known_secrets)
    await steps.fail(world.rt, data, comment_id, sentence)

    expected = "The proxy refused key [REDACTED] and secret [REDACTED] with token [REDACTED]."
    assert sentence == expected
    body = world.tracking_comment()
    # markdown-escaped brackets: `[REDACTED]` must never open a link or an image
    assert headline(body) == "❌ Honk failed: " + expected.replace("[REDACTED]", "\\[REDACTED\\]")
    assert "Reply `/honk retry` to try again." in body
    row = world.row(trigger)
    assert (row.status, row.outcome, row.summary) == ("failed", "failed", expected)
    shown = [c.body for c in world.github.comments] + [repr(world.store.audit_trail(row.run_id))]
    for secret in [*secrets, TOKEN]:
        assert not any(secret in text for text in shown)


async def test_fail_completes_the_open_check_run_once(world: World) -> None:
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk fix it", is_pr=True))
    data = await world.recorded(trigger)
    comment_id = await intake.announce(world.rt, data)
    await world.store.aupdate(trigger.run_id, head_sha=payloads.HEAD_SHA)
    gh = await world.github.installation(trigger.installation_id)
    await checks.start_in_progress(world.rt, gh, trigger, payloads.HEAD_SHA, start_view(trigger))

    for _ in range(2):  # the second is a replay
        await steps.fail(world.rt, data, comment_id, "GitHub did not answer in time.")

    [check] = world.honk_checks(payloads.HEAD_SHA)
    assert (check.status, check.conclusion) == ("completed", "failure")
    assert check.output["title"] == "Honk failed"
    assert headline(world.tracking_comment(PR)) == "❌ Honk failed: GitHub did not answer in time."
