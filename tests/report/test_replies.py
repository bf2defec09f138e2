"""Honk's short replies read well on a phone and can never trigger Honk again (pure, no fakes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from honk_app.command_grammar import parse_command
from honk_app.models import Ignored
from honk_app.report.replies import (
    REPLY_MARKER,
    RunStatus,
    RunSummary,
    could_not_start_reply,
    fork_reply,
    help_reply,
    review_thread_reply,
    status_reply,
    stopped_reply,
    unauthorized_reply,
    unknown_command_reply,
)
from honk_app.safety.secret_scan import REDACTED
from honk_app.triggers import HONK_MARKER_PREFIX, TriggerRules, decide
from tests.fixtures import payloads

LINE = "/honk status"
T0 = datetime(2025, 5, 20, 9, 0, tzinfo=UTC)


def run(number: int, status: RunStatus, minutes: int, **extra: str) -> RunSummary:
    return RunSummary(
        run_id=f"honk-d{number}",
        status=status,
        created_at=T0 + timedelta(minutes=minutes),
        sender="mona",
        **extra,
    )


ALL_REPLIES = {
    "help": help_reply("honk", "/honk help"),
    "status": status_reply(LINE, [run(1, "running", 0), run(2, "queued", 1)]),
    "status, no runs": status_reply(LINE, []),
    "unauthorized": unauthorized_reply("/honk fix it", "octocat"),
    "fork": fork_reply("/honk fix it"),
    "unknown": unknown_command_reply("honk", "/honk frobnicate", "frobnicate"),
    "stopped": stopped_reply("/honk stop", "mona", 2),
    "nothing to stop": stopped_reply("/honk stop", "mona", 0),
}


@pytest.mark.parametrize("reply", ALL_REPLIES.values(), ids=ALL_REPLIES)
def test_reply_opens_with_the_quoted_line_then_one_short_sentence(reply: str) -> None:
    quote, first, *_ = reply.split("\n\n")
    assert quote.startswith("> `/honk")
    assert len(first) <= 80
    assert first.count(". ") == 0 and first.endswith(".")


@pytest.mark.parametrize("reply", ALL_REPLIES.values(), ids=ALL_REPLIES)
def test_reply_can_never_trigger_honk(reply: str) -> None:
    assert parse_command(reply, "honk") is None
    assert reply.rstrip().endswith(REPLY_MARKER)
    assert REPLY_MARKER.startswith(HONK_MARKER_PREFIX)
    # Even from an account Honk does not recognise, the marker keeps it from acting on it.
    delivery = payloads.issue_comment(reply, sender="someone")
    assert isinstance(decide("issue_comment", "d", delivery, TriggerRules()), Ignored)


def test_reply_without_a_trigger_line_has_no_quote() -> None:
    reply = fork_reply("")
    assert reply.startswith("Honk does not work on pull requests from forks.")


def test_quoted_line_is_inert_and_redacted() -> None:
    token = "ghp_" + "Z" * 36
    reply = unauthorized_reply(f"/honk deploy with {token} cc @octo-org/admins", "octocat")
    assert reply.startswith(f"> `/honk deploy with {REDACTED} cc @octo-org/admins`\n\n")
    assert token not in reply


def test_help_lists_every_command_with_the_configured_word_and_label() -> None:
    reply = help_reply("goose", "/goose help", label="ai-goose")
    for usage in [
        "`/goose <what to do>`",
        "`/goose help`",
        "`/goose stop` (or `/goose cancel`)",
        "`/goose retry`",
        "`/goose status`",
        "`ai-goose` label",
    ]:
        assert usage in reply
    assert "/honk" not in reply


def test_status_groups_running_queued_and_recent_runs() -> None:
    runs = [
        run(1, "succeeded", 0, summary="Opened #44", url="https://github.com/o/r/pull/44"),
        run(2, "failed", 5, summary="Tests failed"),
        run(3, "running", 10, url="https://honk.example/runs/honk-d3"),
        run(4, "queued", 15),
        run(5, "queued", 20),
        run(6, "cancelled", 7),
    ]
    reply = status_reply(LINE, runs)
    sections = reply.split("\n\n")
    assert sections[1] == "1 running, 2 queued."
    assert sections[2] == (
        "**Running**\n- [`honk-d3`](https://honk.example/runs/honk-d3): running, "
        "asked by mona at 2025-05-20 09:10 UTC"
    )
    assert sections[3] == (
        "**Queued**\n"
        "- `honk-d4`: queued, asked by mona at 2025-05-20 09:15 UTC\n"
        "- `honk-d5`: queued, asked by mona at 2025-05-20 09:20 UTC"
    )
    assert sections[4].splitlines() == [
        "**Recent**",
        "- `honk-d6`: cancelled, asked by mona at 2025-05-20 09:07 UTC",
        "- `honk-d2`: failed, asked by mona at 2025-05-20 09:05 UTC. Tests failed",
        "- [`honk-d1`](https://github.com/o/r/pull/44): succeeded, asked by mona at "
        "2025-05-20 09:00 UTC. Opened #44",
    ]
    assert "@mona" not in reply  # a status list pings nobody


def test_status_shows_only_the_five_most_recent_finished_runs() -> None:
    reply = status_reply(LINE, [run(n, "succeeded", n) for n in range(8)])
    assert "Nothing is running or queued here." in reply
    assert [f"honk-d{n}" in reply for n in range(8)] == [False] * 3 + [True] * 5


def test_status_with_no_runs() -> None:
    assert "Honk has no runs here yet." in status_reply(LINE, [])


def test_status_times_are_shown_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    summary = RunSummary("honk-x", "running", datetime(2025, 5, 20, 11, 0, tzinfo=paris), "mona")
    assert "2025-05-20 09:00 UTC" in status_reply(LINE, [summary])


def test_status_summary_is_one_short_clean_line() -> None:
    long_summary = "Done.\n<!-- hidden -->" + " word" * 100
    reply = status_reply(LINE, [run(1, "succeeded", 0, summary=long_summary)])
    line = next(text for text in reply.splitlines() if "honk-d1" in text)
    assert "hidden" not in line
    assert line.endswith("…")
    assert len(line) < 200


@pytest.mark.parametrize(
    ("count", "sentence"),
    [
        (0, "Nothing to stop: no Honk run is queued or running here."),
        (1, "Stopped 1 run at @mona's request."),
        (3, "Stopped 3 runs at @mona's request."),
    ],
    ids=["none", "one", "several"],
)
def test_stopped_reply_says_how_many_runs_stopped(count: int, sentence: str) -> None:
    assert stopped_reply("/honk stop", "mona", count).split("\n\n")[1] == sentence


def test_unauthorized_reply_addresses_the_sender() -> None:
    reply = unauthorized_reply("/honk fix it", "octocat")
    assert "Sorry @octocat, only people with write access" in reply


def test_unknown_command_points_at_help() -> None:
    reply = unknown_command_reply("honk", "/honk frobnicate", "frob`nicate")
    assert "Honk does not know ``/honk frob`nicate``." in reply
    assert "`/honk help`" in reply


def test_replies_about_a_failed_start_or_a_push_render_their_untrusted_words() -> None:
    reply = could_not_start_reply("/honk go", "GitHub said: fixes #3 ![x](https://x.test/i) @bob")
    assert (
        "Honk could not start: GitHub said: fixes issue #3 !\\[x\\](`https://x.test/i`) `@bob`"
        in (reply)
    )
    assert reply.rstrip().endswith(REPLY_MARKER)
    url = "https://github.com/acme/shop/pull/9"
    assert review_thread_reply(True, "0123456789", "", url) == (
        f"Done in `0123456`: the tests pass. Details in the tracking comment on {url}."
    )
    assert review_thread_reply(False, None, "closes #1 <img src=x>", url) == (
        "Pushed `unknown` (closes issue #1 &lt;img src=x>). Details in the tracking comment."
    )
