"""Every GitHub call is bounded: pages per listing, bytes per answer, time per call, and the size of
the files Honk reads. The bounds are shown through the work done (requests the fake received,
bytes it sent), never through wall-clock time; the trickle test injects a short deadline."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from honk_app.github.app import GitHubApp
from honk_app.github.bounds import DEFAULT_BOUNDS, Bounds
from honk_app.github.errors import GitHubError, RetryPolicy
from honk_app.github.installation import InstallationClient
from honk_app.github.issues import COMMENT_PAGE, FileTooLarge
from honk_app.github.paging import linked_page, newest_first, oldest_first, page_of
from honk_app.repo_config import ConfigError
from tests.fakes.github import FakeGitHub, PullFile
from tests.fakes.github_hostile import crowd, endless_pages, flood, trickle
from tests.fakes.github_json import issue_json
from tests.fakes.github_json_pulls import diff_entry_json, review_comment_json
from tests.fakes.github_state import RecordedRequest

REPO = "octo/app"
QUICK = RetryPolicy(server_error_retries=0, rate_limit_retries=0, backoff_s=0, max_wait_s=1)
KIB = 1024


# -- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("https://api.github.com/repos/o/r/issues/1/comments?per_page=25&page=7", 7),
        ("https://api.github.com/repos/o/r/issues/1/comments?page=1", 1),
        ("https://api.github.com/repos/o/r/issues/1/comments?per_page=25", None),
        ("https://api.github.com/repos/o/r/issues/1/comments?page=0", None),
        ("https://api.github.com/repos/o/r/issues/1/comments?page=seven", None),
    ],
)
def test_a_link_names_its_page(url: str, page: int | None) -> None:
    assert page_of(url) == page
    assert linked_page({"last": {"url": url}}, "last") == page
    assert linked_page({}, "last") is None


@pytest.mark.parametrize(
    ("last", "max_pages", "pages", "complete"),
    [
        (1, 10, [], True),  # one page: page 1 is all there is
        (3, 10, [3, 2], True),
        (10, 10, [10, 9, 8, 7, 6, 5, 4, 3, 2], True),
        (11, 10, [11, 10, 9, 8, 7, 6, 5, 4, 3], False),  # page 2 and 1 are left unread
        (120, 3, [120, 119], False),
    ],
)
def test_the_newest_pages_are_read_first_within_the_cap(
    last: int, max_pages: int, pages: list[int], complete: bool
) -> None:
    assert newest_first(last, max_pages) == (pages, complete)


async def test_a_list_that_never_ends_is_read_to_the_cap_only() -> None:
    asked: list[int] = []

    async def endless(page: int) -> tuple[list[int], bool]:
        asked.append(page)
        return [page], True

    assert await oldest_first(endless, 4) == ([1, 2, 3, 4], True)
    assert asked == [1, 2, 3, 4]


# -- against the fake GitHub -----------------------------------------------------------------


@pytest.fixture
def fake(app_private_key: str) -> Iterator[FakeGitHub]:
    with FakeGitHub(private_key_pem=app_private_key) as fake:
        fake.add_repo(REPO, files={"README.md": "# app\n"})
        yield fake


def client_of(fake: FakeGitHub, bounds: Bounds = DEFAULT_BOUNDS) -> GitHubApp:
    return GitHubApp(
        app_id=fake.app_id,
        private_key_pem=fake.private_key_pem,
        api_url=fake.url,
        retry=QUICK,
        bounds=bounds,
    )


@pytest.fixture
async def client(fake: FakeGitHub) -> AsyncIterator[InstallationClient]:
    app = client_of(fake)
    yield await app.installation(1)
    await app.aclose()


def asked(fake: FakeGitHub, path: str) -> list[RecordedRequest]:
    return [r for r in fake.request_log if r.method == "GET" and r.path == path]


async def test_an_endless_link_next_stops_at_the_page_cap(
    fake: FakeGitHub, client: InstallationClient, caplog: pytest.LogCaptureFixture
) -> None:
    number = fake.add_pull(REPO, title="Many files", head="many")
    site, repo, pull = fake.site(fake.url), fake.repo(REPO), fake.pull(REPO, number)
    page = [diff_entry_json(site, repo, pull, PullFile(f"src/f{i}.py")) for i in range(100)]
    path = f"/repos/{REPO}/pulls/{number}/files"
    endless_pages(fake, path, page)

    with caplog.at_level(logging.WARNING, logger="honk.github"):
        files = await client.pull_files(REPO, number)

    assert len(files) == 1000
    assert len(asked(fake, path)) == DEFAULT_BOUNDS.max_pages == 10
    assert "pull_files" in caplog.text and "first 10 pages only" in caplog.text


async def test_a_trickling_answer_ends_at_the_calls_deadline(fake: FakeGitHub) -> None:
    number = fake.add_issue(REPO, title="Slow")
    site, repo = fake.site(fake.url), fake.repo(REPO)
    body = issue_json(site, repo, repo.issues[number], [], 0)
    path = f"/repos/{REPO}/issues/{number}"
    trickle(fake, "GET", path, body)
    client = await client_of(fake, Bounds(call_s=0.5)).installation(1)

    with pytest.raises(GitHubError) as raised:
        await client.get_issue(REPO, number)

    assert str(raised.value) == f"GitHub did not answer get_issue (GET {path}) within 0.5 s."
    [request] = asked(fake, path)
    assert request.bytes_sent < 100  # a byte at a time, and Honk stopped waiting


async def test_an_answer_growing_past_the_cap_is_not_read_on(fake: FakeGitHub) -> None:
    number = fake.add_issue(REPO, title="Huge")
    site, repo = fake.site(fake.url), fake.repo(REPO)
    body = issue_json(site, repo, repo.issues[number], [], 0)
    path = f"/repos/{REPO}/issues/{number}"
    size = 256 * 1024 * 1024
    flood(fake, "GET", path, body, size=size)
    client = await client_of(fake, Bounds(max_bytes=1024 * 1024)).installation(1)

    with pytest.raises(GitHubError) as raised:
        await client.get_issue(REPO, number)

    assert str(raised.value) == (
        f"GitHub's answer to get_issue (GET {path}) was more than the 1,048,576 bytes Honk reads."
    )
    [request] = asked(fake, path)
    assert request.bytes_sent < size // 8  # what the connection buffered, not the answer


async def test_an_answer_declared_too_large_is_refused_unread(fake: FakeGitHub) -> None:
    number = fake.add_issue(REPO, title="Long comments")
    for _ in range(3):
        fake.add_comment(REPO, number, body="x" * 20_000)
    client = await client_of(fake, Bounds(max_bytes=50_000)).installation(1)

    with pytest.raises(GitHubError, match=r"was 6\d,\d{3} bytes, more than the 50,000 Honk reads"):
        await client.list_issue_comments(REPO, number)


async def test_comments_are_read_newest_first_and_only_as_far_as_needed(
    fake: FakeGitHub, client: InstallationClient, caplog: pytest.LogCaptureFixture
) -> None:
    number = fake.add_issue(REPO, title="Busy")
    made = crowd(fake, REPO, number, 3000)
    path = f"/repos/{REPO}/issues/{number}/comments"

    pages = client.issue_comment_pages(REPO, number)
    newest = await anext(pages)
    await pages.aclose()
    assert [c.id for c in newest] == [c.id for c in reversed(made[-COMMENT_PAGE:])]
    assert len(asked(fake, path)) == 2  # page 1 names the last page, which is read next

    with caplog.at_level(logging.WARNING, logger="honk.github"):
        listed = await client.list_issue_comments(REPO, number)
    assert len(asked(fake, path)) == 2 + 10  # the cap: page 1 and the newest nine pages
    kept = made[:COMMENT_PAGE] + made[-9 * COMMENT_PAGE :]  # the oldest page is kept too
    assert [c.id for c in listed] == [c.id for c in kept]
    assert "reads 10 of 120 pages: 1 from the start, 9 from the end" in caplog.text


async def test_review_comments_come_newest_first_and_a_reply_is_found_on_the_first_page(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_pull(REPO, title="Reviewed", head="reviewed")
    made = [fake.add_review_comment(REPO, number, body=f"nit {i}", path="a.py") for i in range(100)]
    path = f"/repos/{REPO}/pulls/{number}/comments"

    pages = client.review_comment_pages(REPO, number)
    first = await anext(pages)
    await pages.aclose()
    assert [c.id for c in first] == [c.id for c in reversed(made[-COMMENT_PAGE:])]

    marker = f"<!-- honk:reply={made[0].id} -->"
    for _ in range(2):
        await client.reply_to_review_comment(REPO, number, made[0].id, "On it", marker=marker)
    replies = [c for c in fake.review_comments_on(REPO, number) if marker in c.body]
    assert len(replies) == 1
    # the first call read every page before replying; the second found its reply on page one
    assert len(asked(fake, path)) == 1 + 4 + 1


async def test_endless_review_comments_stop_at_the_page_cap(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_pull(REPO, title="Reviewed", head="reviewed")
    comment = fake.add_review_comment(REPO, number, body="nit", path="a.py")
    site, repo = fake.site(fake.url), fake.repo(REPO)
    path = f"/repos/{REPO}/pulls/{number}/comments"
    endless_pages(fake, path, [review_comment_json(site, repo, comment, [])] * COMMENT_PAGE)

    listed = await client.pull_review_comments(REPO, number)

    assert len(listed) == 10 * COMMENT_PAGE
    assert len(asked(fake, path)) == 10


@pytest.mark.parametrize(
    ("size", "sent_at_most"),
    [
        (300 * KIB, 420 * KIB),  # GitHub sends the content below 1 MB: its size is checked first
        (2 * 1024 * KIB, 8 * KIB),  # above 1 MB GitHub sends only the size
    ],
)
async def test_a_file_larger_than_honk_reads_is_refused_by_its_size(
    fake: FakeGitHub, client: InstallationClient, size: int, sent_at_most: int
) -> None:
    fake.set_file(REPO, "AGENTS.md", "a" * size)

    with pytest.raises(FileTooLarge) as raised:
        await client.get_file(REPO, "AGENTS.md")

    assert str(raised.value) == (
        f"AGENTS.md in {REPO} is {size:,} bytes, more than the 262,144 Honk reads."
    )
    [request] = asked(fake, f"/repos/{REPO}/contents/AGENTS.md")
    assert request.bytes_sent <= sent_at_most
    fake.set_file(REPO, "AGENTS.md", "a" * (200 * KIB))
    assert await client.get_file(REPO, "AGENTS.md") == "a" * (200 * KIB)


async def test_a_config_file_too_large_is_a_config_error_not_the_defaults(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    fake.set_file(REPO, ".github/honk.yml", "# padding\n" * 7000)

    text, source = await client.repo_config_text(REPO, "octo", "main")

    assert source == f"{REPO}/.github/honk.yml"
    assert text == ConfigError(
        f"`{REPO}/.github/honk.yml` is too large (70,000 bytes; the limit is 65,536).", source
    )
