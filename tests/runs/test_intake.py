"""Intake's steps against an in-memory GitHub: who may ask, the replies, the one tracking comment.

Each step may run again after a crash; a replay must leave what a person sees as it was.
"""

from __future__ import annotations

from typing import Any

import pytest
from dbos import DBOS

from honk_app.models import Command, Trigger, work_workflow_id
from honk_app.runs import intake
from tests.fixtures import payloads
from tests.runs.memory_world import (
    ISSUE,
    ISSUE_COMMENT_ID,
    PR,
    REPO,
    REVIEW_COMMENT_ID,
    SENDER,
    World,
    headline,
    seen,
)

ON_PR = payloads.issue_comment("/honk fix it", is_pr=True)


async def test_record_is_idempotent(world: World) -> None:
    trigger = world.trigger()
    data = trigger.to_json()
    for _ in range(2):
        await intake.record(world.rt, data)
    [row] = world.store.for_target(trigger.target.key)
    assert (row.run_id, row.status, row.command, row.sender) == (
        trigger.run_id,
        "queued",
        "run",
        SENDER,
    )
    assert row.trigger_json == data


# ---- react --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "payload", "subject"),
    [
        ("issues", payloads.labeled("honk"), ("issue", ISSUE)),
        ("issue_comment", payloads.issue_comment("/honk fix"), ("comment", ISSUE_COMMENT_ID)),
        (
            "pull_request_review_comment",
            payloads.review_comment("/honk rename"),
            ("review_comment", REVIEW_COMMENT_ID),
        ),
    ],
    ids=["label", "issue-comment", "review-comment"],
)
async def test_react_puts_one_eyes_on_what_asked(
    world: World, event: str, payload: dict[str, Any], subject: tuple[str, int]
) -> None:
    data = await world.recorded(world.trigger(event, payload))
    for _ in range(2):  # the second is a replay: GitHub dedupes reactions
        await intake.react(world.rt, data)
    assert [(r.subject, r.subject_id, r.content) for r in world.github.reactions] == [
        (*subject, "eyes")
    ]


async def test_a_deleted_comment_does_not_stop_the_run(world: World) -> None:
    world.github.comments = [c for c in world.github.comments if c.id != ISSUE_COMMENT_ID]
    data = await world.recorded(world.trigger())
    await intake.react(world.rt, data)  # GitHub answers 404; the run goes on
    assert world.github.reactions == []


# ---- authorize ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "refusal"),
    [
        ("admin", None),
        ("maintain", None),
        ("write", None),
        ("triage", "unauthorized"),
        ("read", "unauthorized"),
        ("none", "unauthorized"),
        (None, "unauthorized"),  # GitHub does not know the login as a collaborator
    ],
)
async def test_authorize_needs_write_access(
    world: World, level: str | None, refusal: str | None
) -> None:
    payload = payloads.issue_comment("/honk fix", sender="hubot")
    if level is not None:
        world.github.set_permission(REPO, "hubot", level)
    data = await world.recorded(world.trigger("issue_comment", payload))
    assert await intake.authorize(world.rt, data) == refusal


@pytest.mark.parametrize(
    ("event", "payload", "fork_in_github", "refusal"),
    [
        ("pull_request_review", payloads.from_fork(payloads.review()), None, "fork"),
        ("issue_comment", ON_PR, "mona/hello-world", "fork"),  # read from GitHub
        ("issue_comment", ON_PR, "deleted", "fork"),
        ("issue_comment", ON_PR, None, None),
        ("issue_comment", payloads.issue_comment("/honk help", is_pr=True), "mona/x", None),
    ],
    ids=["review-from-fork", "comment-on-fork-pr", "deleted-fork", "same-repo", "help-on-fork"],
)
async def test_authorize_refuses_work_on_a_fork(
    world: World,
    event: str,
    payload: dict[str, Any],
    fork_in_github: str | None,
    refusal: str | None,
) -> None:
    if fork_in_github is not None:
        [pull] = [p for p in world.github.pulls_in(REPO) if p.number == PR]
        pull.head_repo = None if fork_in_github == "deleted" else fork_in_github
    data = await world.recorded(world.trigger(event, payload))
    assert await intake.authorize(world.rt, data) == refusal


