"""`/honk` commands end to end: help, status, refusals, redelivery, pull requests, stop."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_repo import CALC, TEST
from tests.fakes import anthropic as fa
from tests.fakes.git_http import add_commit
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, World, world

HONK_YML = "test: python3 -m unittest -q\n"


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("commands")) as running:
        running.add_repo({"calc.py": CALC, "test_calc.py": TEST}, honk_yml=HONK_YML)
        running.start_honk()
        yield running


def comment(w: World, number: int, body: str, *, is_pr: bool = False, sender: str = SENDER) -> Any:
    """Post a comment on the fake GitHub and deliver its `issue_comment.created` webhook."""
    posted = w.github.add_comment(REPO, number, body=body, user=sender)
    payload = w.point(
        payloads.issue_comment(body, is_pr=is_pr, sender=sender, comment_id=posted.id), number
    )
    return w.deliver("issue_comment", payload)


def replies(w: World, number: int) -> list[str]:
    return [c.body for c in w.github.comments_on(REPO, number) if "<!-- honk:reply" in c.body]


def sleepers(tag: str) -> list[int]:
    """Processes whose command line carries `tag`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = (
                Path(f"/proc/{pid}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        except OSError:
            continue
        if tag in cmdline and "pytest" not in cmdline:
            found.append(int(pid))
    return found


def test_help_replies_with_the_commands_quoting_the_line(w: World) -> None:
    number = w.github.add_issue(REPO, title="help me", user=SENDER)
    assert comment(w, number, "/honk help").status_code == 202
    body = w.wait(lambda: next(iter(replies(w, number)), None), what="the help reply")
    assert "> " in body and "/honk help" in body
    assert "/honk stop" in body and "/honk retry" in body and "/honk status" in body
    assert w.tracking_comment(number) is None


def test_someone_without_write_access_gets_one_reply_and_no_work(w: World) -> None:
    requests_before = w.anthropic_requests_made()
    number = w.github.add_issue(REPO, title="from a stranger", user="stranger")
    w.github.set_permission(REPO, "stranger", "read")
    assert comment(w, number, "/honk do something", sender="stranger").status_code == 202
    body = w.wait(lambda: next(iter(replies(w, number)), None), what="the refusal")
    assert "write" in body.lower()
    assert w.tracking_comment(number) is None
    assert not [p for p in w.pulls() if p.head_ref.startswith(f"honk/{number}-")]

    # a maintainer's `/honk retry` never replays the stranger's refused request
    assert comment(w, number, "/honk retry").status_code == 202
    w.wait(lambda: len(replies(w, number)) == 2, what="the answer to retry")
    assert w.tracking_comment(number) is None
    assert w.anthropic_requests_made() == requests_before


def test_fifty_outsiders_get_one_reply_without_a_comment_list_being_read(w: World) -> None:
    number = w.github.add_issue(REPO, title="public issue", user="stranger-0")
    strangers = [f"stranger-{n}" for n in range(50)]
    for login in strangers:
        w.github.set_permission(REPO, login, "read")
    requests_before = w.anthropic_requests_made()

    for n, login in enumerate(strangers):
        assert comment(w, number, f"/honk do as I say ({n})", sender=login).status_code == 202
    w.wait(
        lambda: (
            len(w.store_rows(number)) == 50
            and all(r["status"] == "refused" for r in w.store_rows(number))
        ),
        what="every request to be refused",
    )

    [reply] = replies(w, number)
    assert "write access" in reply
    listing = ("GET", f"/repos/{REPO}/issues/{number}/comments")
    assert listing not in w.github.requests
    assert w.tracking_comment(number) is None
    assert w.anthropic_requests_made() == requests_before


def test_a_comment_resent_under_a_new_delivery_id_is_one_run(w: World) -> None:
    """X-GitHub-Delivery is not signed: a captured body re-sent with a fresh id is no new run."""
    number = w.github.add_issue(REPO, title="status twice", user=SENDER)
    posted = w.github.add_comment(REPO, number, body="/honk status", user=SENDER)
    payload = w.point(payloads.issue_comment("/honk status", comment_id=posted.id), number)
    first = w.deliver("issue_comment", payload, delivery=str(uuid.uuid4()))
    second = w.deliver("issue_comment", payload, delivery=str(uuid.uuid4()))
    assert first.json()["run_id"] == second.json()["run_id"]
    w.wait(lambda: replies(w, number), what="the status reply")
    w.wait(lambda: w.store_rows(number)[0]["status"] == "succeeded", what="the request")
    assert len(w.store_rows(number)) == 1
    assert len(replies(w, number)) == 1
    # a writer's reply looks for an earlier attempt by its marker (what outsiders' never do)
    assert ("GET", f"/repos/{REPO}/issues/{number}/comments") in w.github.requests


def test_a_redelivered_webhook_starts_one_run(w: World) -> None:
    number = w.github.add_issue(REPO, title="add() subtracts", user=SENDER)
    w.script = [
        fa.tool_use(
            "str_replace_based_edit_tool",
            {"command": "str_replace", "path": "calc.py", "old_str": "a - b", "new_str": "a + b"},
        ),
        fa.text("Fixed add."),
    ]
    delivery = str(uuid.uuid4())
    payload = w.point(payloads.labeled("honk"), number)
    first = w.deliver("issues", payload, delivery=delivery)
    second = w.deliver("issues", payload, delivery=delivery)
    assert first.json()["run_id"] == second.json()["run_id"]
    w.wait(
        lambda: w.store_rows(number) and w.store_rows(number)[0]["status"] == "succeeded",
        what="the run",
    )
    assert len(w.store_rows(number)) == 1
    assert len([c for c in w.github.comments_on(REPO, number) if "<!-- honk:run=" in c.body]) == 1
    assert len([p for p in w.pulls() if p.head_ref.startswith(f"honk/{number}-")]) == 1

    # and /honk status lists it
    assert comment(w, number, "/honk status").status_code == 202
    status = w.wait(lambda: next(iter(replies(w, number)), None), what="the status reply")
    assert first.json()["run_id"] in status


def test_honk_on_a_pull_request_adds_one_commit_to_its_branch(w: World) -> None:
    head_sha = add_commit(w.git_root, REPO, "feature", {"notes.md": "draft\n"}, "Start feature")
    number = w.github.add_pull(
        REPO, title="Feature", head="feature", head_sha=head_sha, user=SENDER
    )
    w.script = [
        fa.tool_use(
            "str_replace_based_edit_tool",
            {"command": "str_replace", "path": "calc.py", "old_str": "a - b", "new_str": "a + b"},
        ),
        fa.text("Fixed add on the feature branch."),
    ]
    pulls_before = len(w.pulls())
    assert comment(w, number, "/honk fix add while you are here", is_pr=True).status_code == 202
    w.wait(
        lambda: w.store_rows(number) and w.store_rows(number)[0]["status"] == "succeeded",
        what="the run",
    )
    new_sha = w.github.branch_sha(REPO, "feature")
    assert new_sha != head_sha
    log = w.git_log("feature")
    assert len(log) == 3  # initial, Start feature, Honk's one commit
    assert "a + b" in (w.file_on("feature", "calc.py") or "")
    assert len(w.pulls()) == pulls_before
    checks = [c for c in w.github.check_runs if c.name == "Honk"]
    assert any(c.head_sha == new_sha and c.conclusion == "success" for c in checks)
    assert all(c.status == "completed" for c in checks)


def test_a_fork_pull_request_gets_a_reply_and_no_work(w: World) -> None:
    number = w.github.add_pull(
        REPO, title="From a fork", head="patch-1", head_repo="mona/hello-world", user=SENDER
    )
    assert comment(w, number, "/honk fix", is_pr=True).status_code == 202
    body = w.wait(lambda: next(iter(replies(w, number)), None), what="the fork reply")
    assert "fork" in body.lower()
    assert w.tracking_comment(number) is None


def test_a_second_trigger_waits_and_stop_kills_both_runs(w: World) -> None:
    tag = f"sleep 3{uuid.uuid4().int % 1000:03d}"
    number = w.github.add_issue(REPO, title="slow work", user=SENDER)
    w.script = [fa.tool_use("bash", {"command": f"({tag}; echo) & {tag}; echo"})]
    assert w.deliver("issues", w.point(payloads.labeled("honk"), number)).status_code == 202
    w.wait(lambda: len(sleepers(tag)) >= 2, what="the agent's command tree to run")

    assert comment(w, number, "/honk also add a docstring").status_code == 202
    w.wait(
        lambda: (
            len(w.store_rows(number)) == 2
            and any(r["status"] == "waiting" for r in w.store_rows(number))
        ),
        what="the second run to wait",
    )
    first_id = next(r["run_id"] for r in w.store_rows(number) if r["status"] == "running")
    waiting_comment = w.wait(
        lambda: next(
            (
                c.body
                for c in w.github.comments_on(REPO, number)
                if "<!-- honk:run=" in c.body and first_id not in c.body.split("-->")[0]
            ),
            None,
        ),
        what="the waiting run's tracking comment",
    )
    assert first_id in waiting_comment

    assert comment(w, number, "/honk stop").status_code == 202
    w.wait(lambda: not sleepers(tag), what="the command tree to be killed", timeout=60)
    w.wait(
        lambda: all(r["status"] in ("cancelled", "succeeded") for r in w.store_rows(number)),
        what="runs to stop",
    )
    tracking = [c.body for c in w.github.comments_on(REPO, number) if "<!-- honk:run=" in c.body]
    assert len(tracking) == 2
    assert all(SENDER in body and "stop" in body.lower() for body in tracking)
    stopped = w.wait(
        lambda: [b for b in replies(w, number) if "stop" in b.lower()], what="the stop reply"
    )
    assert "2" in stopped[0]


def test_a_review_comment_gets_its_reply_in_its_thread_and_retry_repeats_the_run(w: World) -> None:
    head_sha = add_commit(w.git_root, REPO, "docs-fix", {"docs.md": "old words\n"}, "Docs")
    number = w.github.add_pull(REPO, title="Docs", head="docs-fix", head_sha=head_sha, user=SENDER)
    review = w.github.add_review_comment(
        REPO, number, body="/honk say new words", path="docs.md", line=1, user=SENDER
    )
    edit_docs = [
        fa.tool_use(
            "str_replace_based_edit_tool",
            {"command": "create", "path": "docs.md", "file_text": "new words\n"},
        ),
        fa.text("Rewrote docs.md."),
    ]
    w.script = list(edit_docs)
    payload = payloads.review_comment("/honk say new words", path="docs.md", line=1)
    payload = w.point(payload, number)
    payload["comment"]["id"] = review.id
    payload["pull_request"]["head"].update(ref="docs-fix", sha=head_sha)
    assert w.deliver("pull_request_review_comment", payload).status_code == 202
    w.wait(
        lambda: w.store_rows(number) and w.store_rows(number)[0]["status"] == "succeeded",
        what="the run",
    )
    thread = [c for c in w.github.review_comments_on(REPO, number) if c.in_reply_to_id == review.id]
    assert len(thread) == 1
    assert w.file_on("docs-fix", "docs.md") == "new words\n"
    assert [r.content for r in w.github.reactions if r.subject_id == review.id] == ["eyes"]

    # GitHub's Re-run button on Honk's check run repeats the same request as a new run
    first = w.store_rows(number)[0]
    check = next(c for c in w.github.check_runs if c.external_id == first["run_id"])
    w.script = [
        fa.tool_use(
            "str_replace_based_edit_tool",
            {"command": "create", "path": "docs.md", "file_text": "newer words\n"},
        ),
        fa.text("Rewrote docs.md again."),
    ]
    rerun = payloads.check_run("rerequested", external_id=first["run_id"])
    payloads.with_repository(rerun, clone_url=w.clone_url())
    rerun["check_run"]["pull_requests"][0]["number"] = number
    rerun["check_run"]["head_sha"] = check.head_sha
    assert w.deliver("check_run", rerun).status_code == 202
    w.wait(
        lambda: (
            len(w.store_rows(number)) == 2
            and all(r["status"] == "succeeded" for r in w.store_rows(number))
        ),
        what="the retried run",
    )
    assert w.file_on("docs-fix", "docs.md") == "newer words\n"
    retried = next(r for r in w.store_rows(number) if r["run_id"] != first["run_id"])
    assert "say new words" in retried["trigger_json"]
