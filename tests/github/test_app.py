"""The GitHub adapter: pure decisions directly, every call against the fake GitHub on loopback."""

from __future__ import annotations

import pickle
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from githubkit import Response
from githubkit.exception import PrimaryRateLimitExceeded, RequestFailed

from honk_app.github import app as app_module
from honk_app.github.app import TOKEN_MEMORY_S, GitHubApp
from honk_app.github.errors import GitHubError, RetryPolicy, github_message
from honk_app.github.installation import InstallationClient
from honk_app.github.models import (
    annotation_batches,
    is_own,
    permission_level,
    pull_already_exists,
    split_full_name,
)
from tests.fakes import github_auth
from tests.fakes.github import CheckRunState, FakeGitHub, PullFile
from tests.fakes.github_auth import generate_private_key_pem
from tests.fakes.loopback import free_port

REPO = "octo/app"
MARKER = "<!-- honk:run=honk-d1 -->"
QUICK = RetryPolicy(server_error_retries=1, rate_limit_retries=1, backoff_s=0, max_wait_s=5)


def annotation(n: int) -> dict[str, Any]:
    return {
        "path": f"src/file_{n}.py",
        "start_line": n + 1,
        "end_line": n + 1,
        "annotation_level": "warning",
        "message": f"finding {n}",
    }


# -- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permission", "role_name", "expected"),
    [
        ("admin", "admin", "admin"),
        ("write", "maintain", "maintain"),
        ("write", "write", "write"),
        ("read", "triage", "triage"),
        ("read", "read", "read"),
        ("none", "none", "none"),
        ("write", "security-champion", "write"),  # a custom organisation role
        ("weird", "also-weird", "none"),
    ],
)
def test_permission_level_prefers_known_role_names(
    permission: str, role_name: str, expected: str
) -> None:
    assert permission_level(permission, role_name) == expected


def test_annotation_batches_send_at_most_fifty_per_request() -> None:
    output = {
        "title": "Tests",
        "summary": "3 failed",
        "text": "long",
        "annotations": [annotation(i) for i in range(120)],
    }
    batches = annotation_batches(output)
    assert [len(b["annotations"]) for b in batches if b] == [50, 50, 20]
    assert batches[0] is not None and batches[0]["text"] == "long"
    assert batches[1] == {
        "title": "Tests",
        "summary": "3 failed",
        "annotations": [annotation(i) for i in range(50, 100)],
    }
    assert annotation_batches({"title": "t", "summary": "s"}) == [{"title": "t", "summary": "s"}]
    assert annotation_batches(None) == [None]


def test_own_comments_are_recognised_by_app_id_or_bot_login() -> None:
    assert is_own("someone", 4242, app_id=4242, app_login="honk[bot]")
    assert is_own("Honk[bot]", None, app_id=4242, app_login="honk[bot]")
    assert not is_own("mallory", None, app_id=4242, app_login="honk[bot]")
    assert not is_own("mallory", 7, app_id=4242, app_login="honk[bot]")


def test_split_full_name_refuses_malformed_names() -> None:
    assert split_full_name("octo/app") == ("octo", "app")
    for bad in ("octo", "octo/", "/app", "octo/app/extra"):
        with pytest.raises(ValueError, match="owner/repo"):
            split_full_name(bad)


def test_github_message_includes_the_errors_list() -> None:
    body = {
        "message": "Validation Failed",
        "errors": [
            {
                "resource": "PullRequest",
                "code": "custom",
                "message": "A pull request already exists for octo:honk/1.",
            },
            {"resource": "Issue", "field": "title", "code": "missing_field"},
        ],
    }
    text = github_message(body, "fallback")
    assert text == (
        "Validation Failed (A pull request already exists for octo:honk/1.; "
        "Issue title missing_field)"
    )
    assert pull_already_exists(text)
    assert github_message("<html>", "502 Bad Gateway") == "502 Bad Gateway"


