"""`honk serve` as a person runs it: setup mode on a fresh machine, then webhooks without a restart;
and startup that fails fast, one line per problem."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from honk_app.webhooks import sign
from tests.fakes.github import FakeGitHub
from tests.fakes.loopback import free_port
from tests.setup.test_pages import manifest_form, parse_page
from tests.waiting import running, setup_link, wait_for


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
    argv = [sys.executable, "-m", "honk_app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    try:
        with running(argv, cwd=tmp_path, env=env, log_path=log_path):
            link = setup_link(log_path)
            # the link is logged while the app is built, just before the server starts listening
            wait_for(lambda: _answers(f"http://127.0.0.1:{port}/ping"), "Honk to listen")
            # without the token from the log, a stranger cannot register an App of their own
            assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 403
            browser = httpx.Client(follow_redirects=True, timeout=60)
            page = browser.get(link)
            assert page.status_code == 200
            assert page.url == f"http://127.0.0.1:{port}/"  # the token left the address bar...
            assert httpx.get(link).status_code == 403  # ...and works for no one else now
            form = manifest_form(page.text)
            redirect = httpx.post(form.action, data=form.fields)
            assert redirect.status_code == 302
            done = browser.get(redirect.headers["location"])
            assert done.status_code == 200, done.text
            assert "installations/new" in done.text
            health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
            assert (health["status"], health["anthropic_key"]) == ("ok", "missing")

            # the done page's last step: the Anthropic key, used without a restart
            (key_form,) = [
                f for f in parse_page(done.text).forms if "anthropic_api_key" in f.fields
            ]
            key = "sk-ant-api03-" + "Q" * 40
            saved = browser.post(
                f"http://127.0.0.1:{port}{key_form.action}",
                data={**key_form.fields, "anthropic_api_key": key},
            )
            assert saved.status_code == 200, saved.text
            assert "Anthropic API key: set" in parse_page(saved.text).words
            health = httpx.get(f"http://127.0.0.1:{port}/healthz")
            assert health.status_code == 200
            assert health.json()["anthropic_key"] == "set"
            assert key not in health.text

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
            assert key not in log_path.read_text()
            wrong = httpx.post(
                f"http://127.0.0.1:{port}/api/github/webhooks",
                content=body,
                headers={**headers, "x-hub-signature-256": sign(b"not-the-secret", body)},
            )
            assert wrong.status_code == 401
    finally:
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


@pytest.mark.parametrize("key", [None, "sk-ant-api03-" + "w" * 40])
def test_a_configured_honk_says_at_once_when_runs_lack_the_anthropic_key(
    tmp_path: Path, app_private_key: str, key: str | None
) -> None:
    port = free_port()
    log_path = tmp_path / "honk.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "APP_ID": "424242",
        "PRIVATE_KEY": app_private_key,
        "WEBHOOK_SECRET": "w3bh00k-" + "s" * 24,
        "GITHUB_API_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens; not needed here
        "HONK_DATA_DIR": str(tmp_path / "data"),
        "HONK_EXECUTOR_ID": "key-test",
        **({"ANTHROPIC_API_KEY": key} if key else {}),
    }
    argv = [sys.executable, "-m", "honk_app", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with running(argv, cwd=tmp_path, env=env, log_path=log_path):
        health = wait_for(
            lambda: _get(f"http://127.0.0.1:{port}/healthz"), "Honk to answer /healthz"
        )
        home = httpx.get(f"http://127.0.0.1:{port}/")
    warnings = [line for line in log_path.read_text().splitlines() if "every run will fail" in line]
    assert health.status_code == 200  # a missing key is no outage: webhooks are still taken
    if key is None:
        assert health.json()["anthropic_key"] == "missing"
        (warning,) = warnings
        assert "WARNING" in warning and "ANTHROPIC_API_KEY is not set" in warning
        assert ".env" in warning and "restart Honk" in warning
        assert "ANTHROPIC_API_KEY is not set" in home.text
    else:
        assert health.json()["anthropic_key"] == "set"
        assert warnings == []
        assert key not in health.text + home.text + log_path.read_text()
        assert "ANTHROPIC_API_KEY" not in home.text


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.TransportError:
        return None


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
