"""A run end to end: label → workspace → agent → validation → pull request → check run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_repo import CALC, TEST
from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import REPO, World, world

HONK_YML = "test: python3 -m unittest -q\n"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as running:
        yield running


def fix_calc() -> list[fa.Reply]:
    return [
        fa.tool_use("str_replace_based_edit_tool", {"command": "view", "path": "calc.py"}),
        fa.tool_use(
            "str_replace_based_edit_tool",
            {"command": "str_replace", "path": "calc.py", "old_str": "a - b", "new_str": "a + b"},
        ),
        fa.tool_use("bash", {"command": "python3 -m unittest -q"}),
        fa.text("Fixed `add` to add instead of subtract; the tests pass."),
    ]


def test_label_opens_a_ready_pull_request_with_a_success_check(w: World) -> None:
    w.add_repo({"calc.py": CALC, "test_calc.py": TEST}, honk_yml=HONK_YML)
    number = w.github.add_issue(
        REPO, title="add() subtracts", body="2 + 3 should be 5", user="mona"
    )
    w.script = fix_calc()
    w.start_honk()
    response = w.deliver("issues", w.point(payloads.labeled("honk"), number))
    assert response.status_code == 202, response.text

    pull = w.wait(lambda: next(iter(w.pulls()), None), what="a pull request")
    checks = w.wait(
        lambda: [c for c in w.github.check_runs if c.name == "Honk" and c.status == "completed"],
        what="a completed check run",
    )
    assert not pull.draft
    assert f"Fixes #{number}" in (pull.body or "")
    assert "a + b" in (w.file_on(pull.head_ref, "calc.py") or "")
    assert pull.head_ref.startswith(f"honk/{number}-")
    assert len(checks) == 1
    assert checks[0].conclusion == "success"
    assert checks[0].head_sha == w.github.branch_sha(REPO, pull.head_ref)
    comment = w.wait(
        lambda: (c := w.tracking_comment(number)) and f"#{pull.number}" in c and c,
        what="the tracking comment to link the pull request",
    )
    assert "🔄" not in comment  # no phase is left in progress
    assert [(r.subject, r.subject_id, r.content) for r in w.github.reactions] == [
        ("issue", number, "eyes")
    ]
    commit = w.git_log(pull.head_ref)[0]
    bot = f"{payloads.HONK_APP_SLUG}[bot]"
    assert commit.author_name == commit.committer_name == bot
    assert commit.author_email.endswith(f"+{bot}@users.noreply.github.com")
    assert not commit.author_email.startswith("0+")
    assert (
        f"Co-authored-by: mona <{payloads.SENDER_ID}+mona@users.noreply.github.com>"
        in commit.message
    )
    assert w.github.requested_reviewers[f"{REPO}#{pull.number}"] == ["mona"]
