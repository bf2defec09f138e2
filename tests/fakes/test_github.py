"""The fake GitHub, exercised the way Honk uses GitHub: through githubkit and the App auth flow.

Every call goes through githubkit's generated models, and `parsed` also fails on any field GitHub's
schema does not know, so a shape mismatch between the fake and GitHub fails here first.
"""

from __future__ import annotations

import base64
import ssl
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestError, RequestFailed
from pydantic import BaseModel
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from tests.fakes.github import FakeGitHub, PullFile
from tests.fakes.github_auth import generate_private_key_pem

APP_KEY = generate_private_key_pem()
OTHER_KEY = generate_private_key_pem()
REPO = "acme/widgets"
SHA = "a" * 40
# githubkit opens a new httpx client per request; a prebuilt SSL context and no environment
# lookups keep that cheap (and keep proxies from the environment out of loopback tests).
SSL_CONTEXT = ssl.create_default_context()
FAST = {"ssl_verify": SSL_CONTEXT, "trust_env": False, "cache_strategy": None, "http_cache": False}


def unknown_fields(raw: Any, model: Any, where: str = "$") -> list[str]:
    """Keys in the JSON that the githubkit model for that spot does not declare."""
    if isinstance(model, BaseModel) and isinstance(raw, dict):
        if type(model).model_config.get("extra") == "allow":
            return []
        fields = {(info.alias or name): name for name, info in type(model).model_fields.items()}
        found = [f"{where}.{key}" for key in raw if key not in fields]
        for key, value in raw.items():
            if key in fields:
                found += unknown_fields(value, getattr(model, fields[key]), f"{where}.{key}")
        return found
    if isinstance(raw, list) and isinstance(model, list):
        return [
            k
            for i, (r, m) in enumerate(zip(raw, model, strict=True))
            for k in unknown_fields(r, m, f"{where}[{i}]")
        ]
    return []


def parsed(response: Any) -> Any:
    data = response.parsed_data
    assert unknown_fields(response.json(), data) == []
    return data


def client(
    fake: FakeGitHub, key: str = APP_KEY, app_id: int | None = None, **options: Any
) -> GitHub[Any]:
    """A githubkit client with its own token cache (githubkit's default cache is process-wide)."""
    options = {**FAST, "auto_retry": False, **options, "cache_strategy": MemCacheStrategy()}
    return GitHub(AppAuthStrategy(app_id or fake.app_id, key), base_url=fake.url + "/", **options)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(private_key_pem=APP_KEY) as server:
        server.add_repo(REPO, files={".github/honk.yml": "trigger: honk\n", "src/a.py": "x = 1\n"})
        yield server


@pytest.fixture
def raw(fake: FakeGitHub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, trust_env=False, verify=SSL_CONTEXT) as http:
        yield http


@pytest.fixture
def gh(fake: FakeGitHub) -> GitHub[Any]:
    return client(fake)


@pytest.fixture
def inst(gh: GitHub[Any]) -> GitHub[Any]:
    return gh.with_auth(gh.auth.as_installation(1))


def error_of(call: Any) -> httpx.Response:
    """The error response of a failing call; reading `parsed_data` checks it against the error
    model githubkit declares for that status (BasicError, ValidationError)."""
    with pytest.raises(RequestFailed) as caught:
        call()
    assert caught.value.response.parsed_data is not None
    return caught.value.response.raw_response


def message(response: httpx.Response) -> str:
    return str(response.json()["message"])


def first_error(response: httpx.Response) -> dict[str, Any]:
    return dict(response.json()["errors"][0])


# -- authentication ----------------------------------------------------------------------------


def test_app_and_installation_auth_flow(fake: FakeGitHub, gh: GitHub[Any]) -> None:
    app = parsed(gh.rest.apps.get_authenticated())
    assert (app.id, app.slug) == (4242, "honk-test")
    installation = parsed(gh.rest.apps.get_repo_installation("acme", "widgets"))
    assert (installation.id, installation.app_slug) == (1, "honk-test")
    inst = gh.with_auth(gh.auth.as_installation(installation.id))
    parsed(inst.rest.repos.get("acme", "widgets"))
    assert len(fake.tokens) == 1
    token = fake.tokens[0]
    assert token.token.startswith("ghs_") and len(token.token) == 40
    assert 3500 < (token.expires_at - fake.now()).total_seconds() <= 3600
    auth = [r.headers["authorization"] for r in fake.request_log if r.path == "/repos/acme/widgets"]
    assert auth == [f"token {token.token}"]
    assert fake.token_is_valid(token.token, REPO, write=True)


