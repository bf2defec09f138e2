"""Running git safely, and the parts of git that are not about one workspace: the shared mirrors.

The installation token only ever lives in Honk's memory: each git command that talks to GitHub gets
it as an HTTP header through its own environment (GIT_CONFIG_COUNT), never in a URL, .git/config or
a file.

Honk's git runs outside the sandbox, holding Honk's environment, on work trees a hostile agent
wrote. So no git command may run a program named by anything but Honk: it reads no system or
global config or attributes, runs no hooks, fsmonitor, credential helper, pager, editor or prompt,
speaks only https/http (and `file` for Honk's own local remotes), and never recurses into
submodules or nested repositories (git would run itself there, reading that repository's config:
filters, fsmonitor, includes; the config below turns recursion off, and workspace/staging.py keeps
them out of `git add`, which recurses regardless). Filters, diff drivers and textconv named by a
work tree's `.gitattributes` are then inert: the only config Honk's git reads is its own.

A mirror (`<data_dir>/mirrors/<owner>/<repo>.git`, bare) is shared by runs and processes, so each
refresh holds an asyncio lock and an fcntl lock; runs clone from it without downloading again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import os
import re
import signal
import time
import unicodedata
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from honk_app.safety.secret_scan import redact
from honk_app.workspace.sandbox import kill_group, terminate_group

NETWORK_TIMEOUT_S = 900.0
LOCAL_TIMEOUT_S = 300.0
LOCK_TIMEOUT_S = 1800.0
BRANCH_PREFIX = "honk/"

# every git command (command-line config outranks any file, and reaches git's own children)
_SAFE_CONFIG = (
    # no program of anyone else's choosing: helper, hooks, fsmonitor, askpass, pager, editor
    "credential.helper=", "core.hooksPath=/dev/null", "core.fsmonitor=false", "core.askPass=",
    "core.pager=cat", "core.editor=false", "core.attributesFile=/dev/null",
    # never look inside a submodule or nested repository (git would run there with its config)
    "submodule.recurse=false", "diff.ignoreSubmodules=all", "status.submoduleSummary=false",
    "fetch.recurseSubmodules=false", "push.recurseSubmodules=no",
    # no ext::, ssh or git transports; `file` only for Honk's own local remotes (see run_git)
    "protocol.allow=never", "protocol.https.allow=always", "protocol.http.allow=always",
    "protocol.file.allow=never",
    "gc.auto=0", "maintenance.auto=false", "commit.gpgSign=false", "advice.detachedHead=false",
    "core.quotePath=true",  # the policy's parser expects quoted unusual names
    "checkout.workers=0",  # write files in parallel, one worker per CPU
)  # fmt: skip
_SAFE_FLAGS = tuple(arg for setting in _SAFE_CONFIG for arg in ("-c", setting))
_ALLOW_FILE = ("-c", "protocol.file.allow=always")
_PASSED_ENV = (
    "PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "HTTPS_PROXY", "https_proxy",
    "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy",
)  # fmt: skip
_FIXED_ENV = {
    "LC_ALL": "C", "LANG": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ATTR_NOSYSTEM": "1", "GIT_NO_REPLACE_OBJECTS": "1",
    "GCM_INTERACTIVE": "never",
}  # fmt: skip
_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BAD_REF = re.compile(r"[\x00-\x20~^:?*\[\\\x7f]|\.\.|@\{|//|^[-/.]|[/.]$|\.lock$|/\.")


class GitError(Exception):
    """A git operation failed; the message is one readable sentence with secrets redacted."""


# ---- pure helpers -------------------------------------------------------------------------------


def branch_name(number: int, title: str) -> str:
    """`honk/<number>-<slug>`: the slug is the title in lowercase ASCII and dashes, ≤ 40 chars."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:40].rstrip("-")
    return f"{BRANCH_PREFIX}{number}-{slug}" if slug else f"{BRANCH_PREFIX}{number}"


def check_branch(name: str) -> str:
    """`name` if git would accept it as a branch name (and it cannot pass for an option)."""
    if not name or _BAD_REF.search(name):
        raise GitError(f"{name!r} is not a valid branch name.")
    return name


