"""The operator's budgets end to end: a run that spent the repository's day stops the next one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e_repo import CALC, TEST
from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, World, world

# $0.93 of output at Sonnet's $15 per million tokens, and the input: most of the day's $1.00.
EXPENSIVE = fa.Reply(
    content=[{"type": "text", "text": "Read everything; nothing to change."}],
    output_tokens=62_000,
)


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("budgets")) as running:
        running.extra_env["HONK_BUDGET_REPO_DAY_USD"] = "1.00"
        running.add_repo({"calc.py": CALC, "test_calc.py": TEST})
        running.start_honk()
        yield running


def replies(w: World, number: int) -> list[str]:
    return [c.body for c in w.github.comments_on(REPO, number) if "<!-- honk:reply" in c.body]


def comment(w: World, number: int, body: str) -> None:
    posted = w.github.add_comment(REPO, number, body=body, user=SENDER)
    payload = w.point(payloads.issue_comment(body, comment_id=posted.id), number)
    assert w.deliver("issue_comment", payload).status_code == 202


def test_a_second_run_is_refused_once_the_first_spent_the_days_budget(w: World) -> None:
    first = w.github.add_issue(REPO, title="look around", user=SENDER)
    w.script = [EXPENSIVE]
    assert w.deliver("issues", w.point(payloads.labeled("honk"), first)).status_code == 202
    w.wait(
        lambda: w.store_rows(first) and w.store_rows(first)[0]["status"] == "succeeded",
        what="the first run",
    )
    tracking = w.tracking_comment(first) or ""
    assert "lowered from $2.00 to $1.00" in tracking.replace("\\$", "$")
    requests = w.anthropic_requests_made()

    second = w.github.add_issue(REPO, title="and now this", user=SENDER)
    comment(w, second, "/honk fix this too")
    refusal = w.wait(lambda: next(iter(replies(w, second)), None), what="the refusal")

    assert "budget for this repository today is used up" in refusal
    assert "resets at" in refusal and "00:00 UTC" in refusal
    assert w.tracking_comment(second) is None
    [row] = w.store_rows(second)
    assert (row["status"], row["outcome"]) == ("refused", "budget")
    assert w.anthropic_requests_made() == requests

    comment(w, second, "/honk status")
    status = w.wait(lambda: len(replies(w, second)) == 2 and replies(w, second)[1], what="status")
    assert "Budget for this repository today: $0.0" in status.replace("\\$", "$")
