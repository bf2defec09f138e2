"""Pure: the `/honk` command grammar, as GitHub renders a comment.

A command is a line of its own that a reader sees as text: not in a fenced or indented code block,
a `>` quote (or a line that markdown folds into the quote above it), an HTML comment, or an HTML
block that shows code or hides its content (`<pre>`, `<code>`, `<details>`, …). Nobody reads those
as a request, and they are where a maintainer pastes someone else's words, so nothing there may
ask Honk for anything with the maintainer's permission.

Lines are what GitHub sees as lines: split at `\\n` only (after `\\r\\n` and `\\r`), never at the
Unicode separators `str.splitlines` also honours (U+2028, NEL, form feed, …), which render inside
one line. Characters that render as nothing are removed before the command word and subcommand
are read, so `/honk st<ZWSP>op` stops, as the reader saw it, rather than starting a run.
Everything here is linear in the length of the comment.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from honk_app.invisible_text import strip_invisible
from honk_app.models import Command

SUBCOMMANDS: Mapping[str, Command] = {
    "help": Command.HELP,
    "stop": Command.STOP,
    "cancel": Command.STOP,
    "retry": Command.RETRY,
    "status": Command.STATUS,
}

_FENCE_OPEN = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
# HTML comment markers and the tags whose content is code, raw text or folded away.
_MARKUP = re.compile(
    r"<!--|-->|<(?P<close>/?)(?P<tag>pre|code|details|textarea|script|style)(?=[\s/>]|$)",
    re.IGNORECASE,
)
_BACKTICKS = re.compile(r"`+")
_CODE_INDENT = 4  # columns of indentation that make an indented code block


@dataclass(frozen=True)
class ParsedCommand:
    """A `/honk` line found in a comment."""

    command: Command
    instruction: str  # for RUN: the rest of the line and every line after it, stripped
    line: str  # the triggering line, verbatim


def split_lines(body: str) -> list[str]:
    """A comment's lines as GitHub sees them: `\\r\\n`, `\\r` and `\\n` end a line, nothing else."""
    return body.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _closes_fence(line: str, fence: str) -> bool:
    """A closing fence uses the opening character, at least as many times, and nothing else."""
    stripped = line.strip()
    return len(stripped) >= len(fence) and stripped == fence[0] * len(stripped)


def _indent(line: str) -> int:
    """Columns of leading spaces and tabs (a tab reaches the next multiple of four)."""
    columns = 0
    for char in line:
        if char == " ":
            columns += 1
        elif char == "\t":
            columns += 4 - columns % 4
        else:
            break
    return columns


def _without_code_spans(line: str) -> str:
    """`line` with its inline code spans blanked: a `<details>` written in backticks is text.

    A run of backticks opens a span closed by the next run of the same length; with none, it is
    literal. Each length's runs are visited once, in order, so this stays linear.
    """
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(line)]
    if len(runs) < 2:
        return line
    by_length: dict[int, list[int]] = {}
    for index, (start, end) in enumerate(runs):
        by_length.setdefault(end - start, []).append(index)
    seen = dict.fromkeys(by_length, 0)  # per length: how many of its runs lie behind us
    pieces, kept, index = [], 0, 0
    while index < len(runs):
        start, end = runs[index]
        same = by_length[end - start]
        seen[end - start] += 1
        if seen[end - start] >= len(same):
            index += 1  # no later run of this length: literal backticks
            continue
        closer = same[seen[end - start]]
        pieces += [line[kept:start], " " * (runs[closer][1] - start)]
        kept = runs[closer][1]
        for skipped in range(index + 1, closer + 1):  # runs inside the span are its text
            seen[runs[skipped][1] - runs[skipped][0]] += 1
        index = closer + 1
    return "".join([*pieces, line[kept:]])


