"""Pure: which title and body of an issue or pull request the agent is given.

The task is what a writer asked for: the text as it was when the trigger arrived (the webhook's
copy, kept with the run), never the text at work time. Otherwise the author of an issue could
rewrite the task after a maintainer labelled it, and the agent would do the rewrite with the
repository's token. GitHub's REST API does not say who edited an issue, so Honk always works from
the snapshot and says so when the text has changed since:

- the author has write access: every possible editor (the author, or someone with write access)
  could have asked Honk themselves; the edit may be fine, but nobody asked Honk for it, so the
  note says how to use the new text (ask again);
- the author has no write access: the edit may be the author's, so it is untrusted and the note
  says it was ignored.

A run without a snapshot (a trigger whose payload had no title) uses the current text only when
its author has write access; otherwise only the request itself reaches the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["issue", "pull request"]


@dataclass(frozen=True)
class TaskText:
    title: str
    body: str

    @property
    def known(self) -> bool:
        """GitHub requires a title, so an empty one means there is no snapshot."""
        return bool(self.title.strip())


def same_text(a: TaskText, b: TaskText) -> bool:
    """Equal but for line endings and trailing blanks (the webhook and the API may differ)."""

    def norm(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()

    return norm(a.title) == norm(b.title) and norm(a.body) == norm(b.body)


def author_matters(snapshot: TaskText, current: TaskText) -> bool:
    """Whether `choose_text` needs to know if the author has write access (one API call)."""
    return not snapshot.known or not same_text(snapshot, current)


def _who(login: str) -> str:
    return f"@{login}" if login else "the requester"


def choose_text(
    snapshot: TaskText,
    current: TaskText,
    *,
    kind: Kind,
    author_can_write: bool,
    requested_by: str,
) -> tuple[TaskText, str | None]:
    """The text the agent works from, and a sentence for the report when the reader must know."""
    if not snapshot.known:
        if author_can_write:
            return current, None
        return TaskText("", ""), (
            f"Honk had no copy of this {kind}'s text from when {_who(requested_by)} asked, and "
            "its author has no write access, so the agent saw only the request."
        )
    if same_text(snapshot, current):
        return snapshot, None
    if author_can_write:
        return snapshot, (
            f"This {kind} was edited after {_who(requested_by)} asked; Honk worked from the text "
            "as it was then (ask again to use the new text)."
        )
    return snapshot, (
        f"This {kind} was edited after {_who(requested_by)} asked, and its author has no write "
        "access, so Honk ignored the edit and worked from the text as it was when asked."
    )
