"""Where Honk pushes, end to end: `honk serve`, the fake GitHub (REST with branch and rules APIs,
real git over smart HTTP) and the scripted model. A pull request whose head branch people guard
gets one sentence and no work; an ordinary same-repository pull request gets the agent's commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e_repo import CALC, TEST, fix_add, run_finished
from tests.fakes.git_http import add_commit
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, World, world

HONK_YML = "test: python3 -m unittest -q\n"


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("push-targets")) as running:
        running.add_repo({"calc.py": CALC, "test_calc.py": TEST}, honk_yml=HONK_YML)
        # what many organisations put on every branch: harmless to a fast-forward push
        running.github.guard_branch(REPO, "*", rules=["deletion", "non_fast_forward"])
        running.start_honk()
        yield running


def ask_on_pull(w: World, head: str, base: str) -> int:
    """A same-repository pull request from `head` into `base`, and `/honk fix add` on it."""
    number = w.github.add_pull(
        REPO, title="Fix add", head=head, base=base, body="", user=SENDER,
        head_sha=w.github.branch_sha(REPO, head),
    )  # fmt: skip
    posted = w.github.add_comment(REPO, number, body="/honk fix add", user=SENDER)
    payload: dict[str, Any] = w.point(
        payloads.issue_comment("/honk fix add", is_pr=True, comment_id=posted.id), number
    )
    payload["issue"].update(title="Fix add", body="")
    assert w.deliver("issue_comment", payload).status_code == 202
    w.wait(lambda: run_finished(w.store_rows(number)), what="the run to finish")
    return number


@pytest.mark.parametrize(
    ("head", "base", "sentence"),
    [
        (
            "main", "release",
            "Honk does not push to `main`: it is this repository's default branch; ask on a pull "
            "request from a feature branch.",
        ),
        (
            "release-1", "main",
            "Honk does not push to `release-1`: it is a protected branch; ask on a pull request "
            "from a feature branch.",
        ),
    ],
    ids=["main-into-release", "protected-head"],
)  # fmt: skip
def test_a_guarded_head_branch_gets_a_sentence_and_no_push(
    w: World, head: str, base: str, sentence: str
) -> None:
    for branch in {head, base} - {"main"}:
        add_commit(w.git_root, REPO, branch, {"NOTES.md": f"{branch}\n"}, f"Start {branch}")
    w.github.guard_branch(REPO, "release-1", protected=True)
    before = {branch: w.github.branch_sha(REPO, branch) for branch in w.branches()}
    model_calls = w.anthropic_requests_made()

    number = ask_on_pull(w, head, base)

    comment = w.tracking_comment(number) or ""
    assert sentence in comment, comment
    assert {branch: w.github.branch_sha(REPO, branch) for branch in w.branches()} == before
    assert w.anthropic_requests_made() == model_calls  # refused before any model call
    assert [r["outcome"] for r in w.store_rows(number)] == ["blocked"]


def test_an_ordinary_same_repository_pull_request_is_pushed(w: World) -> None:
    start = add_commit(w.git_root, REPO, "feature", {"NOTES.md": "feature\n"}, "Start feature")
    w.script = [*fix_add("Fixed add on the feature branch.")]

    number = ask_on_pull(w, "feature", "main")

    log = w.git_log("feature")
    assert log[1].sha == start and log[0].author_name == f"{payloads.HONK_APP_SLUG}[bot]"
    assert "a + b" in (w.file_on("feature", "calc.py") or "")
    assert [r["outcome"] for r in w.store_rows(number)] == ["validated"]
