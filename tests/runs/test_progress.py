"""The tracking comment paced by the installation's quota, against the fake GitHub on loopback.

What is asserted is what GitHub saw: which edits of the comment arrived, in which order, and in
which of GitHub's rate-limit windows (a call after the reset is counted in a new window).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from honk_app.agent.base import Progress
from honk_app.github.app import GitHubApp
from honk_app.github.errors import RetryPolicy
from honk_app.github.installation import InstallationClient
from honk_app.models import Command, Repository, Target, Trigger, Usage
from honk_app.runs import progress as progress_module
from honk_app.runs.progress import TrackingProgress
from tests.fakes.github import FakeGitHub
from tests.fakes.github_ratelimit import RateWindow, set_rate_limit
from tests.fakes.github_state import RecordedRequest

REPO = "octo/app"
LOW = "GitHub's API quota for this installation is low ("
SPACED = "): Honk updates this comment less often."
WAITING = "): Honk is waiting for it to reset before starting."
RARELY = "): Honk updates this comment rarely until then."
QUOTA = "GitHub's API quota"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo(REPO, installation_id=1)
        yield fake


@pytest.fixture
def app(fake: FakeGitHub) -> GitHubApp:
    retry = RetryPolicy(server_error_retries=0, rate_limit_retries=0, backoff_s=0, max_wait_s=1)
    return GitHubApp(
        app_id=fake.app_id, private_key_pem=fake.private_key_pem, api_url=fake.url, retry=retry
    )


class Run:
    """One run's tracking comment on the fake, and the edits GitHub received for it."""

    def __init__(self, fake: FakeGitHub, gh: InstallationClient) -> None:
        self.fake = fake
        number = fake.add_issue(REPO, title="Make it faster")
        self.comment = fake.add_comment(REPO, number, body="Honk is on it.", via_app=True)
        owner, name = REPO.split("/")
        trigger = Trigger(
            command=Command.RUN,
            source="issue_comment",
            target=Target(owner, name, number),
            repository=Repository(REPO, f"https://github.com/{REPO}.git", "main"),
            installation_id=1,
            delivery_id="d-quota-1",
            sender_login="mona",
            sender_id=1,
        )
        # with no interval of its own, every change is an edit while the quota is ample
        self.progress = TrackingProgress(
            gh, trigger, self.comment.id, known_secrets=[], min_interval_s=0.0
        )

    def edits(self) -> list[RecordedRequest]:
        path = f"/repos/{REPO}/issues/comments/{self.comment.id}"
        return [r for r in self.fake.request_log if r.method == "PATCH" and r.path == path]

    def bodies(self) -> list[str]:
        return [edit_body(edit) for edit in self.edits()]

    async def turn(self, turn: int) -> None:
        await self.progress.on_agent_progress(Progress(turn, 0.01 * turn, Usage()))


def edit_body(edit: RecordedRequest) -> str:
    body: Any = edit.json
    assert isinstance(body, dict)
    return str(body["body"])


def core_window(fake: FakeGitHub) -> RateWindow:
    return fake.rate_windows["installation:1:core"]


@pytest.fixture
async def run(fake: FakeGitHub, app: GitHubApp) -> AsyncIterator[Run]:
    yield Run(fake, await app.installation(1))
    await app.aclose()


async def test_when_the_quota_runs_low_edits_are_spaced_out_and_the_comment_says_so(
    fake: FakeGitHub, run: Run
) -> None:
    await run.progress.phase_agent()
    for turn in (1, 2, 3):
        await run.turn(turn)
    assert len(run.edits()) == 4  # one edit per turn while the quota is ample
    assert not any(QUOTA in body for body in run.bodies())

    set_rate_limit(fake, 1, remaining=450)  # other runs of the installation spent the rest
    for turn in range(4, 13):
        await run.turn(turn)
    after = run.bodies()[4:]
    # turn 4's edit was decided before GitHub's answer said 449 were left; turn 5's shows it
    assert len(after) == 2
    assert QUOTA not in after[0]
    assert f"{LOW}449 of 5,000 left, resets " in after[1] and SPACED in after[1]
    assert core_window(fake).remaining == 448  # nine turns, two calls

    await run.progress.phase_validation()  # a new phase still shows at once
    assert len(run.bodies()) == 7 and LOW in run.bodies()[-1]
    assert run.fake.comments[-1].body == run.bodies()[-1]


async def test_a_run_waits_for_a_reset_that_is_seconds_away_before_it_starts(
    fake: FakeGitHub, app: GitHubApp
) -> None:
    set_rate_limit(fake, 1, remaining=4000, reset_in_s=3)  # the window Honk sees from the start
    run = Run(fake, await app.installation(1))
    first_window = core_window(fake).reset_at
    set_rate_limit(fake, 1, remaining=20)  # nearly gone, back in three seconds

    await run.progress.phase_workspace()
    await run.progress.wait_for_quota()
    await app.aclose()

    phase, waiting, started = run.bodies()
    assert QUOTA not in phase  # decided while 4,000 were left
    assert "nearly used up (19 of 5,000 left, resets " in waiting and WAITING in waiting
    assert QUOTA not in started  # the sentence goes once the quota is back
    # GitHub counted that last edit in a new window: the run went on only after the reset
    assert core_window(fake).reset_at > first_window
    assert core_window(fake).used == 1
    assert run.edits()[-1] is fake.request_log[-1]


async def test_a_run_stopped_while_it_waits_makes_no_further_call(
    fake: FakeGitHub, run: Run
) -> None:
    set_rate_limit(fake, 1, remaining=50)
    await run.progress.phase_workspace()  # GitHub's answer says 49 are left
    waiting = asyncio.create_task(run.progress.wait_for_quota())
    while not any(WAITING in body for body in run.bodies()):
        assert not waiting.done()
        await asyncio.sleep(0.01)
    calls = len(fake.request_log)
    waiting.cancel()  # what /honk stop does to the work step
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert len(fake.request_log) == calls


async def test_a_wait_is_bounded_and_then_the_run_goes_on_sparingly(
    fake: FakeGitHub, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress_module, "MAX_WAIT_S", 0.2)  # the reset is an hour away
    set_rate_limit(fake, 1, remaining=50)
    await run.progress.phase_workspace()
    await run.progress.wait_for_quota()
    _, waiting, going_on = run.bodies()
    assert WAITING in waiting
    assert "nearly used up (48 of 5,000 left, resets " in going_on and RARELY in going_on
    for turn in (1, 2, 3):
        await run.turn(turn)
    assert len(run.edits()) == 3  # at most one edit every two minutes now
