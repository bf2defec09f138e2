"""`honk serve` as a person runs it: setup mode on a fresh machine, then webhooks without a restart;
and startup that fails fast, one line per problem."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from honk_app.webhooks import sign
from tests.fakes.github import FakeGitHub
from tests.fakes.loopback import free_port
from tests.setup.test_pages import manifest_form
from tests.waiting import wait_for


def test_fresh_install_registers_the_app_and_then_serves_webhooks(tmp_path: Path) -> None:
    github = FakeGitHub().start()
    port = free_port()
    log_path = tmp_path / "honk.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GITHUB_URL": github.url,
        "GITHUB_API_URL": github.url,
        "HONK_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "HONK_DATA_DIR": str(tmp_path / "data"),
        "HONK_EXECUTOR_ID": "setup-test",
    }
    with log_path.open("wb") as log:
        honk = subprocess.Popen(
            [sys.executable, "-m", "honk_app", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        link = wait_for(
            lambda: re.search(r"(http://\S+/\?token=\S+) to register", log_path.read_text()),
            "the setup link in the log",
        ).group(1)
        # the link is logged while the app is built, just before the server starts listening
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/ping"), "Honk to listen")
        # without the token from the log, a stranger cannot register an App of their own
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 403
        page = httpx.get(link)
        assert page.status_code == 200
        form = manifest_form(page.text)
        redirect = httpx.post(form.action, data=form.fields)
        assert redirect.status_code == 302
        done = httpx.get(redirect.headers["location"], timeout=60)
        assert done.status_code == 200, done.text
        assert "installations/new" in done.text

        env_file = tmp_path / ".env"
        assert env_file.stat().st_mode & 0o777 == 0o600
        values = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line
        )
        secret = values["WEBHOOK_SECRET"].strip("'\"")
        # the same process now serves webhooks signed with the new secret
        body = json.dumps({"zen": "Design for failure.", "hook_id": 1}).encode()
        headers = {
            "x-github-event": "ping",
            "x-github-delivery": str(uuid.uuid4()),
            "x-hub-signature-256": sign(secret.encode(), body),
            "content-type": "application/json",
        }
        answer = wait_for(
            lambda: (
                (
                    r := httpx.post(
                        f"http://127.0.0.1:{port}/api/github/webhooks",
                        content=body,
                        headers=headers,
                    )
                ).status_code
                == 200
                and r
            ),
            "webhooks to be served",
        )
        assert answer.json()["message"] == "ignored"
        wrong = httpx.post(
            f"http://127.0.0.1:{port}/api/github/webhooks",
            content=body,
            headers={**headers, "x-hub-signature-256": sign(b"not-the-secret", body)},
        )
        assert wrong.status_code == 401
    finally:
        honk.terminate()
        honk.wait(timeout=30)
        github.stop()


def test_startup_fails_before_listening_with_one_line_per_problem(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "honk_app", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "APP_ID": "twelve",
            "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nnope\n-----END RSA PRIVATE KEY-----",
            "HONK_DATA_DIR": str(tmp_path / "d"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("honk: ")]
    assert any("WEBHOOK_SECRET" in line for line in lines)
    assert any("APP_ID" in line for line in lines)
    assert any("PRIVATE_KEY" in line for line in lines)
    assert "nope" not in result.stderr
    with httpx.Client() as client:
        try:
            client.get(f"http://127.0.0.1:{port}/ping", timeout=1)
            listening = True
        except httpx.HTTPError:
            listening = False
    assert not listening


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
