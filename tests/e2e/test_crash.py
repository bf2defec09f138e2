"""kill -9 of `honk serve` mid-agent: after a restart the run resumes, and nothing is duplicated."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_repo import CALC, TEST
from tests.fakes import anthropic as fa
from tests.fakes.git_http import add_commit
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, World, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as running:
        running.add_repo(
            {"calc.py": CALC, "test_calc.py": TEST}, honk_yml="test: python3 -m unittest -q\n"
        )
        yield running


def by_turn(request: dict[str, Any]) -> fa.Reply:
    """Stateless script: the reply depends only on how far the conversation is, so a run that
    starts again after a crash gets the same answers."""
    turns = sum(1 for m in request["messages"] if m["role"] == "assistant")
    if turns == 0:
        return fa.tool_use(
            "str_replace_based_edit_tool",
            {"command": "str_replace", "path": "calc.py", "old_str": "a - b", "new_str": "a + b"},
        )
    if turns == 1:
        return fa.tool_use("bash", {"command": "sleep 2; echo slow step done"})
    return fa.text("Fixed add; the tests pass.")


def test_kill_9_mid_agent_then_restart_gives_one_pull_request(w: World) -> None:
    w.anthropic.responder = by_turn
    head = add_commit(w.git_root, REPO, "feature", {"notes.md": "wip\n"}, "Start feature")
    number = w.github.add_pull(REPO, title="Feature", head="feature", head_sha=head, user=SENDER)
    w.start_honk()
    posted = w.github.add_comment(REPO, number, body="/honk fix add", user=SENDER)
    payload = w.point(
        payloads.issue_comment("/honk fix add", is_pr=True, comment_id=posted.id), number
    )
    assert w.deliver("issue_comment", payload).status_code == 202

    # mid-agent: the model has asked for the slow command, and the check run is in progress
    w.wait(
        lambda: len([r for r in w.anthropic.requests if r.get("tools")]) >= 2,
        what="the agent's second turn",
    )
    assert [c.status for c in w.github.check_runs if c.name == "Honk"] == ["in_progress"]
    w.kill_honk()

    w.start_honk()
    w.wait(
        lambda: w.store_rows(number) and w.store_rows(number)[0]["status"] == "succeeded",
        what="the resumed run",
        timeout=180,
    )
    tracking = [c for c in w.github.comments_on(REPO, number) if "<!-- honk:run=" in c.body]
    assert len(tracking) == 1
    assert [r.content for r in w.github.reactions if r.subject_id == posted.id] == ["eyes"]
    checks = [c for c in w.github.check_runs if c.name == "Honk"]
    assert all(c.status == "completed" for c in checks), [(c.head_sha, c.status) for c in checks]
    assert len({(c.head_sha, c.external_id) for c in checks}) == len(checks)
    log = w.git_log("feature")
    assert len(log) == 3  # initial, Start feature, and exactly one commit of Honk's
    assert "a + b" in (w.file_on("feature", "calc.py") or "")
    assert len(w.pulls()) == 1


def test_kill_9_on_an_issue_run_leaves_one_pull_request(w: World) -> None:
    w.anthropic.responder = by_turn
    number = w.github.add_issue(REPO, title="add() subtracts", user=SENDER)
    w.start_honk()
    assert w.deliver("issues", w.point(payloads.labeled("honk"), number)).status_code == 202
    w.wait(
        lambda: len([r for r in w.anthropic.requests if r.get("tools")]) >= 2,
        what="the agent's second turn",
    )
    w.kill_honk()
    w.start_honk()
    w.wait(
        lambda: w.store_rows(number) and w.store_rows(number)[0]["status"] == "succeeded",
        what="the resumed run",
        timeout=180,
    )
    pulls = [p for p in w.pulls() if p.head_ref.startswith(f"honk/{number}-")]
    assert len(pulls) == 1
    assert not pulls[0].draft
    assert len([c for c in w.github.comments_on(REPO, number) if "<!-- honk:run=" in c.body]) == 1
    assert all(c.status == "completed" for c in w.github.check_runs)
