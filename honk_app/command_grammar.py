"""Pure: the `/honk` command grammar, as GitHub renders a comment.

A command is a line of its own, outside fenced code, `>` quotes and HTML comments (nobody sees
those, so nothing there may ask Honk for anything).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from honk_app.models import Command

SUBCOMMANDS: Mapping[str, Command] = {
    "help": Command.HELP,
    "stop": Command.STOP,
    "cancel": Command.STOP,
    "retry": Command.RETRY,
    "status": Command.STATUS,
}

_FENCE_OPEN = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class ParsedCommand:
    """A `/honk` line found in a comment."""

    command: Command
    instruction: str  # for RUN: the rest of the line and every line after it, stripped
    line: str  # the triggering line, verbatim


def _closes_fence(line: str, fence: str) -> bool:
    """A closing fence uses the opening character, at least as many times, and nothing else."""
    stripped = line.strip()
    return len(stripped) >= len(fence) and stripped == fence[0] * len(stripped)


def _visible_lines(lines: list[str]) -> Iterator[int]:
    """Indexes of lines that can carry a command: outside fenced code, quotes and HTML comments.

    An unclosed fence or HTML comment hides everything after it, as GitHub renders it.
    """
    fence: str | None = None
    in_comment = False
    for index, line in enumerate(lines):
        if fence is not None:
            if _closes_fence(line, fence):
                fence = None
            continue
        if in_comment:
            in_comment = "-->" not in line
            continue
        opening = _FENCE_OPEN.match(line)
        if opening and not (opening["fence"][0] == "`" and "`" in opening["info"]):
            fence = opening["fence"]
            continue
        last_open = line.rfind("<!--")
        if last_open != -1 and "-->" not in line[last_open + 4 :]:
            in_comment = True
        if line.lstrip().startswith(">"):
            continue
        yield index


@functools.lru_cache(maxsize=8)
def _command_line(word: str) -> re.Pattern[str]:
    """The pattern of a command line, built once per command word (it is on the webhook path)."""
    return re.compile(rf"^\s*/{re.escape(word)}(?=\s|$)(?P<rest>.*)$", re.IGNORECASE)


def parse_command(body: str, word: str) -> ParsedCommand | None:
    """The first `/word` command in a comment body, or None.

    A command is a line starting with `/word` (any case, leading whitespace allowed) followed by
    whitespace or the end of the line. A reserved subcommand (help, stop/cancel, retry, status)
    counts only as the first word on the command line itself, so that an instruction written on
    the following lines ("/honk" then "stop the crash on empty input") stays an instruction.
    """
    pattern = _command_line(word)
    lines = body.splitlines()
    for index in _visible_lines(lines):
        match = pattern.match(lines[index])
        if match is None:
            continue
        rest = match["rest"]
        first_word = rest.split(maxsplit=1)[0] if rest.strip() else ""
        subcommand = SUBCOMMANDS.get(first_word.lower().rstrip(".!?,:;"))
        if subcommand is not None:
            return ParsedCommand(subcommand, "", lines[index])
        instruction = "\n".join([rest, *lines[index + 1 :]]).strip()
        return ParsedCommand(Command.RUN, instruction, lines[index])
    return None
