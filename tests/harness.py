"""An end-to-end world on loopback: fake GitHub (REST + real git smart HTTP), a scripted fake
Anthropic API, and a real `honk serve` subprocess that they talk to.

Tests deliver signed webhooks to Honk over HTTP and read the outcome where a person would: the
fake GitHub's comments, pull requests and check runs, and the git server's branches.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from honk_app.webhooks import sign
from tests.fakes import anthropic as fa
from tests.fakes.git_http import branch_sha, create_bare_repo, log, make_git_app, read_file
from tests.fakes.github import FakeGitHub
from tests.fakes.loopback import free_port
from tests.fixtures import payloads

APP_ID = payloads.HONK_APP_ID
APP_SLUG = payloads.HONK_APP_SLUG
INSTALLATION_ID = payloads.INSTALLATION_ID
REPO = payloads.REPO_FULL_NAME
SENDER = payloads.SENDER_LOGIN
WEBHOOK_SECRET = "e2e-webhook-secret-4f1c2b9a7d"
ANTHROPIC_KEY = "sk-ant-api03-e2e-real-key-" + "k" * 40


class World:
    """One test's GitHub, Anthropic and Honk."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.git_root = tmp / "git"
        self.git_root.mkdir()
        self.github = FakeGitHub(app_id=APP_ID, app_slug=APP_SLUG)
        self.github.attach_git(
            make_git_app(
                self.git_root,
                lambda repo, user, password, write: (
                    user == "x-access-token"
                    and self.github.token_is_valid(password, repo, write=write)
                ),
            )
        )
        self.github.branch_exists = lambda full, branch: (
            branch_sha(self.git_root, full, branch) is not None
        )
        self.github.branch_sha = lambda full, branch: (
            branch_sha(self.git_root, full, branch) or "0" * 40
        )
        self.script: list[fa.Reply | Callable[[dict[str, Any]], fa.Reply]] = []
        self.anthropic = fa.FakeAnthropic(
            self._respond, api_key=ANTHROPIC_KEY, min_cacheable_tokens=1
        )
        self.honk: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.port = free_port()
        self.log_path = tmp / "honk.log"
        self.extra_env: dict[str, str] = {}

    # -- the scripted model ----------------------------------------------------------------
    def _respond(self, request: dict[str, Any]) -> fa.Reply:
        if not request.get("tools"):
            return fa.text("ok")
        if self.script:
            step = self.script.pop(0)
            return step(request) if callable(step) else step
        return fa.text("Done.")

    def anthropic_requests_made(self) -> int:
        return len(self.anthropic.requests)

    def tool_results(self) -> list[str]:
        """Every tool result the model was shown, as text."""
        found: list[str] = []
        for request in self.anthropic.requests:
            for message in request.get("messages", []):
                content = message.get("content")
                if not isinstance(content, list):
                    continue
                for block in content:
                    if block.get("type") == "tool_result":
                        inner = block.get("content")
                        if isinstance(inner, list):
                            found.extend(b.get("text", "") for b in inner if isinstance(b, dict))
                        else:
                            found.append(str(inner))
        return found

    # -- repositories ------------------------------------------------------------------------
    def add_repo(
        self, files: dict[str, str], honk_yml: str | None = None, commits: int = 1
    ) -> None:
        if honk_yml is not None:
            files = {**files, ".github/honk.yml": honk_yml}
        create_bare_repo(self.git_root, REPO, files, commits=commits)
        self.github.add_repo(REPO, installation_id=INSTALLATION_ID, files=files)
        self.github.set_permission(REPO, SENDER, "write")

    def clone_url(self) -> str:
        return f"{self.github.url}/{REPO}.git"

    def file_on(self, branch: str, path: str) -> str | None:
        return read_file(self.git_root, REPO, branch, path)

    # -- Honk ----------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        key = base64.b64encode(self.github.private_key_pem.encode()).decode()
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.tmp / "home"),
            "LANG": "C.UTF-8",
            "APP_ID": str(APP_ID),
            "PRIVATE_KEY": key,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "GITHUB_API_URL": self.github.url,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "ANTHROPIC_BASE_URL": self.anthropic.url,
            "HONK_DATA_DIR": str(self.tmp / "data"),
            "HONK_WORKSPACE_DIR": str(self.tmp / "workspaces"),
            "HONK_EXECUTOR_ID": "e2e-serve",
            "HONK_POLL_INTERVAL_S": "0.2",
            "LOG_LEVEL": "info",
            **self.extra_env,
        }

    def _spawn(self, args: list[str], executor_id: str) -> subprocess.Popen[bytes]:
        (self.tmp / "home").mkdir(exist_ok=True)
        log = self.log_path.open("ab")
        env = {**self.env(), "HONK_EXECUTOR_ID": executor_id}
        return subprocess.Popen(
            [sys.executable, "-m", "honk_app", *args],
            cwd=self.tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_honk(self, *extra: str) -> None:
        """`honk serve` (with `extra` flags such as --no-worker), ready when /healthz says so."""
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), *extra]
        self.honk = self._spawn(args, "e2e-serve")
        self.wait(self._answers_ping, what="honk serve to answer /healthz", timeout=90)

    def start_worker(self, name: str = "e2e-worker-1") -> subprocess.Popen[bytes]:
        worker = self._spawn(["worker"], name)
        self.workers.append(worker)
        return worker

    def _answers_ping(self) -> bool:
        assert self.honk is not None
        if self.honk.poll() is not None:
            raise AssertionError(f"honk serve exited with {self.honk.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill_honk(self) -> None:
        """kill -9: no shutdown hooks, as a crash would."""
        assert self.honk is not None
        os.killpg(self.honk.pid, signal.SIGKILL)
        self.honk.wait(timeout=30)
        self.honk = None

    def stop_honk(self) -> None:
        for process in [*self.workers, self.honk]:
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.honk = None
        self.workers = []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- deliveries ------------------------------------------------------------------------------
    def deliver(
        self, event: str, payload: dict[str, Any], delivery: str | None = None
    ) -> httpx.Response:
        body = json.dumps(payload).encode()
        return httpx.post(
            f"http://127.0.0.1:{self.port}/api/github/webhooks",
            content=body,
            headers={
                "content-type": "application/json",
                "x-github-event": event,
                "x-github-delivery": delivery or str(uuid.uuid4()),
                "x-hub-signature-256": sign(WEBHOOK_SECRET.encode(), body),
            },
            timeout=10,
        )

    def point(self, payload: dict[str, Any], number: int) -> dict[str, Any]:
        """Aim a fixture payload at this world's repository and issue or pull request number."""
        payloads.with_repository(payload, clone_url=self.clone_url())
        for key in ("issue", "pull_request"):
            if key in payload:
                payload[key]["number"] = number
        return payload

    @staticmethod
    def wait(predicate: Callable[[], Any], *, what: str, timeout: float = 120) -> Any:
        """Poll until `predicate` is truthy; fail with `what` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    # -- what a person sees ----------------------------------------------------------------------
    def tracking_comment(self, number: int) -> str | None:
        for comment in self.github.comments_on(REPO, number):
            if "<!-- honk:run=" in comment.body:
                return str(comment.body)
        return None

    def store_rows(self, number: int) -> list[dict[str, Any]]:
        """Honk's own record of the runs on one issue or pull request (its SQLite database)."""
        database = self.tmp / "data" / "honk.sqlite"
        if not database.exists():
            return []
        key = f"{REPO}#{number}".lower()
        with sqlite3.connect(database, timeout=30) as conn:
            conn.row_factory = sqlite3.Row
            try:
                rows = conn.execute(
                    "SELECT * FROM honk_runs WHERE target_key = ?", (key,)
                ).fetchall()
            except sqlite3.OperationalError:
                return []
        return [dict(r) for r in rows]

    def audit_trail(self, run_id: str) -> list[tuple[str, Any]]:
        with sqlite3.connect(self.tmp / "data" / "honk.sqlite", timeout=30) as conn:
            rows = conn.execute(
                "SELECT kind, record_json FROM honk_audit WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        return [(kind, json.loads(record)) for kind, record in rows]

    def git_log(self, branch: str) -> list[Any]:
        return list(log(self.git_root, REPO, branch))

    def branches(self) -> list[str]:
        out = subprocess.run(
            [
                "git",
                "--git-dir",
                str(self.git_root / f"{REPO}.git"),
                "for-each-ref",
                "--format=%(refname:short)",
                "refs/heads",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.split()

    def pulls(self) -> Sequence[Any]:
        return [p for p in self.github.pulls if p.repo.lower() == REPO.lower()]


@contextmanager
def world(tmp: Path) -> Iterator[World]:
    w = World(tmp)
    w.github.start()
    w.anthropic.start()
    try:
        yield w
    except BaseException:
        print("---- honk serve log ----\n" + w.log()[-20000:])
        print("---- tool results ----\n" + "\n--\n".join(r[-1500:] for r in w.tool_results()))
        raise
    finally:
        w.stop_honk()
        w.anthropic.stop()
        w.github.stop()