def test_jwt_signed_by_another_key_is_rejected(fake: FakeGitHub) -> None:
    impostor = client(fake, key=OTHER_KEY)
    error = error_of(impostor.rest.apps.get_authenticated)
    assert error.status_code == 401
    assert message(error) == "A JSON web token could not be decoded"
    assert fake.tokens == []


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"iat": -60, "exp": -10}, "'Expiration time' claim ('exp') must be a numeric value"),
        ({"iat": -60, "exp": 1200}, "'Expiration time' claim ('exp') is too far in the future"),
        ({"iat": 600, "exp": 700}, "'Issued at' claim ('iat') must be an Integer"),
        ({"iat": -60, "exp": 500, "iss": "999"}, "Integration not found"),
    ],
)
def test_jwt_time_and_issuer_rules(
    raw: httpx.Client, claims: dict[str, Any], expected: str
) -> None:
    now = int(time.time())
    payload = {
        "iss": claims.get("iss", "4242"),
        "iat": now + claims["iat"],
        "exp": now + claims["exp"],
    }
    token = jwt.encode(payload, APP_KEY, algorithm="RS256")
    response = raw.get("/app", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert message(response).startswith(expected)
    assert response.json()["documentation_url"].startswith("https://docs.github.com/")


def test_installation_token_only_opens_its_installation(fake: FakeGitHub, gh: GitHub[Any]) -> None:
    fake.add_repo("other/secret", installation_id=2)
    mine = gh.with_auth(gh.auth.as_installation(1))
    error = error_of(lambda: mine.rest.repos.get("other", "secret"))
    assert error.status_code == 404  # GitHub hides repositories a token cannot see
    theirs = gh.with_auth(gh.auth.as_installation(2))
    assert parsed(theirs.rest.repos.get("other", "secret")).full_name == "other/secret"
    assert not fake.token_is_valid(fake.tokens[0].token, "other/secret")


def test_expired_or_unknown_token_gets_bad_credentials(
    fake: FakeGitHub, inst: GitHub[Any], raw: httpx.Client
) -> None:
    parsed(inst.rest.repos.get("acme", "widgets"))
    fake.expire_tokens()
    error = error_of(lambda: inst.rest.repos.get("acme", "widgets"))
    assert error.status_code == 401
    assert message(error) == "Bad credentials"
    assert not fake.token_is_valid(fake.tokens[0].token, REPO)
    unknown = raw.get("/repos/acme/widgets", headers={"Authorization": "token ghs_x"})
    assert (unknown.status_code, message(unknown)) == (401, "Bad credentials")


def test_token_narrowed_to_repositories_and_permissions(fake: FakeGitHub, gh: GitHub[Any]) -> None:
    fake.add_repo("acme/gadgets")
    narrow = gh.with_auth(
        gh.auth.as_installation(
            1, repositories=["widgets"], permissions={"contents": "read", "issues": "read"}
        )
    )
    parsed(narrow.rest.repos.get_content("acme", "widgets", "src/a.py"))
    assert error_of(lambda: narrow.rest.repos.get("acme", "gadgets")).status_code == 404
    number = fake.add_issue(REPO, title="t")
    denied = error_of(
        lambda: narrow.rest.issues.create_comment("acme", "widgets", number, body="x")
    )
    assert denied.status_code == 403
    assert message(denied) == "Resource not accessible by integration"
    token = fake.tokens[-1].token
    assert fake.token_is_valid(token, REPO) and not fake.token_is_valid(token, REPO, write=True)
    greedy = gh.with_auth(gh.auth.as_installation(1, permissions={"administration": "write"}))
    with pytest.raises(RequestError) as refused:  # githubkit wraps errors of its token request
        greedy.rest.repos.get("acme", "widgets")
    assert isinstance(refused.value.__cause__, RequestFailed)
    token_error = refused.value.__cause__.response.raw_response
    assert token_error.status_code == 422
    assert message(token_error) == (
        "The permissions requested are not granted to this installation."
    )


# -- repositories --------------------------------------------------------------------------------


def test_repository_and_collaborator_permission(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    repo = parsed(inst.rest.repos.get("acme", "widgets"))
    assert (repo.default_branch, repo.private) == ("main", True)
    assert repo.clone_url == f"{fake.url}/acme/widgets.git"
    fake.set_permission(REPO, "alice", "maintain")
    alice = parsed(inst.rest.repos.get_collaborator_permission_level("acme", "widgets", "alice"))
    assert (alice.permission, alice.role_name, alice.user.login) == ("write", "maintain", "alice")
    stranger = parsed(inst.rest.repos.get_collaborator_permission_level("acme", "widgets", "eve"))
    assert stranger.permission == "none"


def test_contents(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    file = parsed(inst.rest.repos.get_content("acme", "widgets", ".github/honk.yml"))
    assert base64.b64decode(file.content).decode() == "trigger: honk\n"
    fake.set_file(REPO, ".github/honk.yml", "trigger: goose\n", ref="feature")
    other = parsed(
        inst.rest.repos.get_content("acme", "widgets", ".github/honk.yml", ref="feature")
    )
    assert base64.b64decode(other.content).decode() == "trigger: goose\n"
    listing = parsed(inst.rest.repos.get_content("acme", "widgets", "src"))
    assert [(e.name, e.type) for e in listing] == [("a.py", "file")]
    missing = error_of(lambda: inst.rest.repos.get_content("acme", "widgets", "nope.txt"))
    assert missing.status_code == 404
    bad_ref = error_of(lambda: inst.rest.repos.get_content("acme", "widgets", "src", ref="gone"))
    assert message(bad_ref) == "No commit found for the ref gone"


# -- issues, comments, reactions -----------------------------------------------------------------


def test_issue_comments_create_edit_list(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    number = fake.add_issue(REPO, title="Fix it", body="please", labels=["honk"])
    response = inst.rest.issues.get("acme", "widgets", number)
    issue = parsed(response)
    assert (issue.title, issue.labels[0].name) == ("Fix it", "honk")
    assert "pull_request" not in response.json()
    created = parsed(inst.rest.issues.create_comment("acme", "widgets", number, body="On it"))
    assert created.user.login == "honk-test[bot]" and created.user.type == "Bot"
    assert created.html_url == f"{fake.url}/acme/widgets/issues/{number}#issuecomment-{created.id}"
    assert created.performed_via_github_app.slug == "honk-test"
    edited = parsed(inst.rest.issues.update_comment("acme", "widgets", created.id, body="Done"))
    assert edited.body == "Done" and fake.comments[0].body == "Done"
    assert parsed(inst.rest.issues.get_comment("acme", "widgets", created.id)).body == "Done"
    for index in range(4):
        fake.add_comment(REPO, number, body=f"note {index}", user="alice")
    first_page = parsed(inst.rest.issues.list_comments("acme", "widgets", number, per_page=2))
    assert [c.body for c in first_page] == ["Done", "note 0"]
    pages: Any = inst.rest.paginate(
        inst.rest.issues.list_comments,
        owner="acme",
        repo="widgets",
        issue_number=number,
        per_page=2,
    )
    assert [c.body for c in pages] == ["Done", "note 0", "note 1", "note 2", "note 3"]
    assert parsed(inst.rest.issues.get("acme", "widgets", number)).comments == 5


def test_comment_limits_and_missing_issue(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    number = fake.add_issue(REPO, title="t")
    too_long = error_of(
        lambda: inst.rest.issues.create_comment("acme", "widgets", number, body="x" * 65537)
    )
    assert too_long.status_code == 422
    assert "too long" in first_error(too_long)["message"]
    missing = error_of(lambda: inst.rest.issues.create_comment("acme", "widgets", 99, body="x"))
    assert missing.status_code == 404 and fake.comments == []


def test_reactions_are_idempotent_per_user(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    number = fake.add_issue(REPO, title="t")
    comment = fake.add_comment(REPO, number, body="/honk fix")
    first = inst.rest.reactions.create_for_issue_comment(
        "acme", "widgets", comment.id, content="eyes"
    )
    again = inst.rest.reactions.create_for_issue_comment(
        "acme", "widgets", comment.id, content="eyes"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert parsed(first).id == parsed(again).id
    listed = parsed(inst.rest.reactions.list_for_issue_comment("acme", "widgets", comment.id))
    assert [(r.content, r.user.login) for r in listed] == [("eyes", "honk-test[bot]")]
    on_issue = inst.rest.reactions.create_for_issue("acme", "widgets", number, content="rocket")
    assert on_issue.status_code == 201
    assert [
        r.content for r in parsed(inst.rest.reactions.list_for_issue("acme", "widgets", number))
    ] == ["rocket"]
    assert len(fake.reactions) == 2


# -- pull requests ------------------------------------------------------------------------------


def test_create_pull_then_duplicate_is_refused(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    pull = parsed(
        inst.rest.pulls.create(
            "acme", "widgets", title="Fix", head="honk/1", base="main", body="Body", draft=True
        )
    )
    assert (pull.draft, pull.head.ref, pull.head.label, pull.user.login) == (
        True,
        "honk/1",
        "acme:honk/1",
        "honk-test[bot]",
    )
    assert fake.pulls[0].number == pull.number
    again = error_of(
        lambda: inst.rest.pulls.create("acme", "widgets", title="Fix", head="honk/1", base="main")
    )
    assert again.status_code == 422
    assert first_error(again)["message"] == ("A pull request already exists for acme:honk/1.")
    fake.branch_exists = lambda full_name, branch: branch != "missing"
    no_branch = error_of(
        lambda: inst.rest.pulls.create("acme", "widgets", title="x", head="missing", base="main")
    )
    assert first_error(no_branch)["field"] == "head"


def test_list_get_update_pulls(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    mine = fake.add_pull(REPO, title="Mine", head="honk/2")
    fork = fake.add_pull(REPO, title="Fork", head="honk/2", head_repo="mallory/widgets")
    by_head = parsed(inst.rest.pulls.list("acme", "widgets", head="acme:honk/2"))
    assert [p.number for p in by_head] == [mine]
    unfiltered = parsed(inst.rest.pulls.list("acme", "widgets", head="honk/2"))
    assert {p.number for p in unfiltered} == {mine, fork}  # GitHub ignores a head without owner
    forked = parsed(inst.rest.pulls.get("acme", "widgets", fork))
    assert forked.head.repo.full_name == "mallory/widgets" and forked.head.repo.fork
    updated = parsed(inst.rest.pulls.update("acme", "widgets", mine, title="New", state="closed"))
    assert (updated.title, updated.state) == ("New", "closed")
    assert parsed(inst.rest.pulls.list("acme", "widgets", state="closed"))[0].number == mine
    assert parsed(inst.rest.issues.get("acme", "widgets", mine)).pull_request is not None


def test_draft_is_changed_through_graphql_not_patch(
    fake: FakeGitHub, inst: GitHub[Any], raw: httpx.Client
) -> None:
    number = fake.add_pull(REPO, title="Draft", head="honk/3", draft=True)
    response = raw.patch(
        f"/repos/acme/widgets/pulls/{number}",
        json={"draft": False},
        headers={"Authorization": f"token {fake.issue_token()}"},
    )
    assert response.json()["draft"] is True  # REST ignores `draft`, as GitHub does
    assert fake.request_log[-1].json == {"draft": False}
    node = parsed(inst.rest.pulls.get("acme", "widgets", number)).node_id
    mutation = "mutation($id: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $id}) "
    result = inst.graphql(mutation + "{ pullRequest { isDraft } } }", {"id": node})
    assert result["markPullRequestReadyForReview"]["pullRequest"]["isDraft"] is False
    assert fake.pull(REPO, number).draft is False


def test_files_review_comments_replies_reviewers(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    number = fake.add_pull(
        REPO,
        title="PR",
        head="honk/4",
        files=[PullFile("src/a.py", additions=3, deletions=1, patch="@@ x")],
    )
    files = parsed(inst.rest.pulls.list_files("acme", "widgets", number))
    assert [(f.filename, f.changes) for f in files] == [("src/a.py", 4)]
    note = fake.add_review_comment(REPO, number, body="/honk rename", path="src/a.py", line=2)
    listed = parsed(inst.rest.pulls.list_review_comments("acme", "widgets", number))
    assert [(c.id, c.line, c.path) for c in listed] == [(note.id, 2, "src/a.py")]
    reply = parsed(
        inst.rest.pulls.create_reply_for_review_comment(
            "acme", "widgets", number, note.id, body="Done"
        )
    )
    assert (reply.in_reply_to_id, reply.user.login) == (note.id, "honk-test[bot]")
    eyes = inst.rest.reactions.create_for_pull_request_review_comment(
        "acme", "widgets", note.id, content="eyes"
    )
    assert eyes.status_code == 201
    fake.set_permission(REPO, "alice", "write")
    parsed(inst.rest.pulls.request_reviewers("acme", "widgets", number, reviewers=["alice"]))
    assert fake.requested_reviewers[f"{REPO}#{number}"] == ["alice"]
    refused = error_of(
        lambda: inst.rest.pulls.request_reviewers("acme", "widgets", number, reviewers=["eve"])
    )
    assert refused.status_code == 422


# -- check runs -------------------------------------------------------------------------------


def annotation(line: int) -> dict[str, Any]:
    return {
        "path": "src/a.py",
        "start_line": line,
        "end_line": line,
        "annotation_level": "warning",
        "message": f"line {line}",
    }


def output(title: str, summary: str, notes: list[dict[str, Any]] | None = None) -> Any:
    """A check run `output` (typed Any: githubkit's TypedDicts would refuse over-limit input)."""
    return {"title": title, "summary": summary, **({"annotations": notes} if notes else {})}


def test_check_runs_lifecycle_and_listing(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    created = parsed(
        inst.rest.checks.create(
            "acme",
            "widgets",
            name="honk",
            head_sha=SHA,
            status="in_progress",
            external_id="run-1",
            output=output("Working", "s", [annotation(1)]),
        )
    )
    assert (created.status, created.app.id, created.external_id) == ("in_progress", 4242, "run-1")
    done = parsed(
        inst.rest.checks.update(
            "acme",
            "widgets",
            created.id,
            conclusion="success",
            output=output("Done", "ok", [annotation(2)]),
        )
    )
    assert (done.status, done.conclusion, done.output.annotations_count) == (
        "completed",
        "success",
        2,
    )
    parsed(inst.rest.checks.create("acme", "widgets", name="other", head_sha=SHA))
    listed = parsed(inst.rest.checks.list_for_ref("acme", "widgets", SHA, check_name="honk"))
    assert (listed.total_count, listed.check_runs[0].id) == (1, created.id)
    fake.branch_sha = lambda full_name, branch: SHA
    by_branch = parsed(inst.rest.checks.list_for_ref("acme", "widgets", "main", app_id=4242))
    assert by_branch.total_count == 2
    assert parsed(inst.rest.checks.get("acme", "widgets", created.id)).output.title == "Done"
    notes = parsed(inst.rest.checks.list_annotations("acme", "widgets", created.id))
    assert [a.message for a in notes] == ["line 1", "line 2"]


def test_check_run_limits(fake: FakeGitHub) -> None:
    lenient = client(fake, rest_api_validate_body=False)
    inst = lenient.with_auth(lenient.auth.as_installation(1))
    run = parsed(inst.rest.checks.create("acme", "widgets", name="honk", head_sha=SHA))
    emoji = "\N{DUCK}" * 20_000  # 20k characters, 80k bytes: GitHub counts bytes
    big = error_of(
        lambda: inst.rest.checks.update("acme", "widgets", run.id, output=output("t", emoji))
    )
    assert big.status_code == 422
    assert first_error(big)["field"] == "summary"
    many = error_of(
        lambda: inst.rest.checks.update(
            "acme",
            "widgets",
            run.id,
            output=output("t", "s", [annotation(i) for i in range(51)]),
        )
    )
    assert "No more than 50 items are allowed; 51 were supplied." in message(many)
    assert fake.check_runs[0].annotations == [] and fake.check_runs[0].output == {}
    branch_as_sha = error_of(
        lambda: inst.rest.checks.create("acme", "widgets", name="x", head_sha="main")
    )
    assert branch_as_sha.status_code == 422


# -- failures, headers, routing -------------------------------------------------------------


def test_failure_injection(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    fake.fail_next("GET", r"/repos/acme/widgets", 500)
    assert error_of(lambda: inst.rest.repos.get("acme", "widgets")).status_code == 500
    parsed(inst.rest.repos.get("acme", "widgets"))
    fake.fail_next("get", r"/repos/[^/]+/widgets/contents/.*", 404, {"message": "Gone"}, times=2)
    for _ in range(2):
        gone = error_of(lambda: inst.rest.repos.get_content("acme", "widgets", "src/a.py"))
        assert message(gone) == "Gone"
    parsed(inst.rest.repos.get_content("acme", "widgets", "src/a.py"))


def test_rate_limit_injection_is_retried_by_githubkit(fake: FakeGitHub) -> None:
    patient = client(fake, auto_retry=True)
    inst = patient.with_auth(patient.auth.as_installation(1))
    fake.fail_next("GET", r"/repos/acme/widgets", 403)
    assert parsed(inst.rest.repos.get("acme", "widgets")).name == "widgets"
    assert fake.requests.count(("GET", "/repos/acme/widgets")) == 2
    limited = next(r for r in fake.request_log if r.path == "/repos/acme/widgets")
    assert limited.status == 403


def test_github_headers_unknown_routes_and_etags(
    fake: FakeGitHub, inst: GitHub[Any], raw: httpx.Client
) -> None:
    response = inst.rest.repos.get("acme", "widgets")
    for header in (
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
        "x-ratelimit-resource",
        "x-github-request-id",
        "etag",
    ):
        assert header in response.headers
    assert response.headers["x-ratelimit-limit"] == "5000"
    again = raw.get(
        "/repos/acme/widgets",
        headers={
            "Authorization": f"token {fake.tokens[0].token}",
            "If-None-Match": response.headers["etag"],
        },
    )
    assert again.status_code == 304
    unknown = raw.get("/repos/acme/widgets/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "Not Found" and "x-github-request-id" in unknown.headers
    assert ("GET", "/repos/acme/widgets/no-such-thing") in fake.requests


def test_git_requests_go_to_the_attached_git_app(fake: FakeGitHub, raw: httpx.Client) -> None:
    seen: list[str] = []

    async def git_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await PlainTextResponse("refs")(scope, receive, send)

    fake.attach_git(git_app)
    response = raw.get("/acme/widgets.git/info/refs?service=git-upload-pack")
    assert (response.status_code, response.text) == (200, "refs")
    assert seen == ["/acme/widgets.git/info/refs"]
    assert fake.api_requests() == []
    fake.fail_next("POST", r"/acme/widgets\.git/git-receive-pack", 500)
    assert raw.post("/acme/widgets.git/git-receive-pack").status_code == 500
    assert seen == ["/acme/widgets.git/info/refs"]


async def test_async_client_works_too(fake: FakeGitHub, inst: GitHub[Any]) -> None:
    number = fake.add_issue(REPO, title="t")
    response = await inst.rest.issues.async_create_comment("acme", "widgets", number, body="hi")
    assert parsed(response).body == "hi" and fake.comments_on(REPO, number)[0].body == "hi"


# -- manifest flow -----------------------------------------------------------------------------


def test_manifest_flow_converts_once(fake: FakeGitHub, raw: httpx.Client) -> None:
    manifest = (
        '{"name": "Honk Local", "url": "https://honk.example", "redirect_url": '
        '"http://127.0.0.1:9/setup/done", "hook_attributes": {"url": "https://h/hook"},'
        ' "default_permissions": {"issues": "write"}, "default_events": ["issues"]}'
    )
    browser = raw.post(
        "/organizations/acme/settings/apps/new?state=xyz", data={"manifest": manifest}
    )
    assert browser.status_code == 302
    location = urlsplit(browser.headers["location"])
    assert location.path == "/setup/done"
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"] and fake.manifests[0].manifest["name"] == "Honk Local"
    anonymous = GitHub(
        base_url=fake.url + "/",
        ssl_verify=SSL_CONTEXT,
        trust_env=False,
        http_cache=False,
        cache_strategy=MemCacheStrategy(),
        auto_retry=False,
    )
    app = parsed(anonymous.rest.apps.create_from_manifest(query["code"][0]))
    assert (app.slug, app.owner.login, app.permissions.issues) == ("honk-local", "acme", "write")
    assert app.pem.startswith("-----BEGIN RSA PRIVATE KEY-----") and app.webhook_secret
    twice = error_of(lambda: anonymous.rest.apps.create_from_manifest(query["code"][0]))
    assert twice.status_code == 404
    new_app = client(fake, key=app.pem, app_id=app.id)
    assert parsed(new_app.rest.apps.get_authenticated()).name == "Honk Local"