def _failed(status: int, **headers: str) -> RequestFailed:
    request = httpx.Request("GET", "https://api.github.test/repos/octo/app")
    return RequestFailed(Response(httpx.Response(status, request=request, headers=headers), Any))


def test_retry_policy_retries_server_errors_a_bounded_number_of_times() -> None:
    policy = RetryPolicy(server_error_retries=2, backoff_s=0.5)
    first = policy(_failed(502), 0)
    assert first.do_retry and first.retry_after == timedelta(seconds=0.5)
    assert policy(_failed(502), 1).retry_after == timedelta(seconds=1)
    assert not policy(_failed(502), 2).do_retry
    assert not policy(_failed(404), 0).do_retry
    no_wait = RetryPolicy(backoff_s=0)(_failed(500), 0)
    assert no_wait.do_retry and no_wait.retry_after  # zero would make githubkit wait a minute


def test_retry_policy_waits_out_short_rate_limits_only() -> None:
    policy = RetryPolicy(rate_limit_retries=1, max_wait_s=30)
    response = _failed(403).response
    short = PrimaryRateLimitExceeded(response, timedelta(seconds=10))
    assert policy(short, 0).retry_after == timedelta(seconds=10)
    assert not policy(short, 1).do_retry
    assert not policy(PrimaryRateLimitExceeded(response, timedelta(hours=1)), 0).do_retry


def test_github_error_survives_pickling() -> None:
    error = GitHubError("GitHub refused x (GET /y) with 404: Not Found.", status=404, detail="d")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (str(copy), copy.status, copy.detail) == (str(error), 404, "d")


# -- single calls with respx -----------------------------------------------------------------


@pytest.fixture(scope="module")
def private_key() -> str:
    return generate_private_key_pem()


@respx.mock
async def test_a_proxy_error_page_is_retried_then_reported_in_one_line(private_key: str) -> None:
    api = "https://api.github.test"
    route = respx.post(f"{api}/app/installations/1/access_tokens").respond(
        502, text="<html>\n<h1>502 Bad Gateway</h1>\n</html>"
    )
    app = GitHubApp(app_id=1, private_key_pem=private_key, api_url=api, retry=QUICK)
    with pytest.raises(GitHubError) as caught:
        await app.installation_token(1)
    assert route.call_count == 2  # one retry, then the error
    assert str(caught.value) == (
        "GitHub refused installation_token (POST /app/installations/1/access_tokens) with 502: "
        "<html> <h1>502 Bad Gateway</h1> </html>."
    )
    assert caught.value.status == 502
    assert route.calls[0].request.headers["authorization"].startswith("Bearer ")


@respx.mock
async def test_an_answer_of_the_wrong_shape_is_reported(private_key: str) -> None:
    api = "https://api.github.test"
    respx.get(f"{api}/app").respond(200, json={"id": 1, "slug": "honk"})
    app = GitHubApp(app_id=1, private_key_pem=private_key, api_url=api, retry=QUICK)
    with pytest.raises(GitHubError) as caught:
        await app.app_info()
    assert str(caught.value) == (
        "GitHub's answer to app_info (GET /app) was not in the expected shape: "
        "node_id: Field required."
    )


