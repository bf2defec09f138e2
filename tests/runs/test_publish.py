"""The publish step against an in-memory GitHub: one pull request per branch, a draft unless the
tests passed, and nothing opened twice when the step is repeated after a crash."""

from __future__ import annotations

from typing import Any

import pytest

from honk_app.github.errors import GitHubError
from honk_app.models import AgentOutcome, Outcome
from honk_app.runs import steps
from tests.fixtures import payloads
from tests.runs.memory_world import (
    ANTHROPIC_KEY,
    BRANCH,
    ISSUE,
    ISSUE_TITLE,
    PR,
    REPO,
    REVIEW_COMMENT_ID,
    SENDER,
    World,
    failed_tests,
    work_result,
)

PUSHED_SHA = "c0ffee" + "1" * 34
TITLE = f"Honk #{ISSUE}: {ISSUE_TITLE}"


async def publish(world: World, data: dict[str, Any], outcome: Outcome, **extra: Any) -> Any:
    """Publish work that pushed Honk's branch (GitHub then knows the branch)."""
    work = work_result(outcome, **extra)
    if work.pushed:
        work.head_sha = world.github.set_branch(REPO, work.branch, PUSHED_SHA)
    return await steps.publish(world.rt, data, work.to_json())


async def test_a_validated_run_opens_one_pull_request_ready_for_review(world: World) -> None:
    data = await world.recorded(world.trigger())

    pull = await publish(world, data, Outcome.VALIDATED)

    [opened] = world.github.pulls_in(REPO)[1:]  # #43 was there before
    assert pull == {"number": opened.number, "url": opened.html_url, "updated": False}
    assert (opened.title, opened.head_ref, opened.base_ref) == (TITLE, BRANCH, "main")
    assert not opened.draft
    assert opened.author == world.github.info.bot_login
    assert f"Fixes #{ISSUE}." in opened.body
    assert "> **Draft:**" not in opened.body
    assert opened.requested_reviewers == [SENDER]


async def test_publish_repeated_after_a_crash_leaves_one_pull_request(world: World) -> None:
    data = await world.recorded(world.trigger())
    work = work_result(Outcome.VALIDATED)
    work.head_sha = world.github.set_branch(REPO, work.branch, PUSHED_SHA)

    first = await steps.publish(world.rt, data, work.to_json())
    again = await steps.publish(world.rt, data, work.to_json())

    opened = [p for p in world.github.pulls_in(REPO) if p.head_ref == BRANCH]
    assert len(opened) == 1
    assert again is not None and first is not None
    assert (again["number"], again["url"]) == (first["number"], first["url"])
    assert again["updated"] is False  # this run opened it: the report still says "Opened"
    assert opened[0].requested_reviewers == [SENDER]


async def test_a_crash_after_the_pull_request_was_opened_does_not_open_a_second(
    world: World,
) -> None:
    data = await world.recorded(world.trigger())
    work = work_result(Outcome.UNVALIDATED)
    work.head_sha = world.github.set_branch(REPO, work.branch, PUSHED_SHA)
    world.github.fail_once("request_review", GitHubError("GitHub did not answer in time."))

    with pytest.raises(GitHubError):
        await steps.publish(world.rt, data, work.to_json())
    pull = await steps.publish(world.rt, data, work.to_json())  # DBOS runs the step again

    opened = [p for p in world.github.pulls_in(REPO) if p.head_ref == BRANCH]
    assert [p.number for p in opened] == [pull["number"]]
    assert opened[0].draft
    assert opened[0].requested_reviewers == [SENDER]


@pytest.mark.parametrize(
    ("outcome", "extra"),
    [
        (Outcome.NO_CHANGE, {}),
        (Outcome.BLOCKED, {"detail": "Nothing was pushed: the change adds a secret."}),
        (Outcome.FAILED, {"agent": AgentOutcome(stop="error", error="The API failed.")}),
        (Outcome.LIMIT, {"pushed": False, "agent": AgentOutcome(stop="max_turns")}),
    ],
    ids=["no-change", "blocked", "failed", "limit-before-a-change"],
)
async def test_nothing_pushed_opens_no_pull_request(
    world: World, outcome: Outcome, extra: dict[str, Any]
) -> None:
    data = await world.recorded(world.trigger())
    assert await publish(world, data, outcome, **extra) is None
    assert [p.number for p in world.github.pulls_in(REPO)] == [PR]
    assert world.github.writes == []


