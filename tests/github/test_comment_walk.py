"""An issue thread longer than the page cap: the walk reads the newest pages and page 1 (the oldest
comments), says when it skipped the pages between, and a marker lookup reads further so that a
crowd writing after Honk's comment does not make Honk post it twice. Shown through the requests the
fake GitHub received; the in-memory client walks the same pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from honk_app.github.bounds import DEFAULT_BOUNDS
from honk_app.github.installation import InstallationClient
from honk_app.github.issues import COMMENT_PAGE
from honk_app.github.models import CommentInfo
from honk_app.github.paging import PageWalk, between
from tests.fakes.github import FakeGitHub
from tests.fakes.github_hostile import crowd
from tests.fakes.memory.app import MemoryGitHub
from tests.github.test_bounds import REPO, asked, client_of

MARKER = "<!-- honk:run=honk-abc -->"
CAP = DEFAULT_BOUNDS.max_pages  # 10 pages of 25


@pytest.fixture
def fake(app_private_key: str) -> Iterator[FakeGitHub]:
    with FakeGitHub(private_key_pem=app_private_key) as fake:
        fake.add_repo(REPO, files={"README.md": "# app\n"})
        yield fake


@pytest.fixture
async def client(fake: FakeGitHub) -> AsyncIterator[InstallationClient]:
    app = client_of(fake)
    yield await app.installation(1)
    await app.aclose()


def spam(fake: FakeGitHub, number: int, count: int) -> None:
    for i in range(count):
        fake.add_comment(REPO, number, body=f"+1 ({i})", user="spammer")


def comments_path(number: int) -> str:
    return f"/repos/{REPO}/issues/{number}/comments"


def test_the_pages_between_are_the_ones_the_walk_leaves() -> None:
    assert list(between(120, CAP)) == list(range(2, 112))  # 1, then 120 down to 112
    assert list(between(10, CAP)) == [] and list(between(1, CAP)) == []


async def test_a_long_thread_ends_with_its_first_page_and_says_it_was_cut(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Busy")
    made = crowd(fake, REPO, number, 3000)  # 120 pages

    pages = client.issue_comment_pages(REPO, number)
    seen: list[tuple[bool, list[int]]] = []
    async for found in pages:
        seen.append((pages.cut, [c.id for c in found]))

    def page(n: int) -> list[int]:  # GitHub's page n, newest first
        return [c.id for c in reversed(made[(n - 1) * COMMENT_PAGE : n * COMMENT_PAGE])]

    newest = [(False, page(n)) for n in range(120, 111, -1)]
    assert seen == [*newest, (True, page(1))]  # `cut` once the walk skipped pages 2 to 111
    assert len(asked(fake, comments_path(number))) == CAP  # page 1, then the newest nine


async def test_a_thread_within_the_cap_is_read_whole_and_not_cut(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Busy")
    made = crowd(fake, REPO, number, CAP * COMMENT_PAGE)

    pages = client.issue_comment_pages(REPO, number)
    found = [c.id async for page in pages for c in page]

    assert found == [c.id for c in reversed(made)] and not pages.cut
    assert len(asked(fake, comments_path(number))) == CAP


async def test_a_tracking_comment_buried_by_a_crowd_is_edited_not_posted_again(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    """The review's case: the comment is the 31st (page 2, which the walk skips), 250 follow."""
    number = fake.add_issue(REPO, title="Crash")
    spam(fake, number, 30)
    first = await client.upsert_comment(REPO, number, MARKER, "Working on it")
    spam(fake, number, 250)
    before = len(asked(fake, comments_path(number)))

    second = await client.upsert_comment(REPO, number, MARKER, "Done")

    assert second.id == first.id and second.body.startswith("Done")
    assert [c.id for c in fake.comments_on(REPO, number) if MARKER in c.body] == [first.id]
    # page 1, the newest nine (12 down to 4), then page 2, where it is
    assert len(asked(fake, comments_path(number))) - before == 1 + 9 + 1


async def test_a_marker_lookup_on_an_endless_thread_reads_twice_the_cap_at_most(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Busy")
    crowd(fake, REPO, number, 3000, body=f"copied {MARKER}")  # a stranger's copy is not Honk's

    assert await client.find_comment_with_marker(REPO, number, MARKER) is None
    assert len(asked(fake, comments_path(number))) == 2 * CAP - 1


async def test_what_a_marker_lookup_still_misses(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    """The limit that remains (issues.py, find_comment_with_marker): over 250 comments before
    Honk's and over 225 after it."""
    number = fake.add_issue(REPO, title="Busy")
    spam(fake, number, 2 * CAP * COMMENT_PAGE)
    await client.upsert_comment(REPO, number, MARKER, "Working on it")
    spam(fake, number, CAP * COMMENT_PAGE)

    await client.upsert_comment(REPO, number, MARKER, "Done")

    assert sum(MARKER in c.body for c in fake.comments_on(REPO, number)) == 2


@pytest.mark.parametrize("count", [0, 24, 250, 251, 280, 3000])
async def test_the_in_memory_client_walks_the_same_pages(
    fake: FakeGitHub, client: InstallationClient, count: int
) -> None:
    memory = MemoryGitHub(app_id=fake.app_id)
    memory.add_repo(REPO, installation_id=1)
    memory_number = memory.add_issue(REPO, title="Busy").number
    number = fake.add_issue(REPO, title="Busy")
    for i in range(count):
        fake.add_comment(REPO, number, body=f"c{i}", user="someone")
        memory.add_comment(REPO, memory_number, f"c{i}", author="someone")
    in_memory = await memory.installation(1)

    async def walked(pages: PageWalk[CommentInfo]) -> list[tuple[bool, list[str]]]:
        return [(pages.cut, [c.body for c in page]) async for page in pages]

    assert await walked(in_memory.issue_comment_pages(REPO, memory_number)) == await walked(
        client.issue_comment_pages(REPO, number)
    )
    listed = await client.list_issue_comments(REPO, number)
    in_memory_listed = await in_memory.list_issue_comments(REPO, memory_number)
    assert [c.body for c in in_memory_listed] == [c.body for c in listed]
