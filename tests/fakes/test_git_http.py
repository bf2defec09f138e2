"""The git smart-HTTP fake behaves like GitHub for a real git client."""

from __future__ import annotations

import base64
import gzip
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from tests.fakes.git_http import (
    add_commit,
    branch_sha,
    create_bare_repo,
    log,
    make_git_app,
    read_file,
)
from tests.fakes.loopback import serve

TOKEN = "ghs_" + "GitHttpTok" * 4
Call = tuple[str, str | None, str | None, bool]


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    root = tmp_path / "repos"
    create_bare_repo(root, "acme/app", {"README.md": "hi\n", "src/a.py": "A = 1\n"}, commits=3)
    return root


@pytest.fixture
def calls() -> list[Call]:
    return []


@pytest.fixture
def url(repos: Path, calls: list[Call]) -> Iterator[str]:
    def authorize(repo: str, user: str | None, password: str | None, is_write: bool) -> bool:
        calls.append((repo, user, password, is_write))
        return password == TOKEN and repo == "acme/app"

    with serve(make_git_app(repos, authorize)) as server:
        yield server.url


def git(
    *args: str, cwd: Path | None = None, token: str | None = TOKEN
) -> subprocess.CompletedProcess[str]:
    config = ["-c", "credential.helper="]
    if token is not None:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        config += ["-c", f"http.extraHeader=Authorization: Basic {basic}"]
    env = {
        "PATH": os.environ["PATH"],
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", *config, *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_helpers_build_and_read_history(repos: Path) -> None:
    history = log(repos, "acme/app", "main")
    assert [e.message for e in history] == ["Change 3", "Change 2", "Initial commit"]
    assert history[0].sha == branch_sha(repos, "acme/app", "main")
    assert read_file(repos, "acme/app", "main", "src/a.py") == "A = 1\n"
    assert read_file(repos, "acme/app", "main", "missing.txt") is None
    assert branch_sha(repos, "acme/app", "nope") is None
    sha = add_commit(repos, "acme/app", "topic", {"t.txt": "t\n"}, "Topic")
    assert branch_sha(repos, "acme/app", "topic") == sha
    assert log(repos, "acme/app", "topic")[1].sha == history[0].sha


def test_clone_and_push_with_a_token(
    url: str, tmp_path: Path, repos: Path, calls: list[Call]
) -> None:
    work = tmp_path / "clone"
    cloned = git("clone", f"{url}/acme/app.git", str(work))
    assert cloned.returncode == 0, cloned.stderr
    assert (work / "README.md").read_text() == "hi\n"

    (work / "new.txt").write_text("x" * 200_000)  # large enough for a multi-request push
    git("add", "-A", cwd=work)
    git("commit", "-qm", "Add new", cwd=work)
    pushed = git("push", "origin", "HEAD:refs/heads/feature", cwd=work)
    assert pushed.returncode == 0, pushed.stderr
    assert read_file(repos, "acme/app", "feature", "new.txt") == "x" * 200_000
    assert ("acme/app", "x-access-token", TOKEN, True) in calls
    assert ("acme/app", "x-access-token", TOKEN, False) in calls


def test_missing_or_wrong_credentials_get_githubs_401(url: str, tmp_path: Path) -> None:
    response = httpx.get(f"{url}/acme/app.git/info/refs?service=git-upload-pack")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="GitHub"'
    for token in (None, "ghs_" + "WrongWrong" * 4):
        failed = git("clone", f"{url}/acme/app.git", str(tmp_path / "c"), token=token)
        assert failed.returncode != 0
        assert "terminal prompts disabled" in failed.stderr or "401" in failed.stderr


def test_unknown_repositories_are_not_found(repos: Path) -> None:
    app = make_git_app(repos, lambda *_: True)
    with serve(app) as server:
        response = httpx.get(f"{server.url}/acme/ghost.git/info/refs?service=git-upload-pack")
    assert response.status_code == 404


def test_gzip_request_bodies_are_decoded(url: str) -> None:
    def pkt(line: str) -> bytes:
        return f"{len(line) + 4:04x}{line}".encode()

    body = pkt("command=ls-refs\n") + b"0001" + pkt("ref-prefix refs/heads/\n") + b"0000"
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    response = httpx.post(
        f"{url}/acme/app.git/git-upload-pack",
        content=gzip.compress(body),
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-git-upload-pack-request",
            "Content-Encoding": "gzip",
            "Git-Protocol": "version=2",
        },
    )
    assert response.status_code == 200
    assert b"refs/heads/main" in response.content


def test_works_when_mounted_at_the_root_of_another_app(repos: Path, tmp_path: Path) -> None:
    async def api(_: object) -> PlainTextResponse:
        return PlainTextResponse("api")

    github = Starlette(
        routes=[
            Route("/repos/acme/app", api),
            Mount("/", app=make_git_app(repos, lambda *_: True)),
        ]
    )
    with serve(github) as server:
        assert httpx.get(f"{server.url}/repos/acme/app").text == "api"
        cloned = git("clone", f"{server.url}/acme/app.git", str(tmp_path / "c"))
    assert cloned.returncode == 0, cloned.stderr
    assert (tmp_path / "c" / "src" / "a.py").read_text() == "A = 1\n"
