"""Real git over smart HTTP, for tests: `git http-backend` behind HTTP Basic auth, as GitHub does.

Repositories live at `root/{owner}/{repo}.git`. `authorize(owner_repo, username, password,
is_write)` decides every request (is_write for receive-pack, i.e. a push); a refusal is a 401 with
GitHub's `WWW-Authenticate` header, so git reports an authentication failure. The app routes on the
full path, so it works at the server root or mounted by the fake GitHub for `/{owner}/{repo}.git/…`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

Authorize = Callable[[str, str | None, str | None, bool], bool]

_FIXED_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
}
_AUTHOR = {
    "GIT_AUTHOR_NAME": "Fixture Author",
    "GIT_AUTHOR_EMAIL": "fixture@example.com",
    "GIT_COMMITTER_NAME": "Fixture Author",
    "GIT_COMMITTER_EMAIL": "fixture@example.com",
}


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else (None, None)


def _parse_cgi(output: bytes) -> Response:
    head, sep, body = output.partition(b"\r\n\r\n")
    if not sep:
        head, _, body = output.partition(b"\n\n")
    status, headers = 200, {}
    for raw in head.decode("latin-1").splitlines():
        name, _, value = raw.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers[name.strip()] = value.strip()
    headers.pop("Content-Length", None)
    return Response(body, status_code=status, headers=headers)


def make_git_app(root: Path, authorize: Authorize) -> ASGIApp:
    """An ASGI app serving every bare repository under `root` through `git http-backend`."""

    async def handle(request: Request) -> Response:
        owner, name = request.path_params["owner"], request.path_params["name"]
        service = request.path_params["service"]
        if owner.startswith(".") or name.startswith("."):
            return Response("Repository not found.\n", status_code=404)
        is_write = service == "git-receive-pack" or (
            service == "info/refs" and request.query_params.get("service") == "git-receive-pack"
        )
        username, password = _basic_credentials(request.headers.get("authorization"))
        if not authorize(f"{owner}/{name}", username, password, is_write):
            return Response(
                "Invalid username or token.\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="GitHub"'},
            )
        if not (root / owner / f"{name}.git").is_dir():
            return Response("Repository not found.\n", status_code=404)
        body = await request.body()
        if request.headers.get("content-encoding", "").lower() in ("gzip", "x-gzip"):
            body = gzip.decompress(body)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **_FIXED_ENV,
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.url.query,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "PATH_INFO": f"/{owner}/{name}.git/{service}",
            "REMOTE_USER": username or "",
            "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
            "GIT_PROTOCOL": request.headers.get("git-protocol", ""),
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
        }
        proc = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        output, errors = await proc.communicate(body)
        if proc.returncode != 0 and not output:
            return Response(errors.decode("utf-8", "replace"), status_code=500)
        return _parse_cgi(output)

    route = Route("/{owner}/{name}.git/{service:path}", handle, methods=["GET", "POST"], name="git")
    return Starlette(routes=[route])


# ---- helpers for tests: build and inspect repositories on disk ---------------------------------


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **_FIXED_ENV, **_AUTHOR},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout if done.returncode == 0 else ""


def repo_path(root: Path, full_name: str) -> Path:
    owner, name = full_name.split("/")
    return root / owner / f"{name}.git"


def create_bare_repo(
    root: Path,
    full_name: str,
    files: dict[str, str],
    *,
    default_branch: str = "main",
    commits: int = 1,
) -> Path:
    """A bare repository with `commits` commits on `default_branch`; the first adds `files`,
    each later one appends a line to HISTORY.md (built in a temporary clone, then pushed)."""
    bare = repo_path(root, full_name)
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(bare))
    _git("config", "http.receivepack", "true", cwd=bare)
    with tempfile.TemporaryDirectory(prefix="git-fixture-") as tmp:
        work = Path(tmp)
        _git("init", "--quiet", f"--initial-branch={default_branch}", cwd=work)
        for rel, text in files.items():
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        _git("add", "-A", cwd=work)
        _git("commit", "--quiet", "--allow-empty", "-m", "Initial commit", cwd=work)
        for number in range(2, commits + 1):
            with (work / "HISTORY.md").open("a") as history:
                history.write(f"Change {number}\n")
            _git("add", "-A", cwd=work)
            _git("commit", "--quiet", "-m", f"Change {number}", cwd=work)
        _git("push", "--quiet", str(bare), f"HEAD:refs/heads/{default_branch}", cwd=work)
    return bare


def add_commit(
    root: Path, full_name: str, branch: str, files: dict[str, str], message: str = "Update"
) -> str:
    """Commit `files` on top of `branch` (created from the default branch if new); the new sha."""
    bare = repo_path(root, full_name)
    with tempfile.TemporaryDirectory(prefix="git-fixture-") as tmp:
        work = Path(tmp) / "w"
        _git("clone", "--quiet", str(bare), str(work))
        if branch_sha(root, full_name, branch):
            _git("checkout", "--quiet", branch, cwd=work)
        else:
            _git("checkout", "--quiet", "-b", branch, cwd=work)
        for rel, text in files.items():
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        _git("add", "-A", cwd=work)
        _git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work)
        _git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return _git("rev-parse", "HEAD", cwd=work).strip()


def read_file(root: Path, full_name: str, ref: str, path: str) -> str | None:
    """The file at `ref:path`, or None when the ref or the path does not exist."""
    done = subprocess.run(
        ["git", "--git-dir", str(repo_path(root, full_name)), "show", f"{ref}:{path}"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **_FIXED_ENV},
        capture_output=True,
        check=False,
    )
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def branch_sha(root: Path, full_name: str, branch: str) -> str | None:
    out = _git(
        "--git-dir",
        str(repo_path(root, full_name)),
        "rev-parse",
        "--verify",
        "--quiet",
        f"refs/heads/{branch}",
        check=False,
    )
    return out.strip() or None


@dataclass(frozen=True)
class LogEntry:
    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    committer_name: str
    committer_email: str
    message: str


def log(root: Path, full_name: str, ref: str) -> list[LogEntry]:
    """Commits reachable from `ref`, newest first."""
    fmt = "%H%x1f%P%x1f%an%x1f%ae%x1f%cn%x1f%ce%x1f%B%x1e"
    out = _git("--git-dir", str(repo_path(root, full_name)), "log", f"--format={fmt}", ref)
    entries = []
    for record in out.split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) == 7:
            sha, parents, an, ae, cn, ce, message = fields
            entries.append(LogEntry(sha, tuple(parents.split()), an, ae, cn, ce, message.strip()))
    return entries
