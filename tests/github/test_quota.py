"""The adapter keeps each installation's quota from the answers of the fake GitHub on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from githubkit import GitHub

from honk_app.github.app import GitHubApp, installation_quota
from honk_app.github.errors import GitHubError, RetryPolicy
from honk_app.github.installation import InstallationClient
from honk_app.github.ratelimit import Quota
from tests.fakes.github import FakeGitHub
from tests.fakes.github_ratelimit import set_rate_limit

REPO, OTHER = "octo/app", "elsewhere/lib"
QUICK = RetryPolicy(server_error_retries=0, rate_limit_retries=1, backoff_s=0, max_wait_s=5)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo(REPO, installation_id=1)
        fake.add_repo(OTHER, installation_id=2)
        yield fake


@pytest.fixture
def app(fake: FakeGitHub) -> GitHubApp:
    return GitHubApp(
        app_id=fake.app_id, private_key_pem=fake.private_key_pem, api_url=fake.url, retry=QUICK
    )


def window(fake: FakeGitHub, installation_id: int) -> tuple[int, int, int]:
    """(limit, remaining, reset) as the fake last counted them for the installation."""
    current = fake.rate_windows[f"installation:{installation_id}:core"]
    return current.limit, current.remaining, current.reset_at


async def test_every_answer_updates_the_installations_quota(
    fake: FakeGitHub, app: GitHubApp
) -> None:
    set_rate_limit(fake, 1, remaining=4000, reset_in_s=600)
    client = await app.installation(1)
    number = fake.add_issue(REPO, title="Count me")
    await client.get_issue(REPO, number)
    assert installation_quota(client) == Quota(*window(fake, 1))
    set_rate_limit(fake, 1, remaining=700)
    await client.get_issue(REPO, number)
    reset = window(fake, 1)[2]
    assert installation_quota(client) == Quota(5000, 699, reset) == Quota(*window(fake, 1))


async def test_installations_are_kept_apart_and_their_clients_share_one_quota(
    fake: FakeGitHub, app: GitHubApp
) -> None:
    first, again, other = (
        await app.installation(1),
        await app.installation(1),
        await app.installation(2),
    )
    set_rate_limit(fake, 2, remaining=42)
    await other.get_issue(OTHER, fake.add_issue(OTHER, title="Elsewhere"))
    await first.get_issue(REPO, fake.add_issue(REPO, title="Here"))
    quota, other_quota = installation_quota(again), installation_quota(other)
    assert quota is not None and other_quota is not None
    assert quota == installation_quota(first) and quota.remaining > 4000
    assert other_quota.remaining == 41


async def test_a_client_the_app_did_not_make_has_no_quota(fake: FakeGitHub, app: GitHubApp) -> None:
    made = await app.installation(1)
    by_hand = InstallationClient(GitHub("token"), await app.app_info(), list)
    assert installation_quota(made) is not None
    assert installation_quota(by_hand) is None
    assert installation_quota("octo/app") is None


async def test_a_call_over_the_quota_is_refused_and_the_quota_says_none_left(
    fake: FakeGitHub, app: GitHubApp
) -> None:
    client = await app.installation(1)
    number = fake.add_issue(REPO, title="One too many")
    set_rate_limit(fake, 1, remaining=0)
    with pytest.raises(GitHubError) as caught:
        await client.get_issue(REPO, number)
    assert caught.value.status == 403
    assert str(caught.value).startswith("GitHub rate-limited get_issue")
    quota = installation_quota(client)
    assert quota is not None and quota.remaining == 0 and quota.reset_at == window(fake, 1)[2]
