"""Pure: the markdown of Honk's short replies to commands (help, status, stop, refusals).

Mobile first: each reply quotes the line it answers, then says in one short sentence what happened
or what to do, then a short list. The quote is made inert (see `sanitize.quote_for_reply`) and each
reply ends with Honk's hidden marker, so a reply can never trigger Honk again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from honk_app.report.render import last_pass
from honk_app.report.text import code, inline, link, login
from honk_app.safety.sanitize import quote_for_reply
from honk_app.triggers import HONK_MARKER_PREFIX

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]

REPLY_MARKER = f"{HONK_MARKER_PREFIX}reply -->"
_RECENT_LIMIT = 5
_SUMMARY_LIMIT = 120


@dataclass(frozen=True)
class RunSummary:
    """One run as the status reply lists it."""

    run_id: str
    status: RunStatus
    created_at: datetime
    sender: str
    summary: str = ""
    url: str | None = None


def _reply(trigger_line: str, *parts: str) -> str:
    """Quote, then the parts separated by blank lines, then the marker."""
    blocks = [quote_for_reply(trigger_line)] if trigger_line.strip() else []
    blocks.extend(part for part in parts if part)
    blocks.append(REPLY_MARKER)
    return last_pass("\n\n".join(blocks)) + "\n"


def help_reply(command_word: str, trigger_line: str, label: str = "honk") -> str:
    """What Honk can do, for `/honk help`."""
    word = f"/{command_word}"
    commands = "\n".join(
        [
            f"- `{word} <what to do>`: work on this issue or pull request and open or update a"
            " pull request. The lines after the command are part of the instruction.",
            f"- `{word}` alone: work on the issue or pull request as it is written.",
            f"- `{word} stop` (or `{word} cancel`): stop the queued and running runs here.",
            f"- `{word} retry`: run the last request here again.",
            f"- `{word} status`: list the queued, running and recent runs here.",
            f"- `{word} help`: show this list.",
        ]
    )
    notes = (
        "The command must start its own line; quoted lines and code blocks are ignored. "
        f"You can also add the `{label}` label to an issue to have Honk work on it."
    )
    return _reply(trigger_line, f"Here is what `{word}` can do.", commands, notes)


def _when(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _run_line(run: RunSummary) -> str:
    name = link(run.url, code(run.run_id, 100))
    line = f"- {name}: {run.status}, asked by {login(run.sender)} at {_when(run.created_at)}"
    summary = inline(run.summary, _SUMMARY_LIMIT + 40)
    if len(summary) > _SUMMARY_LIMIT:
        summary = summary[: _SUMMARY_LIMIT - 1].rstrip() + "…"
    return f"{line}. {summary}" if summary else line


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def status_reply(trigger_line: str, runs: Sequence[RunSummary]) -> str:
    """Queued, running and recent runs on this issue or pull request, for `/honk status`."""
    by_age = sorted(runs, key=lambda run: run.created_at)
    running = [run for run in by_age if run.status == "running"]
    queued = [run for run in by_age if run.status == "queued"]
    finished = [run for run in reversed(by_age) if run.status not in ("running", "queued")]
    if not runs:
        return _reply(trigger_line, "Honk has no runs here yet.")
    if running or queued:
        headline = f"{len(running)} running, {len(queued)} queued."
    else:
        headline = "Nothing is running or queued here."
    sections = [headline]
    for title, group in (
        ("Running", running),
        ("Queued", queued),
        ("Recent", finished[:_RECENT_LIMIT]),
    ):
        if group:
            sections.append(f"**{title}**\n" + "\n".join(_run_line(run) for run in group))
    return _reply(trigger_line, *sections)


def unauthorized_reply(trigger_line: str, sender: str) -> str:
    """The sender may not use Honk here (no write access, or a bot that is not allowed)."""
    return _reply(
        trigger_line,
        f"Sorry @{login(sender)}, only people with write access to this repository can use Honk.",
        "Ask a maintainer to run the command for you.",
    )


def fork_reply(trigger_line: str) -> str:
    """Honk cannot push to a fork, and will not run a fork's code with this repository's token."""
    return _reply(
        trigger_line,
        "Honk does not work on pull requests from forks.",
        "Push the branch to this repository and open the pull request from there, "
        "or open an issue and ask Honk to work on it.",
    )


def unknown_command_reply(command_word: str, trigger_line: str, word: str) -> str:
    """A subcommand Honk does not know; points at the help."""
    return _reply(
        trigger_line,
        f"Honk does not know {code(f'/{command_word} {word}', 100)}.",
        f"Comment `/{command_word} help` to see what it can do.",
    )


def stopped_reply(trigger_line: str, stopper_login: str, count: int) -> str:
    """What `/honk stop` did."""
    if count == 0:
        return _reply(trigger_line, "Nothing to stop: no Honk run is queued or running here.")
    return _reply(
        trigger_line,
        f"Stopped {_count(count, 'run')} at @{login(stopper_login)}'s request.",
        "Comment a new command to start again.",
    )


def notice_reply(trigger_line: str, sentence: str) -> str:
    """One sentence in answer (a refusal, a budget), rendered like untrusted text: it may quote
    an error or a name."""
    return _reply(trigger_line, inline(sentence, 500))


def could_not_start_reply(trigger_line: str, sentence: str) -> str:
    """A run failed before it began; `sentence` may quote an error."""
    return notice_reply(trigger_line, f"Honk could not start: {sentence}")


def review_thread_reply(validated: bool, head_sha: str | None, detail: str, url: str) -> str:
    """The answer in a review comment's thread once Honk pushed to the pull request (`url`, from
    GitHub, is trusted).

    `detail` can carry the agent's words (its summary or error), so it is rendered like them.
    """
    sha = code((head_sha or "")[:7] or "unknown", 10)
    if validated:
        return last_pass(
            f"Done in {sha}: the tests pass. Details in the tracking comment on {url}."
        )
    said = f" ({inline(detail, 300)})" if detail.strip() else ""
    return last_pass(f"Pushed {sha}{said}. Details in the tracking comment.")