def auth_env(token: str, url: str) -> dict[str, str]:
    """The environment that gives one git command the token, scoped to the URL's host."""
    parts = urlsplit(url)
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def token_forms(token: str) -> list[str]:
    """Every form in which the token could appear in git's output (for redaction)."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return [token, basic] if token else []


@dataclass(frozen=True)
class FileStat:
    path: str
    added: int | None  # None for binary files
    removed: int | None


@dataclass(frozen=True)
class DiffStat:
    files: tuple[FileStat, ...] = ()
    complete: bool = True  # False: git listed more files than Honk reads

    @property
    def files_changed(self) -> int:
        return len(self.files)

    @property
    def added(self) -> int:
        return sum(f.added or 0 for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed or 0 for f in self.files)


# Of the diff's text, Honk reads this much: a reviewable change is far smaller, and a larger
# one is not pushed (safety/policy.py says why), so the agent cannot make Honk hold more.
MAX_DIFF_BYTES = 8 << 20


@dataclass(frozen=True)
class DiffRead:
    """The first bytes of a diff, and the totals of the whole change when it was cut."""

    data: bytes
    complete: bool = True
    totals: tuple[int, int, int] | None = None  # files, added, removed (only when cut)
    listing_cut: bool = False  # git listed more files than Honk reads: nothing was diffed

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


_SHORTSTAT = re.compile(r"(\d{1,18}) (file|insertion|deletion)")


def parse_shortstat(output: str) -> tuple[int, int, int]:
    """(files, lines added, lines removed) from `git diff --shortstat` (LC_ALL=C: English)."""
    counts = {kind: int(number) for number, kind in _SHORTSTAT.findall(output[:1000])}
    return counts.get("file", 0), counts.get("insertion", 0), counts.get("deletion", 0)


def parse_numstat(output: str) -> DiffStat:
    """Parse `git diff --numstat -z --no-renames`."""
    files = []
    for record in output.split("\0"):
        added, _, rest = record.partition("\t")
        removed, _, path = rest.partition("\t")
        if path:
            added_n = int(added) if added.isdigit() else None
            files.append(FileStat(path, added_n, int(removed) if removed.isdigit() else None))
    return DiffStat(tuple(files))


def explain(stderr: str, action: str, secrets_: Sequence[str]) -> str:
    """One readable sentence for a failed git command, secrets redacted."""
    text = stderr.lower()
    if "could not read username" in text or "authentication failed" in text or " 401" in text:
        sentence = f"GitHub refused the installation token while trying to {action}."
    elif " 403" in text or "permission to" in text:
        sentence = f"GitHub denied permission to {action} (HTTP 403)."
    elif "repository not found" in text or " 404" in text:
        sentence = f"GitHub could not find the repository while trying to {action}."
    elif "stale info" in text or "fetch first" in text or "non-fast-forward" in text:
        sentence = f"The branch changed on GitHub since Honk fetched it, so Honk did not {action}."
    elif "could not resolve host" in text or "failed to connect" in text:
        sentence = f"Honk could not reach GitHub to {action}."
    else:
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        detail = lines[-1].removeprefix("fatal: ").removeprefix("error: ") if lines else "no output"
        sentence = f"git could not {action}: {detail.rstrip('.')}."
    return redact(sentence, secrets_)


# ---- running git --------------------------------------------------------------------------------


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(_FIXED_ENV)
    env.update(extra or {})
    return env


async def run_git_bytes(
    *args: str,
    action: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    token: str | None = None,
    url: str | None = None,
    input_data: bytes | None = None,
    timeout_s: float = LOCAL_TIMEOUT_S,
    check: bool = True,
    allow_file: bool = False,
) -> tuple[int, bytes]:
    """Run git with the safe flags; returns (exit code, stdout as bytes, for file names that are
    not UTF-8). Raises GitError if `check`. `allow_file` (or a `file:` url) permits the `file`
    transport, for a remote that is Honk's own: a mirror, or a local repository in tests."""
    extra = dict(env or {})
    if token is not None and url is not None:
        extra.update(auth_env(token, url))
    local = allow_file or (url is not None and urlsplit(url).scheme == "file")
    pipe = asyncio.subprocess.PIPE
    stdin = pipe if input_data is not None else asyncio.subprocess.DEVNULL
    proc = await asyncio.create_subprocess_exec(
        "git", *_SAFE_FLAGS, *(_ALLOW_FILE if local else ()), *args, cwd=cwd, env=_env(extra),
        start_new_session=True, stdin=stdin, stdout=pipe, stderr=pipe,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(input_data), timeout=timeout_s)
    except TimeoutError:
        await terminate_group(proc)
        raise GitError(f"git did not {action} within {timeout_s:.0f} seconds.") from None
    except asyncio.CancelledError:
        kill_group(proc.pid, signal.SIGKILL)
        raise
    if check and proc.returncode != 0:
        raise GitError(explain(err.decode("utf-8", "replace"), action, token_forms(token or "")))
    return proc.returncode or 0, out


STDERR_KEEP = 16_384  # bytes of a capped command's stderr kept for its error sentence


