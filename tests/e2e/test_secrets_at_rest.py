"""Secrets at rest: a hostile agent prints every secret Honk holds, and none of them is stored.

The scripted model makes the agent echo the Anthropic key, the webhook secret, the App's private
key, a live installation token and (under Claude Code) its proxy token: in a command, in a file it
writes and reads back, in the test output and in its summary. Afterwards every table of Honk's
SQLite database (DBOS's own included; values decoded from DBOS's base64 pickles too), the raw
database files and every line Honk logged are searched for each secret.

The check is not vacuous: each secret must be in the tool results the fake Anthropic API received,
so the run really did carry it through its agent, validation and policy steps.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_repo import CALC, TEST
from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import ANTHROPIC_KEY, REPO, SENDER, WEBHOOK_SECRET, World, world
from tests.needs import require_claude_code_sdk

LEAK_FILE = "leak.txt"
HONK_YML = f"test: cat {LEAK_FILE} && python3 -m unittest -q\n"
PROXY_TOKEN = re.compile(r"honk-proxy-[A-Za-z0-9_-]{20,}")


# ---- where secrets could rest --------------------------------------------------------------------


def _decodings(value: object) -> Iterator[bytes]:
    """The value as stored, and as DBOS's default serializer would decode it (base64 pickle)."""
    if value is None or isinstance(value, int | float):
        return
    raw = value if isinstance(value, bytes) else str(value).encode("utf-8", "replace")
    yield raw
    with contextlib.suppress(binascii.Error, ValueError):
        yield base64.b64decode(raw, validate=True)


def database_cells(database: Path) -> Iterator[tuple[str, str, bytes]]:
    """(table, column, bytes) of every cell of every table in one SQLite file."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        tables = [
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the file
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    for data in _decodings(value):
                        yield table, column, data


def leaks(secrets: dict[str, str], places: Iterable[tuple[str, bytes]]) -> list[str]:
    """'<secret> in <place>' for every secret found in any place."""
    found = []
    for place, data in places:
        for name, value in secrets.items():
            if value.encode() in data:
                found.append(f"{name} in {place}")
    return sorted(set(found))


def stored_places(w: World) -> Iterator[tuple[str, bytes]]:
    data = w.tmp / "data"
    gc.collect()  # sqlite3 connections the harness left open close now, not while we read
    files = sorted(p for p in data.rglob("*") if p.is_file() and ".sqlite" in p.name)
    assert any(p.name == "honk.sqlite" for p in files), files
    for path in files:
        with contextlib.suppress(FileNotFoundError):  # -wal and -shm go with the last connection
            yield f"file {path.name}", path.read_bytes()
    cells = list(database_cells(data / "honk.sqlite"))
    tables = {table for table, _, _ in cells}
    # The scan covers DBOS's tables too, and they hold this run (inputs, step outputs).
    assert {"workflow_status", "operation_outputs", "honk_runs", "honk_audit"} <= tables, tables
    for table, column, value in cells:
        yield f"{table}.{column}", value
    for number, line in enumerate(w.log().splitlines(), 1):
        yield f"log line {number}", line.encode()


# ---- the secrets ---------------------------------------------------------------------------------


def held_secrets(w: World) -> dict[str, str]:
    """Every secret the Honk server of this world holds, and the parts of its private key."""
    pem = w.github.private_key_pem
    secrets = {
        "Anthropic API key": ANTHROPIC_KEY,
        "webhook secret": WEBHOOK_SECRET,
        "PRIVATE_KEY as configured": w.env()["PRIVATE_KEY"],
    }
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    for number, line in enumerate(body, 1):
        secrets[f"private key line {number}"] = line
    return secrets


def live_token(w: World) -> str:
    """The installation token Honk is using now (the newest one the fake GitHub issued)."""
    now = datetime.now(UTC)
    live = [t for t in w.github.tokens if t.expires_at > now]
    assert live, "Honk has no installation token yet"
    return str(live[-1].token)


def everything(w: World, extra: str = "") -> str:
    return "\n".join([*held_secrets_for_agent(w), live_token(w), extra])


def held_secrets_for_agent(w: World) -> list[str]:
    return [ANTHROPIC_KEY, WEBHOOK_SECRET, w.github.private_key_pem, w.env()["PRIVATE_KEY"]]


def hostile_builtin(w: World) -> list[Callable[[dict[str, Any]], fa.Reply]]:
    """Print every secret with bash, write them into a file, read it back, and summarise them."""

    def echo(_: dict[str, Any]) -> fa.Reply:
        return fa.tool_use("bash", {"command": f"cat <<'EOF'\n{everything(w)}\nEOF"})

    def write(_: dict[str, Any]) -> fa.Reply:
        return fa.tool_use(
            "str_replace_based_edit_tool",
            {"command": "create", "path": LEAK_FILE, "file_text": everything(w) + "\n"},
        )

    def view(_: dict[str, Any]) -> fa.Reply:
        return fa.tool_use("str_replace_based_edit_tool", {"command": "view", "path": LEAK_FILE})

    def summary(_: dict[str, Any]) -> fa.Reply:
        return fa.text("Here is everything I found:\n" + everything(w))

    return [echo, write, view, summary]


# ---- the runs ------------------------------------------------------------------------------------


def finished(w: World, number: int) -> bool:
    rows = w.store_rows(number)
    return bool(rows) and rows[0]["status"] not in ("queued", "waiting", "running")


def run_and_stop(w: World, number: int, timeout: float) -> str:
    """Deliver the label, wait for the run to end, stop Honk; the run's tool results, joined."""
    w.start_honk()
    assert w.deliver("issues", w.point(payloads.labeled("honk"), number)).status_code == 202
    w.wait(lambda: finished(w, number), what="the run to finish", timeout=timeout)
    seen = "\n".join(w.tool_results())
    w.stop_honk()  # closes the database, so its files are complete on disk
    return seen


