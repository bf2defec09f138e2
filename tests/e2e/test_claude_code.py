"""`agent: claude-code` end to end: the real Claude Code CLI from the wheel, driven by Honk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e_repo import CALC, TEST
from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import ANTHROPIC_KEY, REPO, SENDER, WEBHOOK_SECRET, World, world
from tests.needs import require_claude_code_sdk

HONK_YML = "agent: claude-code\ntest: python3 -m unittest -q\n"


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_claude_code_sdk()
    with world(tmp_path_factory.mktemp("claude-code")) as running:
        running.extra_env["CLAUDE_CODE_MAX_RETRIES"] = "0"
        running.add_repo({"calc.py": CALC, "test_calc.py": TEST}, honk_yml=HONK_YML)
        running.start_honk()
        yield running


def for_claude_code(steps: list[fa.Reply]) -> Any:
    """Answer the CLI's agent requests (those offering Bash) in order; anything else gets text."""
    script = fa.Script(steps)

    def respond(body: dict[str, Any]) -> fa.Reply:
        names = {tool.get("name") for tool in body.get("tools") or []}
        return script(body) if "Bash" in names else fa.text("ok")

    return respond


def finished(w: World, number: int) -> bool:
    rows = w.store_rows(number)
    return bool(rows) and rows[0]["status"] not in ("queued", "waiting", "running")


def test_label_opens_a_pull_request_with_claude_code(w: World) -> None:
    w.anthropic.responder = for_claude_code(
        [
            fa.tool_use(
                "Bash", {"command": "sed -i 's/a - b/a + b/' calc.py", "description": "fix"}
            ),
            fa.tool_use("Bash", {"command": "env; git config --list", "description": "env"}),
            fa.text("Fixed add with Claude Code."),
        ]
    )
    number = w.github.add_issue(REPO, title="add() subtracts", user=SENDER)
    assert w.deliver("issues", w.point(payloads.labeled("honk"), number)).status_code == 202
    w.wait(lambda: finished(w, number), what="the Claude Code run", timeout=240)
    pulls = [p for p in w.pulls() if p.head_ref.startswith(f"honk/{number}-")]
    assert len(pulls) == 1, w.tracking_comment(number)
    assert not pulls[0].draft
    assert "a + b" in (w.file_on(pulls[0].head_ref, "calc.py") or "")
    assert "claude-code" in pulls[0].body
    seen = "\n".join(w.tool_results())
    assert "PATH=" in seen
    pem_body = w.github.private_key_pem.splitlines()[1]
    for secret in (ANTHROPIC_KEY, WEBHOOK_SECRET, pem_body, "ghs_", "HONK_DATABASE_URL"):
        assert secret not in seen, secret
    assert {h.get("x-api-key") for h in w.anthropic.headers} == {ANTHROPIC_KEY}


def test_an_api_error_becomes_a_readable_failure(w: World) -> None:
    failing = fa.error(400, "invalid_request_error", "model is not available")
    w.anthropic.responder = for_claude_code([failing] * 10)  # however often the CLI asks
    number = w.github.add_issue(REPO, title="anything", user=SENDER)
    assert w.deliver("issues", w.point(payloads.labeled("honk"), number)).status_code == 202
    w.wait(lambda: finished(w, number), what="the failing run", timeout=240)
    comment = w.tracking_comment(number) or ""
    assert "model is not available" in comment
    assert "Finished without changing anything" not in comment
    assert not [p for p in w.pulls() if p.head_ref.startswith(f"honk/{number}-")]
