"""Pure: untrusted text made safe to show on GitHub, and numbers made short to read.

Text from people or the agent is redacted, HTML-escaped, its @mentions and closing keywords are
defused (so a summary cannot ping people or close issues), and it is cut to GitHub's limits.
Shared by the comment, pull request and check run renderers.
"""

from __future__ import annotations

import re

from honk_app.safety.secret_scan import redact

GITHUB_TEXT_LIMIT = 65_535  # comment bodies, pull request bodies, check run summary and text

_MENTION = re.compile(r"(?<![\w`/])@[A-Za-z0-9](?:[A-Za-z0-9-]*)(?:/[A-Za-z0-9_.-]+)?")
_CLOSING = re.compile(
    r"(?i)\b(close[sd]?|fix(?:e[sd])?|resolve[sd]?)(:?\s+)"
    r"((?:https?://\S+/issues/|[\w.-]+/[\w.-]+#|#|GH-)\d+)"
)


_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`).+?(?<!`)\1(?!`)")


def inline(text: str, limit: int = 300) -> str:
    """Untrusted text as one safe line of markdown prose; its code spans stay as they are."""
    text = shorten(" ".join(text.split()), limit)
    pieces, start = [], 0
    for span in _CODE_SPAN.finditer(text):
        pieces += [_defuse(text[start : span.start()]), span.group(0)]
        start = span.end()
    return "".join([*pieces, _defuse(text[start:])])


def _defuse(prose: str) -> str:
    """No HTML, no @mentions, no closing keywords: code spans render all three inert."""
    prose = prose.replace("<", "&lt;")
    prose = _CLOSING.sub(lambda m: f"{m.group(1)}{m.group(2)}`{m.group(3)}`", prose)
    return _MENTION.sub(lambda m: f"`{m.group(0)}`", prose)


def code(text: str, limit: int = 200) -> str:
    """Untrusted text as an inline code span that its own backticks cannot break."""
    text = shorten(" ".join(text.split()), limit)
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str) -> str:
    """A fenced code block whose fence is longer than any backtick run inside."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{redact(text).rstrip()}\n{fence}"


def folded(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def shorten(text: str, limit: int) -> str:
    """The start of `text`, redacted, in at most `limit` characters.

    Only a window a little longer than `limit` is scanned: no token pattern is longer than the
    margin, and a private key cut short still matches (its pattern runs to the end of the text).
    """
    text = redact(text[: limit + 512])
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def tail(text: str, limit: int) -> str:
    """The end of long output, redacted: test runners and tracebacks end with the cause.

    The window scanned reaches 16k characters before the cut, more than any private key block,
    so a key that starts before the cut is still found and redacted whole.
    """
    hidden = max(0, len(text) - limit - 16_384)
    text = redact(text[hidden:])
    if len(text) <= limit and not hidden:
        return text
    return f"… ({hidden + len(text) - limit:,} earlier characters not shown)\n" + text[-limit:]


def cut(text: str, limit: int = GITHUB_TEXT_LIMIT) -> str:
    """Fit GitHub's size limit, ending at a line break with a note saying so."""
    if len(text) <= limit:
        return text
    note = f"\n\n… (cut: {len(text) - limit:,}+ characters over GitHub's {limit:,} limit)"
    kept = text[: limit - len(note)]
    newline = kept.rfind("\n")
    return (kept[:newline] if newline > limit // 2 else kept) + note


def login(name: str | None) -> str:
    """A GitHub login as GitHub allows it (`[bot]` included), whatever the caller passed."""
    return re.sub(r"[^A-Za-z0-9\-\[\]]", "", name or "")[:60]


def link(url: str | None, label: str) -> str:
    """A markdown link for Honk's and GitHub's own URLs; anything odd becomes plain text."""
    if url and re.fullmatch(r"https?://[^\s()<>\[\]]+", url):
        return f"[{label}]({url})"
    return label


def duration(seconds: float) -> str:
    total = round(max(seconds, 0))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60:02d}s"
    return f"{total // 3600}h {total % 3600 // 60:02d}m"


def money(usd: float) -> str:
    return "<$0.01" if 0 < usd < 0.005 else f"${usd:,.2f}"


def tokens(count: int) -> str:
    if count < 1000:
        return str(count)
    return f"{count / 1000:,.1f}k" if count < 1_000_000 else f"{count / 1_000_000:,.2f}M"