async def run_git_capped(
    *args: str,
    action: str,
    max_bytes: int,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = LOCAL_TIMEOUT_S,
) -> tuple[bytes, bool]:
    """Run a local git command that may print without end (a diff of what the agent wrote):
    at most `max_bytes` of stdout, and whether git had more to say. Past the cap git is killed
    at once, so Honk never holds more than the cap, whatever the work tree holds."""
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(
        "git", *_SAFE_FLAGS, *args, cwd=cwd, env=_env(env), start_new_session=True,
        stdin=asyncio.subprocess.DEVNULL, stdout=pipe, stderr=pipe,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()

    async def drain_stderr(stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65_536):
            err.extend(chunk)
            del err[:-STDERR_KEEP]

    async def read_stdout(stream: asyncio.StreamReader) -> bool:
        while chunk := await stream.read(min(65_536, max_bytes + 1 - len(out))):
            out.extend(chunk)
            if len(out) > max_bytes:
                return True
        return False

    stderr_task = asyncio.create_task(drain_stderr(proc.stderr))
    try:
        async with asyncio.timeout(timeout_s):
            cut = await read_stdout(proc.stdout)
            if cut:
                kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            await stderr_task
    except TimeoutError:
        stderr_task.cancel()
        await terminate_group(proc)
        raise GitError(f"git did not {action} within {timeout_s:.0f} seconds.") from None
    except asyncio.CancelledError:
        stderr_task.cancel()
        kill_group(proc.pid, signal.SIGKILL)
        raise
    if not cut and proc.returncode != 0:
        raise GitError(explain(err.decode("utf-8", "replace"), action, []))
    del out[max_bytes:]  # in place: no third copy of what may be the whole cap
    return bytes(out), cut


async def run_git(
    *args: str,
    action: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    token: str | None = None,
    url: str | None = None,
    input_text: str | None = None,
    timeout_s: float = LOCAL_TIMEOUT_S,
    check: bool = True,
    allow_file: bool = False,
) -> tuple[int, str]:
    """Run git with the safe flags; returns (exit code, stdout). Raises GitError if `check`."""
    code, out = await run_git_bytes(
        *args, action=action, cwd=cwd, env=env, token=token, url=url, timeout_s=timeout_s,
        input_data=None if input_text is None else input_text.encode(), check=check,
        allow_file=allow_file,
    )  # fmt: skip
    return code, out.decode("utf-8", "replace")


@contextlib.asynccontextmanager
async def _file_lock(path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> AsyncIterator[None]:
    """An exclusive fcntl lock on `path`, polled so the event loop never blocks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise GitError(f"Another process kept {path.name} locked.") from None
                await asyncio.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# ---- the shared mirrors -------------------------------------------------------------------------


_mirror_locks: dict[tuple[int, str], asyncio.Lock] = {}


def mirror_path(data_dir: Path, full_name: str) -> Path:
    """Where the mirror of `owner/repo` lives; refuses anything that is not such a name."""
    if not _REPO_NAME.match(full_name) or ".." in full_name:
        raise GitError(f"{full_name!r} is not a repository name of the form owner/repo.")
    owner, repo = full_name.lower().split("/")
    return data_dir / "mirrors" / owner / f"{repo}.git"


@contextlib.asynccontextmanager
async def mirror_lock(mirror: Path) -> AsyncIterator[None]:
    """One refresh of a mirror at a time: in this process (asyncio) and across processes (fcntl)."""
    lock = _mirror_locks.setdefault((id(asyncio.get_running_loop()), str(mirror)), asyncio.Lock())
    async with lock, _file_lock(mirror.with_name(mirror.name + ".lock")):
        yield


async def refresh_mirror(mirror: Path, url: str, token: str, full_name: str) -> None:
    """Create the mirror on first use, then fetch branches and tags (pruning deleted ones)."""
    if not (mirror / "HEAD").is_file():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        await run_git("init", "--quiet", "--bare", str(mirror), action="create the mirror")
        # runs' clones borrow the mirror's objects: never prune them from under a live run
        await run_git(
            "--git-dir", str(mirror), "config", "gc.auto", "0", action="create the mirror"
        )
    fetch = ("fetch", "--quiet", "--prune", "--no-tags", url)
    refspecs = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
    await run_git("--git-dir", str(mirror), *fetch, *refspecs, action=f"fetch {full_name}",
                  token=token, url=url, timeout_s=NETWORK_TIMEOUT_S)  # fmt: skip


async def ref_sha(mirror: Path, branch: str) -> str | None:
    """The commit `branch` points at in the mirror, or None if there is no such branch."""
    args = ("--git-dir", str(mirror), "rev-parse", "--verify", "--quiet")
    ref = f"refs/heads/{branch}^{{commit}}"
    code, out = await run_git(*args, ref, action="read a branch", check=False)
    return out.strip() if code == 0 and out.strip() else None
