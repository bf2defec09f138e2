"""Pure: the one place where a word Honk did not choose becomes safe to publish on GitHub.

Text from a model, an issue, a comment, a file name, a branch or a test's output can try to make
Honk's own comment, pull request, commit or check run act for it. Rendered here, it cannot:

- no images, raw HTML, entities, autolinks or reference definitions (brackets, `<` and `&` are
  escaped, so `![](https://outside/?d=…)` shows as text and nothing is fetched by GitHub's proxy);
- no links to hosts other than the GitHub host Honk serves: those URLs become inert code (markdown)
  or lose their scheme (plain text), so they are neither clickable nor fetched;
- no @mentions of users or teams; an email address stays (a mailto link pings no one);
- no closing keywords: `fixes #42` becomes `fixes issue #42`, everywhere, code spans and test
  output included (GitHub has closed issues from keywords in code spans);
- no cross-references that leave a backlink on another repository (`owner/repo#N`, issue and pull
  request URLs of other repositories). A same-repository `#N` is kept: it links, and the timeline
  entry it leaves is one anyone who can comment there can leave anyway.

Honk's own `Fixes #N` is written by the pull request renderer outside this module.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from honk_app.safety.sanitize import clean_untrusted
from honk_app.safety.secret_scan import REDACTED, redact

GITHUB_URL = "https://github.com"


@dataclass(frozen=True)
class Site:
    """Where text is published: the GitHub host links may point to, and the run's repository.

    With no repository, every `owner/repo#N` and issue URL counts as another repository's.
    """

    github_url: str = GITHUB_URL
    repository: str = ""  # owner/repo

    @property
    def host(self) -> str:
        return urlsplit(self.github_url).netloc.lower()


GITHUB = Site()

# ---- closing keywords --------------------------------------------------------------------------

# Markup that renders as nothing between letters: GitHub reads `fi**x**es` or `` `fix` `#4` `` as
# the rendered text. Letters include what case folding maps onto them (long s, dotless i, ﬁ).
_GAP = r"[`*_~\\]*"
_LETTER = {"i": "[iIıİ]", "s": "[sSſ]"}


def _keyword(word: str) -> str:
    letters = [_LETTER.get(char, f"[{char}{char.upper()}]") for char in word]
    spelled = _GAP.join(letters)
    return f"(?:ﬁ{_GAP.join(letters[2:])}|{spelled})" if word.startswith("fi") else spelled


_KEYWORDS = (
    "closes",
    "closed",
    "close",
    "fixes",
    "fixed",
    "fix",
    "resolves",
    "resolved",
    "resolve",
)
_ALONE = r"(?![A-Za-z0-9])"
# What renders as nothing between a keyword and its reference: markup, and a link's end or start.
# Taken whole (possessive), and a link's target stops at a `](` (or, in `<…>`, at a `<`), where
# another keyword's link would open: no two keywords scan the same characters. (A target holding
# `](` outside `<…>` has an unbalanced `(`: it is no link, and shows.)
_NOTHING = r"(?:[\s:`*_~\\\[]|\]\((?:<[^\s<>]*+>|(?:[^\s)\]]|\](?!\())*+)\))*+"
_KEYWORD = re.compile(
    r"(?<![A-Za-z0-9])(?:" + "|".join(_keyword(word) for word in _KEYWORDS) + ")" + _ALONE
)
_KEYWORD_AND_GAP = [re.compile(_keyword(word) + _ALONE + _NOTHING) for word in _KEYWORDS]
# A reference that starts with a character no name holds ...
_REFERENCE = re.compile(r"(?i:https?://\S{1,300}?/(?:issues|pull|pulls|discussions)/\d)|#\d|GH-\d")
# ... or a name: `name#1` or `owner/name#1`, whose first word may begin before the gap ends (its
# last `_`s, `fix _/x#1`) or after it. What decides is where that word ends.
_NAME_END = re.compile(r"(?:/[\w.-]++)?#\d")
_WORD = re.compile(r"[\w.-]+")


class _References:
    """Where a reference follows a keyword's gap. Each word's end is looked at once, however many
    keywords share the word (`fix_fix_…_fix`), so a text costs time in proportion to its length."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._words: tuple[list[int], list[int]] | None = None
        self._named: dict[int, bool] = {}

    def after(self, gap_end: int) -> int | None:
        """Where `issue ` goes when a reference follows: the gap's end, or before its last `_`
        when that `_` begins the reference's name; None when no reference follows."""
        if _REFERENCE.match(self.text, gap_end):
            return gap_end
        end = self._word_end(gap_end)
        if end not in self._named:
            self._named[end] = _NAME_END.match(self.text, end) is not None
        if not self._named[end]:
            return None
        if end > gap_end:
            return gap_end
        return gap_end - 1 if self.text[gap_end - 1] == "_" else None

    def _word_end(self, pos: int) -> int:
        if self._words is None:
            spans = [word.span() for word in _WORD.finditer(self.text)]
            self._words = [a for a, _ in spans], [b for _, b in spans]
        starts, ends = self._words
        i = bisect_right(starts, pos) - 1
        return ends[i] if i >= 0 and ends[i] > pos else pos