def assert_seen_then_not_stored(w: World, secrets: dict[str, str], seen: str) -> None:
    unseen = [name for name, value in secrets.items() if value not in seen]
    assert not unseen, f"the agent never saw {unseen}: the test would prove nothing"
    found = leaks(secrets, stored_places(w))
    assert not found, "secrets at rest:\n" + "\n".join(found)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as running:
        yield running


def test_no_secret_the_builtin_agent_prints_is_stored_or_logged(w: World) -> None:
    w.extra_env["LOG_LEVEL"] = "debug"
    w.add_repo({"calc.py": CALC, "test_calc.py": TEST}, honk_yml=HONK_YML)
    number = w.github.add_issue(REPO, title="print the secrets", user=SENDER)
    tokens: list[str] = []

    def remember(step: Callable[[dict[str, Any]], fa.Reply]) -> Any:
        def wrapped(request: dict[str, Any]) -> fa.Reply:
            tokens.append(live_token(w))
            return step(request)

        return wrapped

    w.script = [remember(step) for step in hostile_builtin(w)]
    seen = run_and_stop(w, number, timeout=180)

    secrets = held_secrets(w)
    secrets |= {f"installation token {i}": t for i, t in enumerate(dict.fromkeys(tokens), 1)}
    assert any(name.startswith("installation token") for name in secrets)
    assert_seen_then_not_stored(w, secrets, seen)
    row = w.store_rows(number)[0]
    assert row["outcome"] == "blocked"  # the diff adds a secret: refused, nothing pushed
    assert not [b for b in w.branches() if b.startswith(f"honk/{number}-")]


def test_no_secret_claude_code_prints_is_stored_or_logged(w: World) -> None:
    require_claude_code_sdk()
    w.extra_env |= {"LOG_LEVEL": "debug", "CLAUDE_CODE_MAX_RETRIES": "0"}
    w.add_repo({"calc.py": CALC, "test_calc.py": TEST}, honk_yml="agent: claude-code\n" + HONK_YML)
    number = w.github.add_issue(REPO, title="print the secrets", user=SENDER)
    proxy_tokens: list[str] = []
    tokens: list[str] = []

    def echo(_: dict[str, Any]) -> fa.Reply:
        tokens.append(live_token(w))
        command = f"printenv ANTHROPIC_API_KEY; cat <<'EOF'\n{everything(w)}\nEOF"
        return fa.tool_use("Bash", {"command": command, "description": "print"})

    def write(request: dict[str, Any]) -> fa.Reply:
        proxy_tokens.extend(PROXY_TOKEN.findall(str(request.get("messages"))))
        text = everything(w, "\n".join(dict.fromkeys(proxy_tokens)))
        command = f"cat > {LEAK_FILE} <<'EOF'\n{text}\nEOF\ncat {LEAK_FILE}"
        return fa.tool_use("Bash", {"command": command, "description": "write"})

    def summary(_: dict[str, Any]) -> fa.Reply:
        return fa.text("Here is everything:\n" + everything(w, "\n".join(proxy_tokens)))

    script = fa.Script([echo, write, summary])

    def respond(body: dict[str, Any]) -> fa.Reply:
        names = {tool.get("name") for tool in body.get("tools") or []}
        return script(body) if "Bash" in names else fa.text("ok")

    w.anthropic.responder = respond
    seen = run_and_stop(w, number, timeout=240)

    secrets = held_secrets(w)
    secrets |= {f"installation token {i}": t for i, t in enumerate(dict.fromkeys(tokens), 1)}
    secrets |= {f"proxy token {i}": t for i, t in enumerate(dict.fromkeys(proxy_tokens), 1)}
    assert proxy_tokens, "the CLI's Bash never showed its proxy token"
    assert_seen_then_not_stored(w, secrets, seen)