# ---- refuse -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "payload", "number", "sentence"),
    [
        (
            "unauthorized",
            payloads.issue_comment("/honk fix", sender="hubot"),
            ISSUE,
            "Sorry @hubot, only people with write access to this repository can use Honk.",
        ),
        ("fork", ON_PR, PR, "Honk does not work on pull requests from forks."),
    ],
    ids=["unauthorized", "fork"],
)
async def test_refuse_replies_once(
    world: World, reason: str, payload: dict[str, Any], number: int, sentence: str
) -> None:
    trigger = world.trigger("issue_comment", payload)
    data = await world.recorded(trigger)
    for _ in range(2):  # the second is a replay
        await intake.refuse(world.rt, data, reason)
    [reply] = world.replies(number)
    assert reply.body.splitlines()[:3] == [f"> `{trigger.command_line}`", "", sentence]
    assert world.tracking_comments(number) == []
    row = world.row(trigger)
    assert (row.status, row.outcome) == ("refused", reason)


async def test_a_refused_label_is_recorded_without_a_reply(world: World) -> None:
    trigger = world.trigger("issues", payloads.labeled("honk", sender="hubot"))
    data = await world.recorded(trigger)
    await intake.refuse(world.rt, data, "unauthorized")
    assert world.github.writes == []
    assert world.row(trigger).status == "refused"


# ---- announce -----------------------------------------------------------------------------------


async def test_announce_creates_one_tracking_comment_and_finds_it_again(world: World) -> None:
    trigger = world.trigger()
    data = await world.recorded(trigger)

    first = await intake.announce(world.rt, data)
    before = seen(world)
    again = await intake.announce(world.rt, data)  # a replay finds it by its marker

    assert again == first
    assert seen(world) == before
    body = world.tracking_comment()
    assert body.splitlines()[:4] == [
        f"<!-- honk:run={trigger.run_id} -->",
        "🪿 Honk is queued…",
        "",
        f"> {trigger.command_line} (@{SENDER})",
    ]
    row = world.row(trigger)
    assert (row.status, row.comment_id) == ("queued", first)


async def test_announce_never_edits_a_comment_someone_else_wrote(world: World) -> None:
    """A person quoting Honk's marker does not make their comment Honk's."""
    trigger = world.trigger()
    quoted = f"Look: <!-- honk:run={trigger.run_id} -->"
    world.github.add_comment(REPO, ISSUE, quoted, author="octocat")
    world.github.add_comment(REPO, ISSUE, quoted, author="other-ci[bot]", via_app_id=15368)
    data = await world.recorded(trigger)

    comment_id = await intake.announce(world.rt, data)

    mine = [c for c in world.github.comments_on(REPO, ISSUE) if c.id == comment_id]
    assert mine[0].author == world.github.info.bot_login
    assert [c.body for c in world.github.comments_on(REPO, ISSUE)].count(quoted) == 2


async def test_a_second_run_waits_for_the_first(world: World) -> None:
    ahead = world.trigger()
    await intake.announce(world.rt, await world.recorded(ahead))
    trigger = world.trigger()
    data = await world.recorded(trigger)

    await intake.announce(world.rt, data)

    [_, body] = [c.body for c in world.tracking_comments()]
    assert headline(body) == f"⏳ Waiting for run `{ahead.run_id}` to finish; this one is next."
    assert world.row(trigger).status == "waiting"


async def test_a_run_stopped_while_it_was_announced_stays_stopped(world: World) -> None:
    trigger = world.trigger()
    data = await world.recorded(trigger)
    await world.store.aupdate(trigger.run_id, status="cancelled", outcome="cancelled")

    await intake.announce(world.rt, data)

    assert world.row(trigger).status == "cancelled"
    assert await intake.is_stopped(world.rt, data)


# ---- commands -----------------------------------------------------------------------------------


async def test_help_replies_once(world: World) -> None:
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk help"))
    assert trigger.command is Command.HELP
    data = await world.recorded(trigger)
    for _ in range(2):
        await intake.reply_help(world.rt, data)
    [reply] = world.replies()
    assert "Here is what `/honk` can do." in reply.body.splitlines()
    assert (world.row(trigger).status, world.row(trigger).outcome) == ("succeeded", "help")


async def test_status_lists_the_runs_on_the_issue(world: World) -> None:
    earlier = world.trigger()
    await intake.announce(world.rt, await world.recorded(earlier))
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk status"))
    data = await world.recorded(trigger)

    await intake.reply_status(world.rt, data)

    [reply] = world.replies()
    lines = reply.body.splitlines()
    assert "0 running, 1 queued." in lines
    assert any(line.startswith(f"- `{earlier.run_id}`: queued, asked by mona") for line in lines)