@pytest.mark.parametrize(
    ("outcome", "extra", "draft", "reason", "reference"),
    [
        (Outcome.VALIDATED, {}, False, None, "Fixes"),
        (
            Outcome.VALIDATED,
            {"draft_always": True},
            True,
            "`.github/honk.yml` asks for draft pull requests (`draft: always`).",
            "Fixes",
        ),
        (
            Outcome.UNVALIDATED,
            {},
            True,
            "No test command is configured (`test` in `.github/honk.yml`), so nothing verified it.",
            "Refs",
        ),
        (
            Outcome.UNVALIDATED,
            {"validation": failed_tests()},
            True,
            "The tests fail: `python3 -m unittest -q` exited with 1 after 2s.",
            "Refs",
        ),
        (
            Outcome.LIMIT,
            {"agent": AgentOutcome(stop="max_turns"), "detail": "The agent reached a limit."},
            True,
            "Honk stopped at a limit before finishing (The agent reached a limit.); "
            "this is the work so far.",
            "Refs",
        ),
    ],
    ids=["validated", "draft-always", "no-tests", "tests-fail", "limit"],
)
async def test_a_pull_request_is_a_draft_unless_the_tests_passed(
    world: World,
    outcome: Outcome,
    extra: dict[str, Any],
    draft: bool,
    reason: str | None,
    reference: str,
) -> None:
    data = await world.recorded(world.trigger())
    await publish(world, data, outcome, **extra)
    [opened] = [p for p in world.github.pulls_in(REPO) if p.head_ref == BRANCH]
    assert opened.draft is draft
    if reason is None:
        assert "> **Draft:**" not in opened.body
    else:
        assert f"> **Draft:** {reason}" in opened.body.splitlines()
    assert f"{reference} #{ISSUE}." in opened.body
    closing = "Fixes" if reference == "Refs" else "Refs"
    assert f"{closing} #{ISSUE}" not in opened.body


@pytest.mark.parametrize(
    ("earlier", "later", "draft"),
    [
        (Outcome.UNVALIDATED, Outcome.VALIDATED, False),
        (Outcome.VALIDATED, Outcome.UNVALIDATED, True),
    ],
    ids=["draft-then-ready", "ready-then-draft"],
)
async def test_a_later_run_on_the_same_issue_updates_its_pull_request(
    world: World, earlier: Outcome, later: Outcome, draft: bool
) -> None:
    first = await publish(world, await world.recorded(world.trigger()), earlier)
    second = await publish(world, await world.recorded(world.trigger()), later)

    [opened] = [p for p in world.github.pulls_in(REPO) if p.head_ref == BRANCH]
    assert second == {"number": first["number"], "url": first["url"], "updated": True}
    assert opened.draft is draft
    assert ("Fixes" if later is Outcome.VALIDATED else "Refs") + f" #{ISSUE}." in opened.body


async def test_the_pull_request_body_never_shows_a_secret(world: World) -> None:
    data = await world.recorded(world.trigger())
    agent = AgentOutcome(stop="done", summary=f"Used the key {ANTHROPIC_KEY} to test.")
    await publish(world, data, Outcome.VALIDATED, agent=agent)
    [opened] = [p for p in world.github.pulls_in(REPO) if p.head_ref == BRANCH]
    assert ANTHROPIC_KEY not in opened.body
    assert "- Used the key \\[REDACTED\\] to test." in opened.body.splitlines()


async def test_work_on_a_pull_request_pushes_to_it_and_opens_none(world: World) -> None:
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk fix it", is_pr=True))
    data = await world.recorded(trigger)
    work = work_result(Outcome.VALIDATED, branch=payloads.HEAD_REF)
    work.head_sha = world.github.set_branch(REPO, payloads.HEAD_REF, PUSHED_SHA)

    pull = await steps.publish(world.rt, data, work.to_json())

    assert pull == {"number": PR, "url": f"https://github.com/{REPO}/pull/{PR}", "updated": True}
    assert [p.number for p in world.github.pulls_in(REPO)] == [PR]
    assert world.github.review_comments_on(REPO, PR)[1:] == [], "no thread to answer"


async def test_a_review_comment_is_answered_in_its_thread_once(world: World) -> None:
    trigger = world.trigger("pull_request_review_comment", payloads.review_comment("/honk rename"))
    data = await world.recorded(trigger)
    work = work_result(Outcome.VALIDATED, branch=payloads.HEAD_REF)
    work.head_sha = world.github.set_branch(REPO, payloads.HEAD_REF, PUSHED_SHA)

    for _ in range(2):  # the second is a replay
        await steps.publish(world.rt, data, work.to_json())

    [reply] = world.github.review_comments_on(REPO, PR)[1:]
    assert reply.in_reply_to_id == REVIEW_COMMENT_ID
    assert reply.author == world.github.info.bot_login
    assert reply.body.startswith(
        f"Done in `{PUSHED_SHA[:7]}`: the tests pass. Details in the tracking comment on "
        f"https://github.com/{REPO}/pull/{PR}."
    )