async def test_an_unreachable_github_is_one_readable_sentence(private_key: str) -> None:
    app = GitHubApp(
        app_id=1, private_key_pem=private_key, api_url=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(GitHubError) as caught:
        await app.installation_token(1)
    message = str(caught.value)
    assert message.startswith(
        "Could not reach GitHub for installation_token (POST /app/installations/1/access_tokens)"
    )
    assert "\n" not in message and message.endswith(".")
    assert "PRIVATE KEY" not in message


# -- against the fake GitHub -----------------------------------------------------------------


@pytest.fixture
def fake(private_key: str) -> Iterator[FakeGitHub]:
    with FakeGitHub(app_id=4242, app_slug="honk-test", private_key_pem=private_key) as fake:
        fake.add_repo(REPO, files={"README.md": "# app\n"})
        yield fake


@pytest.fixture
def app(fake: FakeGitHub) -> GitHubApp:
    return GitHubApp(
        app_id=fake.app_id, private_key_pem=fake.private_key_pem, api_url=fake.url, retry=QUICK
    )


@pytest.fixture
async def client(app: GitHubApp) -> AsyncIterator[InstallationClient]:
    yield await app.installation(1)


def count(fake: FakeGitHub, method: str, path_start: str) -> int:
    return sum(1 for m, p in fake.requests if m == method and p.startswith(path_start))


async def test_app_info_is_read_once(fake: FakeGitHub, app: GitHubApp) -> None:
    info = await app.app_info()
    again = await app.app_info()
    assert (info.id, info.slug, info.bot_login) == (4242, "honk-test", "honk-test[bot]")
    # the bot user's id comes from GET /users/{login}, as the commit e-mail needs it
    assert info.bot_user_id > 0
    assert again == info
    assert count(fake, "GET", "/app") == 1
    assert count(fake, "GET", "/users/") == 1


async def test_calls_share_keep_alive_connections(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    """githubkit makes a client per call; the connection (a TLS handshake on GitHub) is reused."""
    for _ in range(5):
        await client.permission(REPO, "octocat")
    api_calls = [r for r in fake.request_log if not r.path.startswith("/app")]
    assert len(api_calls) >= 5
    assert len({r.peer for r in fake.request_log}) == 1


async def test_installation_token_is_minted_once_and_per_app(
    fake: FakeGitHub, app: GitHubApp
) -> None:
    token = await app.installation_token(1)
    assert token.startswith("ghs_")
    assert fake.token_is_valid(token, REPO, write=True)
    assert await app.installation_token(1) == token
    assert count(fake, "POST", "/app/installations/1/access_tokens") == 1
    other = GitHubApp(app_id=fake.app_id, private_key_pem=fake.private_key_pem, api_url=fake.url)
    assert await other.installation_token(1) != token  # no process-wide token cache


async def test_a_token_close_to_expiry_is_replaced(
    fake: FakeGitHub, app: GitHubApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(github_auth, "TOKEN_LIFETIME", timedelta(minutes=4))
    first = await app.installation_token(1)
    second = await app.installation_token(1)
    assert first != second  # each had less than the five minutes Honk keeps in reserve
    assert count(fake, "POST", "/app/installations/1/access_tokens") == 2
    # the first is still valid for minutes: both stay redacted, not only the newest
    assert {first, second} <= set(app.known_secrets())


async def test_a_wrong_private_key_is_one_sentence_without_the_key(fake: FakeGitHub) -> None:
    other_key = generate_private_key_pem()
    app = GitHubApp(app_id=fake.app_id, private_key_pem=other_key, api_url=fake.url)
    with pytest.raises(GitHubError) as caught:
        await app.app_info()
    assert str(caught.value) == (
        "GitHub refused app_info (GET /app) with 401: A JSON web token could not be decoded."
    )


async def test_an_invalid_request_is_refused_before_sending(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Add a flag")
    with pytest.raises(GitHubError) as caught:
        await client.add_reaction(REPO, issue_number=number, content="thumbsup")
    assert str(caught.value).startswith(
        f"Honk did not send add_reaction (POST /repos/octo/app/issues/{number}/reactions) "
        "because the request was invalid: content: Input should be '+1'"
    )
    assert count(fake, "POST", f"/repos/octo/app/issues/{number}/reactions") == 0


async def test_upsert_comment_finds_before_it_creates(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Broken build")
    first = await client.upsert_comment(REPO, number, MARKER, "Working on it")
    same = await client.upsert_comment(REPO, number, MARKER, "Working on it")
    edited = await client.upsert_comment(REPO, number, MARKER, "Done")
    comments = fake.comments_on(REPO, number)
    assert len(comments) == 1
    assert first.id == same.id == edited.id == comments[0].id
    assert comments[0].body == f"Done\n\n{MARKER}"
    assert count(fake, "PATCH", "/repos/octo/app/issues/comments/") == 1


async def test_a_humans_comment_with_the_marker_is_never_taken_over(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Broken build")
    fake.add_comment(REPO, number, body=f"copied {MARKER}", user="mallory")
    await client.upsert_comment(REPO, number, MARKER, "Working on it")
    bodies = [(c.user, c.body) for c in fake.comments_on(REPO, number)]
    assert bodies == [
        ("mallory", f"copied {MARKER}"),
        ("honk-test[bot]", f"Working on it\n\n{MARKER}"),
    ]


async def test_the_marker_is_found_on_a_later_page(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Busy thread")
    for i in range(150):
        fake.add_comment(REPO, number, body=f"comment {i}")
    ours = fake.add_comment(REPO, number, body=f"status {MARKER}", via_app=True)
    found = await client.find_comment_with_marker(REPO, number, MARKER)
    assert found is not None and found.id == ours.id
    assert count(fake, "GET", f"/repos/octo/app/issues/{number}/comments") == 2
    reply = await client.reply(REPO, number, "Usage: /honk <task>", marker="<!-- honk:reply=7 -->")
    again = await client.reply(REPO, number, "Usage: /honk <task>", marker="<!-- honk:reply=7 -->")
    assert reply.id == again.id
    assert len(fake.comments_on(REPO, number)) == 152


async def test_reactions_are_idempotent(fake: FakeGitHub, client: InstallationClient) -> None:
    number = fake.add_issue(REPO, title="Add a flag")
    comment = fake.add_comment(REPO, number, body="/honk add --verbose")
    for _ in range(2):
        await client.add_reaction(REPO, issue_number=number)
        await client.add_reaction(REPO, comment_id=comment.id, content="rocket")
    assert [(r.subject, r.content) for r in fake.reactions] == [
        ("issue", "eyes"),
        ("issue_comment", "rocket"),
    ]
    with pytest.raises(ValueError, match="exactly one"):
        await client.add_reaction(REPO, issue_number=number, comment_id=comment.id)


async def test_permission_levels(fake: FakeGitHub, client: InstallationClient) -> None:
    levels = ["admin", "maintain", "write", "triage", "read", "none"]
    for level in levels:
        fake.set_permission(REPO, f"user-{level}", level)
    assert [await client.permission(REPO, f"user-{level}") for level in levels] == levels


async def test_permission_of_unknown_people(fake: FakeGitHub, client: InstallationClient) -> None:
    assert await client.permission(REPO, "stranger") == "none"  # private repository
    fake.fail_next("GET", r"/repos/octo/app/collaborators/ghost/permission", 404)
    assert await client.permission(REPO, "ghost") == "none"
    fake.fail_next(
        "GET",
        r"/repos/octo/app/collaborators/bob/permission",
        403,
        body={"message": "Resource not accessible by integration"},
    )
    with pytest.raises(GitHubError, match="Resource not accessible by integration"):
        await client.permission(REPO, "bob")


async def test_files_are_decoded_and_absent_ones_are_none(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    fake.set_file(REPO, "docs/naïve.md", "héllo ✓\n")
    fake.set_file(REPO, "notes/what? #1.txt", "odd name\n")
    fake.set_file(REPO, "src/app.py", "print('feature')\n", ref="feature")
    assert await client.get_file(REPO, "docs/naïve.md") == "héllo ✓\n"
    assert await client.get_file(REPO, "notes/what? #1.txt") == "odd name\n"
    assert await client.get_file(REPO, "src/app.py", ref="feature") == "print('feature')\n"
    assert await client.get_file(REPO, "docs") is None  # a directory
    assert await client.get_file(REPO, "missing.txt") is None


async def test_config_comes_from_the_repository_first(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    fake.add_repo("octo/lib", default_branch="trunk", files={".github/honk.yml": "model: a\n"})
    fake.add_repo("octo/.github", files={".github/honk.yml": "model: org\n"})
    assert await client.repo_config_text("octo/lib", "octo", "trunk") == (
        "model: a\n",
        "octo/lib/.github/honk.yml",
    )
    assert await client.repo_config_text(REPO, "octo", "main") == (
        "model: org\n",
        "octo/.github/.github/honk.yml",
    )


async def test_config_falls_back_to_defaults(fake: FakeGitHub, client: InstallationClient) -> None:
    assert await client.repo_config_text(REPO, "octo", "main") == (None, "defaults")
    # the owner's .github repository exists but is outside this installation: GitHub says 404
    fake.add_repo("octo/.github", installation_id=2, files={".github/honk.yml": "x: 1\n"})
    assert await client.repo_config_text(REPO, "octo", "main") == (None, "defaults")


async def test_reading_issues_pulls_and_their_comments(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    issue = fake.add_issue(
        REPO, title="Crash on start", body="Steps: run it", user="alice", labels=["honk", "bug"]
    )
    fake.add_comment(REPO, issue, body="me too", user="bob")
    pull = fake.add_pull(
        REPO,
        title="Fix crash",
        head="fix-crash",
        body=None,
        user="alice",
        files=[PullFile("src/app.py"), PullFile("tests/test_app.py")],
    )
    review = fake.add_review_comment(REPO, pull, body="rename this", path="src/app.py", line=3)

    info = await client.get_issue(REPO, issue)
    assert (info.title, info.body, info.author, info.is_pull_request, info.labels) == (
        "Crash on start",
        "Steps: run it",
        "alice",
        False,
        ("honk", "bug"),
    )
    assert (await client.get_issue(REPO, pull)).is_pull_request
    [comment] = await client.list_issue_comments(REPO, issue)
    assert (comment.author, comment.body, comment.author_association) == ("bob", "me too", "NONE")
    assert comment.created_at.endswith("Z")

    pr = await client.get_pull(REPO, pull)
    assert (pr.head_ref, pr.base_ref, pr.head_repo_full_name, pr.body, pr.draft) == (
        "fix-crash",
        "main",
        REPO,
        "",
        False,
    )
    assert len(pr.head_sha) == 40
    assert await client.pull_files(REPO, pull) == ["src/app.py", "tests/test_app.py"]
    [seen] = await client.pull_review_comments(REPO, pull)
    assert (seen.id, seen.path, seen.line, seen.body, seen.author) == (
        review.id,
        "src/app.py",
        3,
        "rename this",
        "octocat",
    )


async def test_review_replies_are_posted_once(fake: FakeGitHub, client: InstallationClient) -> None:
    pull = fake.add_pull(REPO, title="Fix", head="fix")
    review = fake.add_review_comment(REPO, pull, body="/honk use a constant", path="a.py")
    marker = f"<!-- honk:reply={review.id} -->"
    for _ in range(2):
        await client.reply_to_review_comment(REPO, pull, review.id, "On it", marker=marker)
    replies = [c for c in fake.review_comments_on(REPO, pull) if c.in_reply_to_id == review.id]
    assert [(c.user, c.body) for c in replies] == [("honk-test[bot]", f"On it\n\n{marker}")]


async def test_create_or_update_pull_twice_makes_one_pull(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    first = await client.create_or_update_pull(
        REPO, head="honk/issue-1", base="main", title="Fix #1", body="Draft", draft=True
    )
    second = await client.create_or_update_pull(
        REPO, head="honk/issue-1", base="main", title="Fix #1", body="Tests pass", draft=False
    )
    assert first.number == second.number
    assert len(fake.pulls) == 1
    assert (fake.pulls[0].body, fake.pulls[0].draft) == ("Tests pass", True)
    assert count(fake, "POST", "/repos/octo/app/pulls") == 1
    assert await client.find_pull_by_head(REPO, "octo", "honk/issue-1") == second
    assert await client.find_pull_by_head(REPO, "octo", "other") is None


async def test_a_pull_created_meanwhile_is_updated_not_duplicated(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    def another_attempt_wins_the_race(full_name: str, branch: str) -> bool:
        if not fake.pulls:  # between Honk's look-up and its create
            fake.add_pull(REPO, title="Older attempt", head="honk/issue-2", user="honk-test[bot]")
        return True

    fake.branch_exists = another_attempt_wins_the_race
    pull = await client.create_or_update_pull(
        REPO, head="honk/issue-2", base="main", title="Fix #2", body="Body", draft=False
    )
    assert len(fake.pulls) == 1
    assert (pull.number, pull.title) == (fake.pulls[0].number, "Fix #2")
    assert fake.pulls[0].title == "Fix #2"


async def test_set_draft_uses_graphql_and_only_when_needed(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    pull = await client.create_or_update_pull(
        REPO, head="honk/issue-3", base="main", title="Fix #3", body="", draft=True
    )
    await client.set_draft(REPO, pull, False)
    assert fake.pull(REPO, pull.number).draft is False
    await client.set_draft(REPO, pull, False)  # stale PullInfo: the current state is read first
    assert count(fake, "POST", "/graphql") == 1
    await client.set_draft(REPO, pull, True)
    assert fake.pull(REPO, pull.number).draft is True
    graphql = [r for r in fake.request_log if r.path == "/graphql"]
    assert graphql[0].json["variables"] == {"id": pull.node_id}
    assert "markPullRequestReadyForReview" in graphql[0].json["query"]
    assert "convertPullRequestToDraft" in graphql[1].json["query"]
    forbidden = {"type": "FORBIDDEN", "message": "Resource not accessible by integration"}
    fake.fail_next("POST", "/graphql", 200, body={"data": None, "errors": [forbidden]})
    with pytest.raises(GitHubError) as caught:
        await client.set_draft(REPO, pull, False)
    assert str(caught.value) == (
        "GitHub refused set_draft (POST /graphql markPullRequestReadyForReview): "
        "Resource not accessible by integration."
    )


async def test_review_requests_ignore_authors_and_strangers(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    pull = fake.add_pull(REPO, title="Fix", head="fix", user="octocat")
    fake.set_permission(REPO, "alice", "write")
    await client.request_review(REPO, pull, "octocat")  # the author: GitHub answers 422
    await client.request_review(REPO, pull, "stranger")  # not a collaborator: 422
    await client.request_review(REPO, pull, "alice")
    assert fake.requested_reviewers[f"{REPO}#{pull}"] == ["alice"]


async def test_check_runs_are_found_by_external_id(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    sha = "a" * 40
    output = {
        "title": "Tests",
        "summary": "3 failed",
        "annotations": [annotation(i) for i in range(120)],
    }
    run_id = await client.upsert_check_run(
        REPO,
        head_sha=sha,
        name="honk",
        external_id="honk-d1",
        status="in_progress",
        output=output,
        details_url="https://honk.example/runs/honk-d1",
    )
    writes = count(fake, "POST", "/repos/octo/app/check-runs") + count(
        fake, "PATCH", "/repos/octo/app/check-runs/"
    )
    assert writes == 3
    assert len(fake.check_runs[0].annotations) == 120

    again = await client.upsert_check_run(
        REPO,
        head_sha=sha,
        name="honk",
        external_id="honk-d1",
        status="completed",
        conclusion="success",
        output={"title": "Tests", "summary": "all pass"},
        actions=[{"label": "Retry", "description": "Run Honk again", "identifier": "retry"}],
    )
    assert again == run_id
    assert len(fake.check_runs) == 1
    run = fake.check_runs[0]
    assert (run.status, run.conclusion, run.output["summary"]) == (
        "completed",
        "success",
        "all pass",
    )
    assert run.actions[0]["identifier"] == "retry"

    other = await client.upsert_check_run(
        REPO, head_sha=sha, name="honk", external_id="honk-d2", status="queued"
    )
    assert other != run_id
    fake.check_runs.append(CheckRunState(REPO, "honk", sha, app_id=999, external_id="honk-d1"))
    listed = await client.list_check_runs(REPO, sha, "honk")
    assert sorted((r.id, r.external_id, r.app_id) for r in listed) == [
        (run_id, "honk-d1", 4242),
        (other, "honk-d2", 4242),
    ]


async def test_a_server_error_is_retried(fake: FakeGitHub, client: InstallationClient) -> None:
    number = fake.add_issue(REPO, title="Flaky")
    fake.fail_next("GET", rf"/repos/octo/app/issues/{number}", 500)
    assert (await client.get_issue(REPO, number)).title == "Flaky"
    assert count(fake, "GET", f"/repos/octo/app/issues/{number}") == 2


async def test_without_retries_a_server_error_fails(fake: FakeGitHub) -> None:
    app = GitHubApp(
        app_id=fake.app_id,
        private_key_pem=fake.private_key_pem,
        api_url=fake.url,
        retry=RetryPolicy(server_error_retries=0),
    )
    client = await app.installation(1)
    number = fake.add_issue(REPO, title="Flaky")
    fake.fail_next("GET", rf"/repos/octo/app/issues/{number}", 503)
    with pytest.raises(GitHubError) as caught:
        await client.get_issue(REPO, number)
    assert caught.value.status == 503


async def test_rate_limits_are_waited_out_only_when_short(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    number = fake.add_issue(REPO, title="Busy")
    fake.fail_next("GET", rf"/repos/octo/app/issues/{number}", 429)  # retry-after: 0
    assert (await client.get_issue(REPO, number)).title == "Busy"
    reset = str(int(time.time()) + 3600)
    fake.fail_next(
        "GET", rf"/repos/octo/app/issues/{number}", 403, headers={"x-ratelimit-reset": reset}
    )
    started = time.monotonic()
    with pytest.raises(GitHubError) as caught:
        await client.get_issue(REPO, number)
    assert time.monotonic() - started < 5
    assert caught.value.retry_after is not None and caught.value.retry_after > 3000
    assert str(caught.value).startswith(
        f"GitHub rate-limited get_issue (GET /repos/octo/app/"
        f"issues/{number}) with 403: API rate limit exceeded"
    )


async def test_a_failure_is_one_sentence_without_the_token(
    fake: FakeGitHub, app: GitHubApp, client: InstallationClient
) -> None:
    token = await app.installation_token(1)
    number = fake.add_issue(REPO, title="Leaky")
    fake.fail_next(
        "GET",
        rf"/repos/octo/app/issues/{number}",
        422,
        body={
            "message": f"Validation Failed\n\nfor token {token}",
            "errors": [{"message": f"{token} is not welcome here"}],
        },
    )
    with pytest.raises(GitHubError) as caught:
        await client.get_issue(REPO, number)
    message = str(caught.value)
    assert token not in message and token not in caught.value.detail
    assert message == (
        f"GitHub refused get_issue (GET /repos/octo/app/issues/{number}) with 422: "
        "Validation Failed for token [REDACTED] ([REDACTED] is not welcome here)."
    )


async def test_an_installation_without_a_token_names_the_token_call(
    fake: FakeGitHub, app: GitHubApp
) -> None:
    client = await app.installation(99)
    with pytest.raises(GitHubError) as caught:
        await client.get_issue(REPO, 1)
    assert str(caught.value) == (
        "GitHub refused installation_token (POST /app/installations/99/access_tokens) with 404: "
        "Not Found."
    )


async def test_tokens_are_forgotten_once_they_cannot_be_valid(
    fake: FakeGitHub, app: GitHubApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await app.installation_token(1)
    assert token in app.known_secrets()
    later = time.monotonic() + TOKEN_MEMORY_S + 1
    monkeypatch.setattr(app_module.time, "monotonic", lambda: later)
    assert token not in app.known_secrets()  # an hour's token, two hours on: expired
