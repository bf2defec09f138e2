"""Every outcome of a run, end to end through one `honk serve`: each test works on its own issue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_repo import CALC, TEST, bash, create, edit, run_finished
from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import ANTHROPIC_KEY, REPO, WEBHOOK_SECRET, World, world

WORKFLOW = "name: ci\non: push\n"
BASE_YML = "test: python3 -m unittest -q\n"
FILES = {"calc.py": CALC, "test_calc.py": TEST, ".github/workflows/ci.yml": WORKFLOW}


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("outcomes")) as running:
        running.add_repo(FILES, honk_yml=BASE_YML)
        running.start_honk()
        yield running


def run(w: World, title: str, script: list[Any], honk_yml: str = BASE_YML) -> int:
    """Open an issue, label it, and wait for the run to finish; the issue number."""
    w.github.set_file(REPO, ".github/honk.yml", honk_yml)
    number = w.github.add_issue(REPO, title=title, body="Please fix.", user="mona")
    w.script = list(script)
    response = w.deliver("issues", w.point(payloads.labeled("honk"), number))
    assert response.status_code == 202, response.text
    w.wait(lambda: finished(w, number), what=f"run on #{number} to finish", timeout=180)
    return number


def finished(w: World, number: int) -> bool:
    return run_finished(w.store_rows(number))


def pulls_for(w: World, number: int) -> list[Any]:
    return [p for p in w.pulls() if p.head_ref.startswith(f"honk/{number}-")]


def check_for(w: World, number: int) -> Any:
    pulls = pulls_for(w, number)
    if not pulls:
        return None
    sha = w.github.branch_sha(REPO, pulls[0].head_ref)
    found = [c for c in w.github.check_runs if c.head_sha == sha and c.name == "Honk"]
    return found[-1] if found else None


def test_failing_tests_are_fixed_in_a_feedback_round(w: World) -> None:
    number = run(
        w,
        "add() is wrong",
        [
            edit("a - b", "a * b"),
            fa.text("Changed add."),
            lambda request: (
                edit("a * b", "a + b")
                if "AssertionError" in str(request["messages"][-1])
                else fa.text("no test output seen")
            ),
            fa.text("Fixed add for real; the tests pass."),
        ],
    )
    pull = pulls_for(w, number)[0]
    assert not pull.draft
    assert f"Fixes #{number}" in pull.body
    assert check_for(w, number).conclusion == "success"
    assert "a + b" in (w.file_on(pull.head_ref, "calc.py") or "")


def test_tests_still_failing_push_a_draft_with_a_failure_check(w: World) -> None:
    number = run(
        w,
        "make add multiply",
        [edit("a - b", "a * b"), fa.text("Done."), fa.text("I cannot make the test pass.")],
        honk_yml=BASE_YML + "fix_attempts: 1\n",
    )
    pull = pulls_for(w, number)[0]
    assert pull.draft
    assert f"Refs #{number}" in pull.body and f"Fixes #{number}" not in pull.body
    check = check_for(w, number)
    assert check.conclusion == "failure"
    assert "test_add" in str(check.output) or "unittest" in str(check.output)


def test_no_change_opens_no_pull_request(w: World) -> None:
    number = run(w, "is add fine?", [fa.text("Nothing to change: the code already does this.")])
    assert pulls_for(w, number) == []
    comment = w.tracking_comment(number) or ""
    assert "Nothing to change" in comment


def test_a_limit_pushes_the_work_so_far_as_a_draft(w: World) -> None:
    number = run(
        w,
        "keep going",
        [edit("a - b", "a + b"), bash("true"), bash("true"), bash("true")],
        honk_yml=BASE_YML + "max_turns: 2\n",
    )
    pull = pulls_for(w, number)[0]
    assert pull.draft
    assert "limit" in pull.body.lower()
    assert check_for(w, number).conclusion == "neutral"
    assert "limit" in (w.tracking_comment(number) or "").lower()


def test_a_protected_path_is_restored_and_reported(w: World) -> None:
    number = run(
        w,
        "fix add and ci",
        [
            edit("a - b", "a + b"),
            create(".github/workflows/ci.yml", "name: pwned\non: push\n"),
            fa.text("Fixed add and the workflow."),
        ],
    )
    pull = pulls_for(w, number)[0]
    assert w.file_on(pull.head_ref, ".github/workflows/ci.yml") == WORKFLOW
    assert "a + b" in (w.file_on(pull.head_ref, "calc.py") or "")
    assert ".github/workflows/ci.yml" in pull.body


def test_a_secret_in_the_diff_pushes_nothing(w: World) -> None:
    key = "AKIA" + "Q" * 16
    number = run(
        w,
        "add aws config",
        [create("settings.py", f'AWS_KEY = "{key}"\n'), fa.text("Added the settings.")],
    )
    assert pulls_for(w, number) == []
    assert not any(b.startswith(f"honk/{number}-") for b in w.branches())
    comment = w.tracking_comment(number) or ""
    assert key not in comment
    assert "secret" in comment.lower() or "AWS" in comment


def test_editor_paths_outside_the_workspace_are_refused(w: World, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    run(
        w,
        "escape",
        [
            fa.tool_use(
                "str_replace_based_edit_tool", {"command": "view", "path": "../../../../etc/passwd"}
            ),
            create(str(outside), "escaped"),
            fa.text("Tried."),
        ],
    )
    assert not outside.exists()
    results = w.tool_results()
    assert not any("root:x:0:0" in r for r in results)


def test_the_agent_sees_no_secret_in_env_or_git_config(w: World) -> None:
    planted = "PLANTED_IN_DOT_ENV=keep-me-out-of-the-sandbox-1234"
    (w.tmp / ".env").write_text(planted + "\n")
    data = w.tmp / "data"
    look = (
        "env; git config --list; cat .git/config; "
        f"cat {w.tmp}/.env; ls -R {data}; cat {data}/honk.sqlite"
    )
    run(w, "show env", [bash(look), fa.text("Looked around.")])
    seen = "\n".join(w.tool_results())
    assert planted not in seen and "honk_runs" not in seen
    assert "PATH=" in seen  # the command really ran
    pem_body = w.github.private_key_pem.splitlines()[1]
    for secret in (
        ANTHROPIC_KEY,
        WEBHOOK_SECRET,
        pem_body,
        "ghs_",
        "x-access-token",
        "extraheader",
    ):
        assert secret not in seen, secret


def test_an_invalid_config_names_the_key_and_stops(w: World) -> None:
    number = run(w, "bad config", [fa.text("never asked")], honk_yml=BASE_YML + "max_turn: 5\n")
    comment = w.tracking_comment(number) or ""
    assert "max_turn" in comment and "max_turns" in comment  # the key, and what was meant
    assert pulls_for(w, number) == []


def test_every_run_leaves_an_audit_trail_without_secrets(w: World) -> None:
    number = run(w, "audit me", [edit("a - b", "a + b"), bash("env"), fa.text("Fixed add.")])
    run_id = w.store_rows(number)[0]["run_id"]
    trail = w.audit_trail(run_id)
    kinds = [kind for kind, _ in trail]
    for expected in ("config", "model_turn", "tool_call", "validation", "work", "outcome"):
        assert expected in kinds, kinds
    row = w.store_rows(number)[0]
    assert row["sender"] == "mona" and row["outcome"] == "validated"
    assert row["cost_usd"] > 0
    everything = json.dumps(trail) + json.dumps(row)
    pem_body = w.github.private_key_pem.splitlines()[1]
    for secret in (ANTHROPIC_KEY, WEBHOOK_SECRET, pem_body, "ghs_"):
        assert secret not in everything
    pull = pulls_for(w, number)[0]
    assert w.github.requested_reviewers[f"{REPO}#{pull.number}"] == ["mona"]