@dataclass
class _Reader:
    """Where the reading stands at the start of a line: what hides the lines that follow."""

    fence: str | None = None
    in_comment: bool = False
    open_tags: dict[str, int] = field(default_factory=dict)  # hiding HTML elements still open
    in_quote: bool = False  # a `>` line, until a blank line: later text lines belong to it
    in_indented_code: bool = False
    in_paragraph: bool = False  # the line before was text: an indented line continues it

    def visible(self, lines: list[str]) -> Iterator[int]:
        """Indexes of the lines a reader sees as text of their own, outside code and quotes.

        An unclosed fence, HTML comment or hiding element hides everything after it, as GitHub
        renders it.
        """
        for index, line in enumerate(lines):
            if self._read(line):
                yield index

    def _read(self, line: str) -> bool:
        if self.fence is not None:
            if _closes_fence(line, self.fence):
                self.fence = None
            return False
        if self.in_comment or any(self.open_tags.values()):
            self._scan_markup(line)
            self.in_paragraph = False
            return False
        if not line.strip(" \t"):  # a blank line ends quotes and paragraphs, not code blocks
            self.in_quote = self.in_paragraph = False
            return False
        indented = _indent(line) >= _CODE_INDENT
        if self.in_indented_code and indented:
            return False
        self.in_indented_code = False
        if indented and not self.in_paragraph and not self.in_quote:
            self.in_indented_code = True
            return False
        opening = _FENCE_OPEN.match(line)
        if opening and not (opening["fence"][0] == "`" and "`" in opening["info"]):
            self.fence = opening["fence"]
            self.in_quote = self.in_paragraph = False
            return False
        self._scan_markup(line)
        self.in_paragraph = True
        if line.lstrip().startswith(">"):
            self.in_quote = True
        return not self.in_quote

    def _scan_markup(self, line: str) -> None:
        """Follow HTML comments and hiding elements opened or closed on this line."""
        for match in _MARKUP.finditer(_without_code_spans(line)):
            marker = match[0]
            if self.in_comment:
                self.in_comment = marker != "-->"
            elif marker == "<!--":
                self.in_comment = True
            elif match["tag"]:
                tag = match["tag"].lower()
                depth = self.open_tags.get(tag, 0)
                self.open_tags[tag] = max(0, depth - 1) if match["close"] else depth + 1


@functools.lru_cache(maxsize=8)
def _command_line(word: str) -> re.Pattern[str]:
    """The pattern of a command line, built once per command word (it is on the webhook path)."""
    return re.compile(rf"^\s*/{re.escape(word)}(?=\s|$)(?P<rest>.*)$", re.IGNORECASE)


def _subcommand(rest: str) -> Command | None:
    """The reserved subcommand `rest` starts with, compared as shown (`ｓｔｏｐ` is `stop`)."""
    words = rest.split(maxsplit=1)
    if not words:
        return None
    first = unicodedata.normalize("NFKC", words[0][:32]).casefold()
    return SUBCOMMANDS.get(first.rstrip(".!?,:;"))


def parse_command(body: str, word: str) -> ParsedCommand | None:
    """The first `/word` command in a comment body, or None.

    A command is a line starting with `/word` (any case, leading whitespace allowed) followed by
    whitespace or the end of the line. A reserved subcommand (help, stop/cancel, retry, status)
    counts only as the first word on the command line itself, so that an instruction written on
    the following lines ("/honk" then "stop the crash on empty input") stays an instruction.
    """
    pattern = _command_line(word)
    raw = split_lines(body)
    lines = [strip_invisible(line) for line in raw]
    for index in _Reader().visible(lines):
        match = pattern.match(lines[index])
        if match is None:
            continue
        rest = match["rest"]
        subcommand = _subcommand(rest)
        if subcommand is not None:
            return ParsedCommand(subcommand, "", raw[index])
        instruction = "\n".join([rest, *lines[index + 1 :]]).strip()
        return ParsedCommand(Command.RUN, instruction, raw[index])
    return None
