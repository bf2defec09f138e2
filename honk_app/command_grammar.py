"""Pure: the `/honk` command grammar, as GitHub renders a comment.

A command is a line that GitHub shows as a line of a top-level paragraph: not in a fenced or
indented code block, a `>` quote (nor a line that markdown folds into the quote above it), a list
item, a footnote, a table, a heading, an HTML block (which runs to the next blank line) or an HTML
comment, not inside an inline code span, HTML tag or link title, and not after an HTML element
that shows code or hides its content (`<pre>`, `<code>`, `<details>`, …) until it is closed.
Nobody reads those as a request, and they are where a maintainer pastes someone else's words, so
nothing there may ask Honk for anything with the maintainer's permission.

The blocks are read as GitHub reads them, by a CommonMark parser (markdown-it-py, with GFM's
tables and footnotes) given the comment as written: characters that render as nothing still
decide blocks (a zero-width space before ``` makes text, not a fence; a line holding one is not
blank and so continues a quote).

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

from markdown_it import MarkdownIt
from markdown_it.parser_inline import RuleFuncInlineType
from markdown_it.rules_block import StateBlock, html_block, reference
from markdown_it.rules_block.html_block import HTML_SEQUENCES
from markdown_it.rules_inline import StateInline, escape, newline
from markdown_it.token import Token

from honk_app.invisible_text import strip_invisible
from honk_app.models import Command

SUBCOMMANDS: Mapping[str, Command] = {
    "help": Command.HELP,
    "stop": Command.STOP,
    "cancel": Command.STOP,
    "retry": Command.RETRY,
    "status": Command.STATUS,
}

# HTML comment markers and the tags whose content is code, raw text or folded away.
_MARKUP = re.compile(
    r"<!--|-->|<(?P<close>/?)(?P<tag>pre|code|details|textarea|script|style)(?=[\s/>]|$)",
    re.IGNORECASE,
)
_BREAKS = frozenset({"softbreak", "hardbreak"})
_CODE_INDENT = 4  # columns of indentation that make an indented code block
_LINE_START = "honk_line_start"  # a line break token's meta key: where its next line's text starts
_FOOTNOTE = re.compile(r"\[\^[^\] \t]+\]:")
# How an HTML block starts, with CommonMark's (ASCII) whitespace where markdown-it takes Unicode's.
_HTML_BLOCK_STARTS = [
    re.compile(start.pattern, (start.flags & ~re.UNICODE) | re.ASCII)
    for start, _, _ in HTML_SEQUENCES
]
# A paragraph that starts like a link reference definition markdown-it did not take as one:
# GitHub may (its rules differ at the edges), and then a title opened after it hides lines.
_DEFINITION = re.compile(r"\[(?:\\.|[^\\\[\]])*\]:", re.DOTALL)
_TITLE_OPENER = re.compile("[\"'(]")


@dataclass(frozen=True)
class ParsedCommand:
    """A `/honk` line found in a comment."""

    command: Command
    instruction: str  # for RUN: the rest of the line and every line after it, stripped
    line: str  # the triggering line, verbatim


def split_lines(body: str) -> list[str]:
    """A comment's lines as GitHub sees them: `\\r\\n`, `\\r` and `\\n` end a line, nothing else."""
    return body.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _marking_line_starts(rule: RuleFuncInlineType) -> RuleFuncInlineType:
    """`rule`, which may end a line in running text, noting where the next line's text starts.

    Only a break read as text gets the note: a line ending inside a code span, an inline HTML tag
    or comment, a link's destination or title or an image's description is no line start a reader
    sees, and the parser consumes it without calling these rules.
    """

    def marked(state: StateInline, silent: bool) -> bool:
        count = len(state.tokens)
        if not rule(state, silent):
            return False
        if not silent and len(state.tokens) > count and state.tokens[-1].type in _BREAKS:
            state.tokens[-1].meta[_LINE_START] = state.pos
        return True

    return marked


