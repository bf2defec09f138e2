"""The renderer reads each word once: a comment-sized word of `a_`, `fix_` or `fix](` renders in
one pass, and finds the same tokens and closing keywords as the rules written as single regular
expressions (quadratic on such words), which this file keeps as the specification."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

import pytest

from honk_app.report import render
from honk_app.report.render import Site, defuse_closing, markdown_line, plain_lines
from honk_app.report.text import inline, plain

SITE = Site("https://github.com", "acme/shop")


# ---- the specification ---------------------------------------------------------------------------

# The rules as single regular expressions (how render.py wrote them before): correct, but a long
# word (`a_a_a…`, `fix_fix_…`, `fix](fix](…`) made them rescan the rest of the word from every
# place a token may start. render.py finds the same tokens looking at each word once.
SPEC_TOKEN = re.compile(
    r"(?P<link>(?<!!)\[(?P<label>[^\[\]\n]{1,300})\]\((?P<target>https?://[^\s()<>]+)\))"
    r"|(?P<url>(?:https?|ftps?)://[^\s<>]*|(?<![A-Za-z0-9])www\.[^\s<>]*"
    r"|(?<![A-Za-z0-9])(?:javascript|data|vbscript|file):[^\s<>]*)"
    r"|(?P<ref>(?<![A-Za-z0-9/.-])[A-Za-z0-9][\w.-]*(?:/[\w.-]+)?#\d+)"
    r"|(?P<mention>(?<![A-Za-z0-9])@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9][\w.-]*)?)"
    r"|(?P<redacted>(?-i:\[REDACTED\]))",
    re.IGNORECASE,
)
SPEC_CLOSING = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    + "|".join(render._keyword(word) for word in render._KEYWORDS)
    + r")(?![A-Za-z0-9])"
    # a link's target: as before, except that it holds no `](` outside `<…>` (no link does)
    + r"(?:[\s:`*_~\\\[]|\]\((?:<[^\s<>]*>|(?:[^\s)\]]|\](?!\())*)\))*"
    + r"(?=(?i:https?://\S{1,300}?/(?:issues|pull|pulls|discussions)/\d"
    + r"|[\w.-]+/[\w.-]+#\d|[\w.-]+#\d|#\d|GH-\d))"
)
KINDS = ("link", "url", "ref", "mention", "redacted")
PIECES = [*"aAw_/.-#1@[]( :é日ſKx<>)", "www.", "http://", "#12", "[REDACTED]", "fix", "](", "\\("]


def _found(matches: Iterable[re.Match[str]]) -> list[tuple[int, int, str]]:
    kinds = [(m, next(kind for kind in KINDS if m[kind])) for m in matches]
    return [(m.start(kind), m.end(), m[kind]) for m, kind in kinds]


def test_tokens_and_closing_keywords_are_found_as_the_slow_rules_find_them() -> None:
    rng = random.Random(18)
    for _ in range(20_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14)))
        assert _found(render._tokens(text)) == _found(SPEC_TOKEN.finditer(text)), text
        assert defuse_closing(text) == SPEC_CLOSING.sub(lambda m: m[0] + "issue ", text), text


@pytest.mark.parametrize(
    ("text", "markdown", "plain_text"),
    [
        ("a_b/c_d/e#1", "a_b/c_`d/e#1`", "a_b/c_d/e issue 1"),  # not after `/`, but after `_`
        ("x_www.acme#1", "`x_www.acme#1`", "x_www.acme issue 1"),
        ("/x_www.acme#1", "/x_`www.acme#1`", "/x_www[.]acme#1"),  # a `www.` comes first
        ("@bob_acme/x#1", "`@bob`_`acme/x#1`", "@ bob_acme/x issue 1"),
        ("acme/x#1_acme/y#2", "`acme/x#1`_`acme/y#2`", "acme/x issue 1_acme/y issue 2"),
        ("fix _/x#1", "fix issue _/x#1", "fix issue _/x#1"),
    ],
)
def test_a_reference_inside_a_word_is_found_where_github_finds_it(
    text: str, markdown: str, plain_text: str
) -> None:
    assert inline(text, site=SITE) == markdown
    assert plain(text, site=SITE) == plain_text


@pytest.mark.parametrize(
    "unit", ["a_", "é", "fix_", "fix](", "fix](a](", "fix.", "@a_", "a_#1", "x_/", "fix _/"]
)
def test_a_long_word_is_rendered_in_one_pass(unit: str) -> None:
    """65,535 characters (a comment's size) of one repeated piece: before, `a_` took 45 s and
    `fix_` 60 s. Here each renders at once (no clock is read: a slow pass would stall the run)."""
    text = (unit * 65_535)[:65_535]
    assert markdown_line(text)
    assert plain_lines(text)
    assert defuse_closing(text)