def defuse_closing(text: str) -> str:
    """`fixes #42` reads `fixes issue #42`, which no closing-keyword parser takes for a command.

    A keyword counts when a reference follows it past what renders as nothing; the keywords are
    tried in `_KEYWORDS` order at each place, as one regular expression's alternatives would be.
    """
    references = _References(text)
    out: list[str] = []
    done = pos = 0
    while (found := _KEYWORD.search(text, pos)) is not None:
        gaps = (m.end() for k in _KEYWORD_AND_GAP if (m := k.match(text, found.start())))
        end = next((e for gap in gaps if (e := references.after(gap)) is not None), None)
        if end is None:
            pos = found.start() + 1
        else:
            out += [text[done:end], "issue "]
            done = pos = end
    return "".join([*out, text[done:]])


# ---- what may stay a link ----------------------------------------------------------------------

# A kept URL is written out raw, so it may hold no character that markdown could act on.
_SAFE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?(?:[/?#][\w\-.~/?#=%+,;:@]*)?", re.ASCII)
_OTHER_ISSUE = re.compile(r"/([^/]+)/([^/]+)/(?:issues|pull|pulls|discussions)(?:/|$)")


def allowed_url(url: str, site: Site = GITHUB) -> bool:
    """A URL on the GitHub host Honk serves that leaves no backlink on another repository."""
    if not _SAFE_URL.fullmatch(url):
        return False
    parts = urlsplit(url)
    if parts.netloc.lower() != site.host or parts.scheme != urlsplit(site.github_url).scheme:
        return False
    other = _OTHER_ISSUE.match(parts.path)
    return other is None or f"{other[1]}/{other[2]}".lower() == site.repository.lower()


def _same_repository(reference: str, site: Site) -> bool:
    name = reference.split("#", 1)[0]
    return bool(site.repository) and name.lower() == site.repository.lower()


# ---- tokens that need a decision ---------------------------------------------------------------

# GitHub finds mentions and references in the rendered text, after emphasis is gone, and its word
# boundary is ASCII: `_@alice_` and `é@alice` both ping alice, `_acme/x#1` and `日acme/x#1` link.
# So a reference may start after any `_` or non-ASCII letter of a word; trying each such start
# would rescan the rest of the word (quadratic). Instead a word is looked at once, from where it
# begins or from where the previous token ended inside it: the lookahead asks whether it (with one
# `/name` after it) ends in `#digits`; only then is the reference's start sought (_REF_SKIP, never
# past a `www.` the url branch takes), and _tokens leaves the skipped characters as text.
_WWW = r"(?<![A-Za-z0-9])www\."
_REF_SKIP = rf"(?:(?!{_WWW})[\w.-])*?(?!{_WWW})"
_REF = r"(?<![A-Za-z0-9/.-])[A-Za-z0-9][\w.-]*+(?:/[\w.-]++)?#\d+"


def _token_pattern(word_start: str) -> re.Pattern[str]:
    return re.compile(
        r"(?P<link>(?<!!)\[(?P<label>[^\[\]\n]{1,300})\]\((?P<target>https?://[^\s()<>]+)\))"
        r"|(?P<url>(?:https?|ftps?)://[^\s<>]*|(?<![A-Za-z0-9])www\.[^\s<>]*"
        r"|(?<![A-Za-z0-9])(?:javascript|data|vbscript|file):[^\s<>]*)"
        rf"|{word_start}(?=[\w.-]*+(?:/[\w.-]++)?#\d){_REF_SKIP}(?P<ref>{_REF})"
        r"|(?P<mention>(?<![A-Za-z0-9])@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9][\w.-]*)?)"
        r"|(?P<redacted>(?-i:" + re.escape(REDACTED) + "))",
        re.IGNORECASE,
    )


_TOKEN = _token_pattern(r"(?<![\w.-])")  # searched for: a reference from a word's start only
_TOKEN_HERE = _token_pattern("")  # matched where the previous token ended, maybe inside a word
_TRAILING = ".,:;!?*_~'\""


def _split_url(url: str) -> tuple[str, str]:
    """GitHub's autolinker leaves trailing punctuation and an unbalanced `)` out of the link."""
    end = len(url)
    while end and (
        url[end - 1] in _TRAILING
        or (url[end - 1] == ")" and url[:end].count(")") > url[:end].count("("))
    ):
        end -= 1
    return url[:end], url[end:]


def _scan(
    text: str, on_token: Callable[[re.Match[str]], str], on_text: Callable[[str], str]
) -> str:
    out, start = [], 0
    for match in _tokens(text):
        begins = match.start("ref") if match["ref"] else match.start()  # after _REF_SKIP
        out += [on_text(text[start:begins]), on_token(match)]
        start = match.end()
    return "".join([*out, on_text(text[start:])])


def _tokens(text: str) -> Iterator[re.Match[str]]:
    """The tokens, leftmost first: what `_TOKEN.finditer` would find if every position of a word
    were tried as a reference's start (the rule GitHub follows), in one pass over the text."""
    pos = 0
    while (match := _TOKEN_HERE.match(text, pos) or _TOKEN.search(text, pos)) is not None:
        yield match
        pos = match.end()


# ---- markdown ----------------------------------------------------------------------------------

_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)")
_ESCAPES = {"\\": "\\\\", "`": "\\`", "[": "\\[", "]": "\\]", "<": "&lt;", "&": "&amp;", "$": "\\$"}
_ESCAPE = re.compile("[" + re.escape("".join(_ESCAPES)) + "]")
# What would make a line Honk starts with untrusted text a heading, quote, list, table or rule.
_BLOCK_START = re.compile(r"^(?:[#>|]|[*+-](?=\s|$)|([-*_=])\1{2,}|=+\s*$)")
_ORDERED_START = re.compile(r"^(\d{1,9})(?=[.)])")


def code_span(text: str) -> str:
    """`text` as an inline code span that its own backticks cannot close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def markdown_line(text: str, site: Site = GITHUB) -> str:
    """One line of untrusted text as inert markdown prose; its own code spans stay code.

    The caller has cleaned and shortened it: nothing is cut after this, so no code span Honk
    adds here can lose its closing backticks.
    """
    text = defuse_closing(" ".join(text.split()))
    pieces, start = [], 0
    for span in _CODE_SPAN.finditer(text):
        pieces += [_prose(text[start : span.start()], site), span.group(0)]
        start = span.end()
    line = "".join([*pieces, _prose(text[start:], site)])
    line = _ORDERED_START.sub(r"\1\\", line, count=1)
    return "\\" + line if _BLOCK_START.match(line) else line


def _prose(text: str, site: Site, links: bool = True) -> str:
    def token(match: re.Match[str]) -> str:
        if match["link"]:
            if links and allowed_url(match["target"], site):
                return f"[{_prose(match['label'], site, links=False)}]({match['target']})"
            return _escape_then_url(match["link"], site)
        if match["url"]:
            url, rest = _split_url(match["url"])
            kept = url if allowed_url(url, site) else code_span(url)
            return kept + _escape(rest)
        if match["ref"]:
            ref = match["ref"]
            return _escape(ref) if _same_repository(ref, site) else code_span(ref)
        if match["mention"]:
            return code_span(match["mention"])
        return _escape(REDACTED)  # its brackets must not open a link or an image

    return _scan(text, token, _escape)


def _escape_then_url(link: str, site: Site) -> str:
    """A link that may not stay one: its brackets escaped, its target handled as a bare URL."""
    label, target = link[1:].split("](", 1)
    return f"\\[{_prose(label, site, links=False)}\\]({_prose(target, site, links=False)}"


def _escape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], text)


def fence_block(text: str, info: str = "text") -> str:
    """Verbatim output in a fence longer than any backtick run inside, so nothing closes it."""
    text = defuse_closing(text.rstrip())
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


# ---- plain text: commit messages, titles, annotations -----------------------------------------

_TRAILER = re.compile(r"^(\s*)([A-Za-z][A-Za-z0-9-]*-by|Honk-Run|Refs)(\s*:)", re.IGNORECASE)


def plain_line(text: str, site: Site = GITHUB) -> str:
    """One line of untrusted plain text (a commit subject, a title, an annotation).

    Plain text is read raw by GitHub: a mention loses its tie to the name (`@ alice`), another
    repository's `acme/x#3` reads `acme/x issue 3`, and a URL to another host loses its scheme and
    has its dots bracketed, so neither GitHub nor a terminal makes it a link.
    """
    text = defuse_closing(" ".join(text.split()))

    def token(match: re.Match[str]) -> str:
        if match["link"]:
            label, target = match["link"][1:].split("](", 1)
            return f"[{_scan(label, token, str)}]({_scan(target, token, str)}"
        if match["url"]:
            url, rest = _split_url(match["url"])
            if allowed_url(url, site) or not _LINKABLE.match(url):
                return url + rest
            return _defang(url) + rest
        if match["ref"]:
            ref = match["ref"]
            if _same_repository(ref, site):
                return ref
            name, number = ref.rsplit("#", 1)
            return f"{name} issue {number}"
        if match["mention"]:
            return "@ " + match["mention"][1:]
        return REDACTED

    return _scan(text, token, str)


def plain_lines(text: str, site: Site = GITHUB) -> str:
    """Untrusted plain text line by line; a line that looks like a git trailer reads
    `Co-authored-by (quoted): …`, which credits and signs off no one, wherever it stands."""
    lines = [plain_line(line, site) if line.strip() else "" for line in text.splitlines()]
    return "\n".join(_TRAILER.sub(r"\1\2 (quoted)\3", line) for line in lines)


_LINKABLE = re.compile(r"(?:https?|ftps?)://|www\.", re.IGNORECASE)


def _defang(url: str) -> str:
    rest = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url)
    host, sep, path = rest.partition("/")
    return host.replace(".", "[.]") + sep + path


# ---- whole texts -------------------------------------------------------------------------------


def untrusted(text: str, limit: int, *, one_line: bool = True) -> str:
    """Cleaned (hidden content and invisible characters gone), redacted, and cut to `limit`.

    Only a window a little longer than `limit` is read: no secret pattern is longer than the
    margin, and a private key cut short still matches (its pattern runs to the end of the text).
    """
    text = clean_untrusted(text[: limit + 512])
    if one_line:
        text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def last_pass(document: str, known_secrets: Iterable[str] = ()) -> str:
    """Redact, and defuse any closing keyword that Honk's words and an untrusted word formed
    together (`… fix` + ` #12`)."""
    return defuse_closing(redact(document, known_secrets))