def _top_level_reference(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """A link reference definition, read only outside quotes and list items.

    GitHub reads a definition as the start of a paragraph and takes it out once the paragraph
    ends, so a line after it in a quote or a list item still continues that paragraph lazily
    (`> [a]: /u` then `/honk`: both lines are quoted); markdown-it ends the definition at once.
    Inside a container the definition is left as paragraph text, which keeps GitHub's blocks.
    """
    return state.level == 0 and reference(state, start, end, silent)


def _footnote(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """A GFM footnote definition, `[^label]: text`, which GitHub shows at the foot of the comment
    or, if nothing refers to it, nowhere: a container, like a list item, of the blocks that start
    after the colon and go on over the lines indented under it (and lazy paragraph lines).
    """
    if state.is_code_block(start):
        return False
    begin = state.bMarks[start] + state.tShift[start]
    label = _FOOTNOTE.match(state.src, begin, state.eMarks[start])
    if label is None:
        return False
    if silent:
        return True
    # GitHub reads the blocks from after the colon and the spaces and tabs that follow it.
    pos = label.end()
    column = state.bsCount[start] + state.sCount[start] + pos - begin
    while pos < state.eMarks[start] and state.src[pos] in " \t":
        column += 4 - column % 4 if state.src[pos] == "\t" else 1
        pos += 1
    saved = (state.bMarks[start], state.tShift[start], state.sCount[start], state.bsCount[start])
    parent = state.parentType
    state.blkIndent += _CODE_INDENT
    state.bMarks[start], state.tShift[start] = pos, 0
    state.sCount[start] = state.blkIndent
    state.bsCount[start] = column - state.blkIndent  # tabs still reach the next multiple of four
    state.parentType = "footnote"
    state.push("footnote_open", "", 1)
    state.md.block.tokenize(state, start, end)
    state.push("footnote_close", "", -1)
    state.blkIndent -= _CODE_INDENT
    state.bMarks[start], state.tShift[start], state.sCount[start], state.bsCount[start] = saved
    state.parentType = parent
    return True


def _html_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """An HTML block, started only where GitHub starts one.

    markdown-it takes any Unicode space for the whitespace after a tag (`<b>` and a no-break
    space opens a block); GitHub takes only ASCII's, and reads such a line as text, which a quote
    or a list item above it folds in.
    """
    text = state.src[state.bMarks[start] + state.tShift[start] : state.eMarks[start]]
    if not any(strict.search(text) for strict in _HTML_BLOCK_STARTS):
        return False
    return html_block(state, start, end, silent)


@functools.cache
def _markdown() -> MarkdownIt:
    """GitHub's block grammar: CommonMark with HTML, and GFM's tables, strikethrough, footnotes."""
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    md.block.ruler.at("reference", _top_level_reference)
    md.block.ruler.at("html_block", _html_block, {"alt": ["paragraph", "reference", "blockquote"]})
    md.block.ruler.before("reference", "footnote", _footnote, {"alt": ["paragraph", "reference"]})
    md.inline.ruler.at("newline", _marking_line_starts(newline))
    md.inline.ruler.at("escape", _marking_line_starts(escape))
    return md


@dataclass
class _Markup:
    """The raw HTML read so far: is an HTML comment or an element that hides its content open?"""

    in_comment: bool = False
    open_tags: dict[str, int] = field(default_factory=dict)

    @property
    def hiding(self) -> bool:
        return self.in_comment or any(self.open_tags.values())

    def read(self, html: str) -> None:
        """Follow the comments and hiding elements `html` opens or closes."""
        for match in _MARKUP.finditer(html):
            marker = match[0]
            if self.in_comment:
                self.in_comment = marker != "-->"
            elif marker == "<!--":
                self.in_comment = True
            elif match["tag"]:
                tag = match["tag"].lower()
                depth = self.open_tags.get(tag, 0)
                self.open_tags[tag] = max(0, depth - 1) if match["close"] else depth + 1


def _visible(lines: list[str]) -> Iterator[int]:
    """Indexes of the lines that start, as GitHub shows them, a line of a top-level paragraph.

    Raw HTML anywhere (HTML blocks, and tags in any text) is followed in document order: an
    unclosed HTML comment or hiding element hides everything after it, as GitHub renders it.
    """
    markup = _Markup()
    previous: Token | None = None
    for token in _markdown().parse("\n".join(lines)):
        if token.type == "html_block":
            markup.read(token.content)
        elif token.type == "inline":
            top = previous is not None and previous.type == "paragraph_open" and previous.level == 0
            if top and token.map is not None:
                start, end = token.map
                shown = start == 0 or not _indented_quote_marker(lines[start - 1])
                yield from _paragraph_lines(token, lines[start:end], markup, shown)
            else:
                for child in token.children or ():
                    if child.type == "html_inline":
                        markup.read(child.content)
        previous = token


def _indented_quote_marker(line: str) -> bool:
    """A `>` after four columns of indentation, which markdown-it alone reads as a quote marker.

    On GitHub `> a`, `    >`, `/honk` is one quoted paragraph (the indented `>` is text folded
    into it); markdown-it reads an empty quote line there, ends the quote and starts a paragraph.
    A paragraph right after such a line is therefore not read at all.
    """
    stripped = line.lstrip(" \t")
    return stripped.startswith(">") and _indent(line) >= _CODE_INDENT


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


def _paragraph_lines(
    token: Token, written: list[str], markup: _Markup, shown: bool
) -> Iterator[int]:
    """Where in `written`, a top-level paragraph's lines, a line starts with text a reader sees
    (none unless `shown`; its HTML is followed all the same).

    The paragraph's text is its lines, trimmed: the first line holding its first character is the
    first line of text (the trimmed characters are whitespace, which that character is not).
    """
    assert token.map is not None
    text = token.content
    joined = "\n".join(written)
    first = token.map[0] + (joined.count("\n", 0, joined.find(text[0])) if text else 0)
    last = len(written)  # the paragraph's lines of text that may be read, counted from `first`
    definition = _DEFINITION.match(text)
    title = definition and _TITLE_OPENER.search(text, definition.end())
    if title:
        last = text.count("\n", 0, title.start())
    line, counted = 0, 0  # the line of text we are at, and the characters of `text` counted
    if shown and not markup.hiding:
        yield first
    for child in token.children or ():
        if child.type == "html_inline":
            markup.read(child.content)
        elif child.type in _BREAKS and _LINE_START in child.meta:
            start: int = child.meta[_LINE_START]
            line += text.count("\n", counted, start)
            counted = start
            if shown and line <= last and not markup.hiding:
                yield first + line


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
    # markdown-it reads U+0000 as U+FFFD (CommonMark's rule): one character for one, lines kept.
    written = [line.replace("\0", "\ufffd") for line in raw]
    lines = [strip_invisible(line) for line in raw]
    if not any(pattern.match(line) for line in lines):
        return None  # most comments: no line to place, so no markdown to read
    for index in _visible(written):
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
