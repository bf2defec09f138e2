"""Branch facts and cached permissions through the real client, against the fake GitHub on
loopback (githubkit's models parse its answers); the permission cache on its own clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from honk_app.github.app import GitHubApp
from honk_app.github.branches import rule_types_from_json
from honk_app.github.errors import RetryPolicy
from honk_app.github.installation import InstallationClient
from honk_app.github.permission_cache import PermissionCache
from honk_app.safety.push_rules import BranchFacts
from tests.fakes.github import FakeGitHub
from tests.fakes.github_auth import generate_private_key_pem

REPO = "octo/app"
QUICK = RetryPolicy(server_error_retries=0, rate_limit_retries=0, backoff_s=0, max_wait_s=1)
PULL_REQUEST_RULE = {
    "type": "pull_request",
    "parameters": {
        "dismiss_stale_reviews_on_push": True,
        "require_code_owner_review": False,
        "require_last_push_approval": False,
        "required_approving_review_count": 1,
        "required_review_thread_resolution": False,
    },
}
UPDATE_RULE = {"type": "update", "parameters": {"update_allows_fetch_and_merge": False}}
BRANCHES = {"main", "release", "release/2.x", "feature", "feature/a#b", "honk/7-x"}


@pytest.fixture(scope="module")
def private_key() -> str:
    return generate_private_key_pem()


@pytest.fixture
def fake(private_key: str) -> Iterator[FakeGitHub]:
    with FakeGitHub(app_id=4242, app_slug="honk-test", private_key_pem=private_key) as fake:
        fake.add_repo(REPO, files={"README.md": "# app\n"})
        fake.branch_exists = lambda full_name, branch: branch in BRANCHES
        yield fake


@pytest.fixture
async def client(fake: FakeGitHub) -> AsyncIterator[InstallationClient]:
    app = GitHubApp(
        app_id=fake.app_id, private_key_pem=fake.private_key_pem, api_url=fake.url, retry=QUICK
    )
    yield await app.installation(1)


def asked(fake: FakeGitHub, path_start: str) -> int:
    return sum(1 for m, p in fake.api_requests() if m == "GET" and p.startswith(path_start))


@pytest.mark.parametrize(
    ("branch", "facts"),
    [
        ("feature", BranchFacts(True, False, ("deletion", "non_fast_forward"))),
        ("release", BranchFacts(True, True, ("deletion", "non_fast_forward", "pull_request"))),
        ("release/2.x", BranchFacts(True, False, ("deletion", "non_fast_forward", "update"))),
        ("feature/a#b", BranchFacts(True, False, ("deletion", "non_fast_forward"))),
        ("honk/7-x", BranchFacts(True, False, ("deletion", "non_fast_forward"))),
        ("gone", BranchFacts(exists=False)),
    ],
)
async def test_branch_facts_say_what_guards_a_branch(
    fake: FakeGitHub, client: InstallationClient, branch: str, facts: BranchFacts
) -> None:
    fake.guard_branch(REPO, "*", rules=["deletion", "non_fast_forward"])  # a common org default
    fake.guard_branch(REPO, "release", protected=True, rules=[PULL_REQUEST_RULE])
    fake.guard_branch(REPO, "release/*", rules=[UPDATE_RULE])
    assert await client.branch_facts(REPO, branch) == facts


async def test_a_rule_type_newer_than_githubkit_still_guards(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    fake.guard_branch(REPO, "feature", rules=["deletion", "push_to_the_moon"])
    facts = await client.branch_facts(REPO, "feature")
    assert facts.rule_types == ("deletion", "push_to_the_moon")


def test_unreadable_rules_fail_closed() -> None:
    assert rule_types_from_json([{"type": "update"}, {"no": "type"}, 3]) == [
        "update",
        "unreadable",
        "unreadable",
    ]
    assert rule_types_from_json({"message": "?"}) == ["unreadable"]


async def test_cached_permission_asks_github_once_per_person(
    fake: FakeGitHub, client: InstallationClient
) -> None:
    fake.set_permission(REPO, "alice", "write")
    levels = [
        await client.cached_permission(REPO, login) for login in ["alice", "Alice", "bob"] * 10
    ]
    assert levels == ["write", "write", "none"] * 10
    assert asked(fake, f"/repos/{REPO}/collaborators/") == 2
    # whether someone may ask Honk is never answered from the cache
    fake.set_permission(REPO, "alice", "read")
    assert await client.permission(REPO, "alice") == "read"
    assert asked(fake, f"/repos/{REPO}/collaborators/") == 3


def test_the_permission_cache_forgets_old_answers_and_stays_small() -> None:
    now = [0.0]
    cache = PermissionCache(ttl_s=600, max_entries=3, clock=lambda: now[0])
    cache.put("o/r", "Alice", "write")
    assert cache.get("O/R", "alice") == "write"
    now[0] = 599.0
    assert cache.get("o/r", "alice") == "write"
    now[0] = 600.0
    assert cache.get("o/r", "alice") is None  # asked again after ten minutes
    for login in ("a", "b", "c", "d"):
        cache.put("o/r", login, "read")
    assert len(cache) == 3
    assert cache.get("o/r", "a") is None  # the oldest answer went first
    assert cache.get("o/r", "d") == "read"
