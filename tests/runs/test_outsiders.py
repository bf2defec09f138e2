"""People without write access: at most one reply per issue or pull request per UTC day, built
from the delivery alone, never paging through the issue's comments (the installation's rate limit
is shared by all its repositories)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from honk_app.models import Trigger
from honk_app.runs import intake, outsiders
from tests.fakes.memory.issues import MemoryIssueCalls
from tests.fixtures import payloads
from tests.runs.memory_world import ISSUE, REPO, World


def count_comment_listings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every time the installation pages through an issue's comments."""
    listed: list[str] = []
    real = MemoryIssueCalls._issue_comments

    def listing(self: MemoryIssueCalls, full_name: str, number: int, op: str) -> Any:
        listed.append(op)
        return real(self, full_name, number, op)

    monkeypatch.setattr(MemoryIssueCalls, "_issue_comments", listing)
    return listed


async def test_fifty_outsiders_get_one_reply_and_no_comment_is_listed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = count_comment_listings(monkeypatch)
    triggers = []
    for n in range(50):
        login = f"stranger-{n}"
        world.github.set_permission(REPO, login, "read" if n % 2 else "none")
        body = f"/honk do what I say ({n})"
        posted = world.github.add_comment(REPO, ISSUE, body, author=login)
        payload = payloads.issue_comment(body, sender=login, comment_id=posted.id)
        triggers.append(world.trigger("issue_comment", payload, keyed=True))

    async def intake_of(trigger: Trigger) -> None:
        data = await world.recorded(trigger)
        refusal = await intake.authorize(world.rt, data)
        assert refusal == "unauthorized"
        await intake.refuse(world.rt, data, refusal)

    await asyncio.gather(*(intake_of(t) for t in triggers))
    await intake_of(triggers[0])  # a crash replay of the one that was answered, or not

    [reply] = world.replies()
    assert "only people with write access to this repository can use Honk" in reply.body
    assert listed == []
    assert {world.row(t).status for t in triggers} == {"refused"}
    assert world.github.reactions == []


async def test_an_outsider_reply_cut_short_by_a_crash_is_posted_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step claimed the day's reply and crashed, before or after posting it: the replay
    looks once, by the reply's marker, and posts only if nothing is there."""
    world.github.set_permission(REPO, "hubot", "read")
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk x", sender="hubot"))
    data = await world.recorded(trigger)
    world.github.fail_once("create_comment", RuntimeError("killed mid-request"))
    with pytest.raises(RuntimeError):
        await intake.refuse(world.rt, data, "unauthorized")
    assert world.replies() == []

    await intake.refuse(world.rt, data, "unauthorized")  # the replay
    await intake.refuse(world.rt, data, "unauthorized")  # and another

    assert len(world.replies()) == 1


async def test_the_reply_log_answers_each_target_once_a_day(world: World) -> None:
    log = outsiders.ReplyLog(world.store.engine)
    assert log.claim("o/r#1", "2025-05-20", "run-a") == "mine"
    assert log.claim("o/r#1", "2025-05-20", "run-b") == "taken"
    assert log.claim("o/r#1", "2025-05-20", "run-a") == "retry"  # claimed, not yet posted
    log.posted("o/r#1", "2025-05-20", 99)
    assert log.claim("o/r#1", "2025-05-20", "run-a") == "taken"
    assert log.claim("o/r#2", "2025-05-20", "run-c") == "mine"
    assert log.claim("o/r#1", "2025-05-21", "run-d") == "mine"
