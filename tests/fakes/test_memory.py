"""The in-memory GitHub (tests/fakes/memory/) must answer as the real client does, or the step tests
that use it prove nothing: same methods and signatures, and the same answers for one scenario
played against both the real `InstallationClient` (over HTTP, on the fake GitHub server) and the
in-memory one."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from honk_app.github.app import GitHubApp
from honk_app.github.errors import GitHubError, RetryPolicy
from honk_app.github.installation import InstallationClient
from honk_app.github.models import (
    CheckRunInfo,
    Comment,
    CommentInfo,
    IssueInfo,
    PullInfo,
    ReviewCommentInfo,
)
from tests.fakes.github import FakeGitHub
from tests.fakes.memory.app import MemoryGitHub
from tests.fakes.memory.installation import MemoryInstallation

APP_ID = 4242
APP_SLUG = "honk-test"
REPO = "octo/app"
SHA = "a" * 40
MARKER = "<!-- honk:run=honk-d1 -->"
QUICK = RetryPolicy(server_error_retries=0, rate_limit_retries=0, backoff_s=0, max_wait_s=1)


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_installation_has_every_method_of_the_real_one_with_its_signature() -> None:
    real = public_methods(InstallationClient)
    memory = public_methods(MemoryInstallation)
    assert sorted(memory) == sorted(real)
    for name, signature in real.items():
        assert memory[name] == signature, name


def test_the_app_has_the_methods_the_steps_use_with_their_signatures() -> None:
    real = public_methods(GitHubApp)
    memory = public_methods(MemoryGitHub)
    for name in ("installation", "installation_token", "app_info", "aclose", "known_secrets"):
        expected = real[name]
        if name == "installation":  # returns the in-memory installation
            expected = expected.replace(return_annotation="MemoryInstallation")
        assert memory[name] == expected, name


# ---- one scenario, both clients -----------------------------------------------------------------

Seeded = dict[str, int]
Client = Any  # InstallationClient or MemoryInstallation


# The fields each answer is compared by; an `id` by the order first seen, a reply or App id by
# whether it is set.
COMPARED: dict[type, tuple[str, ...]] = {
    Comment: ("id", "body", "author"),
    CommentInfo: ("id", "author", "body", "via_app_id"),
    IssueInfo: ("number", "title", "body", "author", "is_pull_request", "state", "labels"),
    PullInfo: (
        "number",
        "title",
        "body",
        "head_ref",
        "base_ref",
        "draft",
        "author",
        "state",
        "head_repo_full_name",
    ),
    CheckRunInfo: ("id", "name", "external_id", "status", "conclusion", "details_url"),
    ReviewCommentInfo: ("path", "line", "body", "author", "in_reply_to_id"),
}


class Recorder:
    """Answers in a form both sides share: ids become the order in which they were first seen."""

    def __init__(self) -> None:
        self.ids: dict[int, int] = {}
        self.answers: list[Any] = []

    def id(self, value: int) -> int:
        return self.ids.setdefault(value, len(self.ids))

    def norm(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.norm(v) for v in value]
        names = COMPARED.get(type(value))
        if names is None:
            return value
        return (type(value).__name__, *(self.field(value, name) for name in names))

    def field(self, value: Any, name: str) -> Any:
        found = getattr(value, name)
        if name == "id":
            return self.id(found)
        return found is not None if name in ("via_app_id", "in_reply_to_id") else found

    async def __call__(self, call: Awaitable[Any], *, is_id: bool = False) -> Any:
        try:
            value = await call
        except GitHubError as error:
            self.answers.append(("GitHubError", error.status))
            return None
        except ValueError as error:
            self.answers.append(("ValueError", str(error)))
            return None
        self.answers.append(self.id(value) if is_id else self.norm(value))
        return value


def annotation(n: int) -> dict[str, Any]:
    return {
        "path": "a.py",
        "start_line": n + 1,
        "end_line": n + 1,
        "annotation_level": "failure",
        "message": f"failure {n}",
    }


async def scenario(gh: Client, seeded: Seeded) -> list[Any]:
    """What the steps do with GitHub, including every find-before-create repeated."""
    r = Recorder()
    issue, pull = seeded["issue"], seeded["pull"]
    # people, files, configuration
    for login in ("alice", "reader", "stranger"):
        await r(gh.permission(REPO, login))
    await r(gh.get_file(REPO, "README.md"))
    await r(gh.get_file(REPO, "missing.md"))
    await r(gh.get_file(REPO, "src/app.py", ref="feature"))
    await r(gh.repo_config_text(REPO, "octo", "main"))  # the owner's .github: not installed
    # issues and comments
    await r(gh.get_issue(REPO, issue))
    await r(gh.get_issue(REPO, pull))
    await r(gh.get_issue(REPO, 999))
    first = await r(gh.upsert_comment(REPO, issue, MARKER, "Working on it"))
    await r(gh.upsert_comment(REPO, issue, MARKER, "Working on it"))
    await r(gh.upsert_comment(REPO, issue, MARKER, "Done"))
    await r(gh.update_comment(REPO, first.id, "Done, edited"))
    await r(gh.update_comment(REPO, 123456789, "nobody's"))
    await r(gh.find_comment_with_marker(REPO, issue, MARKER))
    await r(gh.find_comment_with_marker(REPO, issue, "<!-- honk:run=other -->"))
    for _ in range(2):
        await r(gh.reply(REPO, issue, "Usage: /honk <task>", marker="<!-- honk:reply=7 -->"))
    await r(gh.list_issue_comments(REPO, issue))
    # reactions
    for _ in range(2):
        await r(gh.add_reaction(REPO, issue_number=issue))
        await r(gh.add_reaction(REPO, comment_id=seeded["comment"], content="rocket"))
    await r(gh.add_reaction(REPO, issue_number=issue, comment_id=seeded["comment"]))
    # pull requests
    await r(gh.get_pull(REPO, pull))
    await r(gh.pull_files(REPO, pull))
    await r(gh.pull_review_comments(REPO, pull))
    for _ in range(2):
        await r(gh.reply_to_review_comment(REPO, pull, seeded["review"], "On it", marker=MARKER))
    await r(gh.pull_review_comments(REPO, pull))
    await r(gh.find_pull_by_head(REPO, "octo", "honk/1-fix"))
    opened = await r(
        gh.create_or_update_pull(
            REPO, head="honk/1-fix", base="main", title="Honk #1: Fix", body="Draft", draft=True
        )
    )
    await r(
        gh.create_or_update_pull(
            REPO, head="honk/1-fix", base="main", title="Honk #1: Fix", body="Draft", draft=False
        )
    )
    await r(
        gh.create_or_update_pull(
            REPO,
            head="honk/1-fix",
            base="main",
            title="Honk #1: Fix",
            body="Tests pass",
            draft=False,
        )
    )
    await r(gh.find_pull_by_head(REPO, "octo", "honk/1-fix"))
    await r(gh.set_draft(REPO, opened, False))
    await r(gh.set_draft(REPO, opened, False))  # a stale PullInfo: the current state is read
    await r(gh.get_pull(REPO, opened.number))
    for login in ("alice", "stranger", "alice"):
        await r(gh.request_review(REPO, opened.number, login))
    await r(gh.request_review(REPO, pull, "octocat"))  # the author
    # check runs
    output = {
        "title": "Tests",
        "summary": "3 failed",
        "text": "details",
        "annotations": [annotation(i) for i in range(120)],
    }
    await r(
        gh.upsert_check_run(
            REPO,
            head_sha=SHA,
            name="Honk",
            external_id="honk-d1",
            status="in_progress",
            output=output,
        ),
        is_id=True,
    )
    await r(
        gh.upsert_check_run(
            REPO,
            head_sha=SHA,
            name="Honk",
            external_id="honk-d1",
            status="completed",
            conclusion="success",
            output={"title": "Tests", "summary": "pass", "text": "ok"},
            details_url="https://example.com/pull/1",
        ),
        is_id=True,
    )
    await r(
        gh.upsert_check_run(
            REPO, head_sha=SHA, name="Honk", external_id="honk-d2", status="queued"
        ),
        is_id=True,
    )
    await r(gh.list_check_runs(REPO, SHA, "Honk"))
    await r(gh.list_check_runs(REPO, "b" * 40, "Honk"))
    return r.answers


async def real_answers(private_key: str) -> tuple[list[Any], Any]:
    with FakeGitHub(app_id=APP_ID, app_slug=APP_SLUG, private_key_pem=private_key) as fake:
        fake.add_repo(REPO, files={"README.md": "# app\n"})
        fake.set_file(REPO, "src/app.py", "x = 1\n", ref="feature")
        fake.add_repo("octo/.github", installation_id=2, files={".github/honk.yml": "x: 1\n"})
        fake.set_permission(REPO, "alice", "write")
        fake.set_permission(REPO, "reader", "read")
        issue = fake.add_issue(REPO, title="Fix", body="Please", user="alice", labels=["honk"])
        comment = fake.add_comment(REPO, issue, body=f"copied {MARKER}", user="mallory")
        pull = fake.add_pull(REPO, title="Feature", head="feature", user="octocat")
        fake.set_pull_files(REPO, pull, [])
        review = fake.add_review_comment(REPO, pull, body="/honk rename", path="a.py", line=3)
        app = GitHubApp(app_id=APP_ID, private_key_pem=private_key, api_url=fake.url, retry=QUICK)
        seeded = {"issue": issue, "pull": pull, "comment": comment.id, "review": review.id}
        try:
            answers = await scenario(await app.installation(1), seeded)
        finally:
            await app.aclose()
        state = (
            [len(r.annotations) for r in fake.check_runs],
            {
                number: reviewers
                for number, reviewers in fake.requested_reviewers.items()
                if reviewers
            },
            len(fake.reactions),
        )
        return answers, state


async def memory_answers() -> tuple[list[Any], Any]:
    github = MemoryGitHub(app_id=APP_ID, app_slug=APP_SLUG)
    github.add_repo(REPO, installation_id=1, files={"README.md": "# app\n"})
    github.set_branch(REPO, "feature")
    github.set_file(REPO, "src/app.py", "x = 1\n", branch="feature")
    github.set_branch(REPO, "honk/1-fix")
    github.add_repo("octo/.github", installation_id=2, files={".github/honk.yml": "x: 1\n"})
    github.set_permission(REPO, "alice", "write")
    github.set_permission(REPO, "reader", "read")
    issue = github.add_issue(REPO, title="Fix", body="Please", author="alice", labels=("honk",))
    comment = github.add_comment(REPO, issue.number, f"copied {MARKER}", author="mallory")
    pull = github.add_pull(REPO, title="Feature", head_ref="feature", author="octocat")
    review = github.add_review_comment(
        REPO, pull.number, "/honk rename", path="a.py", line=3, author="octocat"
    )
    seeded = {
        "issue": issue.number,
        "pull": pull.number,
        "comment": comment.id,
        "review": review.id,
    }
    answers = await scenario(await github.installation(1), seeded)
    state = (
        [len(r.annotations) for r in github.check_runs],
        {
            f"{REPO}#{p.number}": p.requested_reviewers
            for p in github.pulls_in(REPO)
            if p.requested_reviewers
        },
        len(github.reactions),
    )
    return answers, state


async def test_both_clients_answer_the_same_scenario_alike(app_private_key: str) -> None:
    real, real_state = await real_answers(app_private_key)
    memory, memory_state = await memory_answers()
    assert len(memory) == len(real)
    for index, (mine, theirs) in enumerate(zip(memory, real, strict=True)):
        assert mine == theirs, f"answer {index}"
    assert memory_state == real_state
    assert memory_state == ([120, 0], {f"{REPO}#3": ["alice"]}, 2)


@pytest.mark.parametrize("method", ["request_review", "upsert_comment"])
async def test_fail_once_fails_one_call(method: str) -> None:
    github = MemoryGitHub()
    github.add_repo(REPO, installation_id=1)
    issue = github.add_issue(REPO)
    pull = github.add_pull(REPO)
    gh = await github.installation(1)
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "request_review": lambda: gh.request_review(REPO, pull.number, "mona"),
        "upsert_comment": lambda: gh.upsert_comment(REPO, issue.number, MARKER, "hi"),
    }
    github.fail_once(method, GitHubError("GitHub did not answer in time.", status=None))
    with pytest.raises(GitHubError):
        await calls[method]()
    await calls[method]()  # the next call goes through
