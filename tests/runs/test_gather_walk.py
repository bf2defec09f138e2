"""Whose comments reach the task on a thread longer than the pages Honk reads: the newest writers'
comments, and the first page's (a maintainer's triage is often there); when the pages between were
skipped the report says that older comments went unread. Shown with the real client on the fake
GitHub, counting the requests it received."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from honk_app.agent.prompt import MAX_COMMENTS
from honk_app.github.installation import InstallationClient
from honk_app.github.issues import COMMENT_PAGE
from honk_app.github.models import CommentInfo
from honk_app.runs.gather import LONG_THREAD, newest_by_writers
from tests.fakes.github import FakeGitHub
from tests.github.test_bounds import REPO, asked, client_of
from tests.github.test_comment_walk import spam

TRIAGE = "Do NOT change the public signature of parse()."


@pytest.fixture
def fake(app_private_key: str) -> Iterator[FakeGitHub]:
    with FakeGitHub(private_key_pem=app_private_key) as fake:
        fake.add_repo(REPO, files={"README.md": "# app\n"})
        fake.set_permission(REPO, "maintainer", "write")
        yield fake


@pytest.fixture
async def client(fake: FakeGitHub) -> AsyncIterator[InstallationClient]:
    app = client_of(fake)
    yield await app.installation(1)
    await app.aclose()


async def writers(client: InstallationClient, number: int) -> tuple[list[str], str | None]:
    def skip(comment: CommentInfo) -> bool:
        return False

    comments, note = await newest_by_writers(
        client, REPO, client.issue_comment_pages(REPO, number), lambda c: c.author, skip
    )
    return [c.body for c in comments], note


def permission_asks(fake: FakeGitHub) -> int:
    return sum(
        len(asked(fake, f"/repos/{REPO}/collaborators/{login}/permission"))
        for login in ("maintainer", "spammer")
    )


async def test_the_triage_on_the_first_page_survives_a_crowd(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Crash on empty input")
    spam(fake, number, 3)
    fake.add_comment(REPO, number, body=TRIAGE, user="maintainer")
    spam(fake, number, 300)  # one stranger, one account: one permission call

    bodies, note = await writers(client, number)

    assert bodies == [TRIAGE]
    assert note == LONG_THREAD  # pages 2 to 4 were skipped, and the report says so
    assert permission_asks(fake) == 2
    assert len(asked(fake, f"/repos/{REPO}/issues/{number}/comments")) == 10


async def test_a_writers_comment_between_the_pages_read_is_named_as_unread(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    """The review's case: the 31st comment (page 2) with 240 after it."""
    number = fake.add_issue(REPO, title="Crash on empty input")
    spam(fake, number, 30)
    fake.add_comment(REPO, number, body=TRIAGE, user="maintainer")
    spam(fake, number, 240)

    bodies, note = await writers(client, number)

    assert bodies == []
    assert note == (
        "Older comments were not read: on a thread this long Honk reads the first comments "
        "and the newest ones."
    )


async def test_enough_writers_on_the_newest_pages_need_no_note(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Busy")
    fake.add_comment(REPO, number, body=TRIAGE, user="maintainer")
    spam(fake, number, 20 * COMMENT_PAGE)
    for i in range(MAX_COMMENTS):
        fake.add_comment(REPO, number, body=f"step {i}", user="maintainer")

    bodies, note = await writers(client, number)

    assert bodies == [f"step {i}" for i in range(MAX_COMMENTS)] and note is None
    # page 1 (to learn the last page), then the newest two: the walk stopped before the gap
    assert len(asked(fake, f"/repos/{REPO}/issues/{number}/comments")) == 3


async def test_a_thread_within_the_pages_read_needs_no_note(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Busy")
    fake.add_comment(REPO, number, body=TRIAGE, user="maintainer")
    spam(fake, number, 200)
    fake.add_comment(REPO, number, body="and keep it fast", user="maintainer")

    bodies, note = await writers(client, number)

    assert bodies == [TRIAGE, "and keep it fast"] and note is None