async def test_retry_with_nothing_to_retry_answers_with_help(world: World) -> None:
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk retry"))
    data = await world.recorded(trigger)
    assert await intake.resolve_retry(world.rt, data) is None
    [reply] = world.replies()
    assert "Here is what `/honk` can do." in reply.body.splitlines()
    assert world.row(trigger).outcome == "nothing to retry"


async def test_retry_repeats_the_last_request_that_was_allowed(world: World) -> None:
    allowed = world.trigger("issue_comment", payloads.issue_comment("/honk fix the README"))
    assert await intake.authorize(world.rt, await world.recorded(allowed)) is None
    unchecked = world.trigger("issue_comment", payloads.issue_comment("/honk push it all"))
    await world.recorded(unchecked)  # newer, but Honk crashed before its permission was checked
    refused = world.trigger("issue_comment", payloads.issue_comment("/honk rm -rf", sender="x"))
    await intake.refuse(world.rt, await world.recorded(refused), "unauthorized")
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk retry"))
    data = await world.recorded(trigger)

    retried = await intake.resolve_retry(world.rt, data)

    assert retried is not None
    assert retried["command"] == "run"
    assert retried["instruction"] == "fix the README"
    assert retried["retry_of"] == allowed.run_id
    assert retried["delivery_id"] == trigger.delivery_id
    assert world.row(trigger).command == "run"


async def test_stop_with_nothing_running_says_so(world: World) -> None:
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk stop"))
    data = await world.recorded(trigger)
    assert await intake.stop_target(world.rt, data) == 0
    [reply] = world.replies()
    assert "Nothing to stop: no Honk run is queued or running here." in reply.body.splitlines()


async def test_stop_marks_the_running_run_stopped_where_people_look(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DBOS's cancellation itself is end to end (tests/e2e/test_commands.py); here, what the
    step tells people once DBOS has been asked to cancel."""
    cancelled: list[str] = []

    async def cancel(workflow_id: str) -> None:
        cancelled.append(workflow_id)

    monkeypatch.setattr(DBOS, "cancel_workflow_async", cancel)
    running = world.trigger("issue_comment", ON_PR)
    await intake.announce(world.rt, await world.recorded(running))
    await world.store.aupdate(running.run_id, status="running", head_sha=payloads.HEAD_SHA)
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk stop", is_pr=True))
    data = await world.recorded(trigger)

    assert await intake.stop_target(world.rt, data) == 1

    assert cancelled == [work_workflow_id(running.run_id)]
    assert headline(world.tracking_comment(PR)) == f"⏹️ Stopped by @{SENDER}."
    [check] = world.honk_checks(payloads.HEAD_SHA)
    assert (check.status, check.conclusion) == ("completed", "neutral")
    assert world.row(running).status == "cancelled"
    [reply] = world.replies(PR)
    assert f"Stopped 1 run at @{SENDER}'s request." in reply.body.splitlines()


async def test_intake_failure_is_recorded_and_told(world: World) -> None:
    trigger = world.trigger()
    data = await world.recorded(trigger)
    assert await intake.authorize(world.rt, data) is None
    await intake.intake_failed(world.rt, data, "GitHub did not answer in time.")
    [reply] = world.replies()
    assert reply.body.splitlines()[:3] == [
        f"> `{trigger.command_line}`",
        "",
        "Honk could not start: GitHub did not answer in time.",
    ]
    row = world.row(trigger)
    assert (row.status, row.summary) == ("failed", "GitHub did not answer in time.")


async def test_retry_runs_under_the_id_its_comment_gave_it(world: World) -> None:
    allowed = world.trigger("issue_comment", payloads.issue_comment("/honk fix the README"))
    assert await intake.authorize(world.rt, await world.recorded(allowed)) is None
    payload = payloads.issue_comment("/honk retry", comment_id=2131000077)
    trigger = world.trigger("issue_comment", payload, keyed=True)
    assert trigger.run_id == "honk-ic2131000077"

    retried = await intake.resolve_retry(world.rt, await world.recorded(trigger))

    assert retried is not None
    assert Trigger.from_json(retried).run_id == trigger.run_id


async def test_an_intake_failure_before_permission_was_known_is_not_told(world: World) -> None:
    """Anyone may comment `/honk`: while GitHub fails, a flood of them gets no replies."""
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk x", sender="hubot"))
    data = await world.recorded(trigger)
    await intake.intake_failed(world.rt, data, "GitHub did not answer in time.")
    assert world.github.writes == []
    assert (world.row(trigger).status, world.row(trigger).summary) == (
        "failed",
        "GitHub did not answer in time.",
    )
