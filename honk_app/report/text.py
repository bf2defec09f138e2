"""Pure: the helpers every renderer writes with: untrusted text made safe, numbers made short.

`inline`, `code`, `plain` and `fenced` are the only ways a word Honk did not choose reaches what
it publishes; all four go through `render.py` (see there what "safe" means). Shared by the
comment, pull request, check run and reply renderers and by the commit message.
"""

from __future__ import annotations

import re

from honk_app.report.render import (
    GITHUB,
    Site,
    code_span,
    defuse_closing,
    fence_block,
    markdown_line,
    plain_line,
    untrusted,
)
from honk_app.safety.secret_scan import redact

GITHUB_TEXT_LIMIT = 65_535  # comment bodies, pull request bodies, check run summary and text


def inline(text: str, limit: int = 300, site: Site = GITHUB) -> str:
    """Untrusted text as one inert line of markdown prose; its code spans stay code."""
    return markdown_line(untrusted(text, limit), site)


def code(text: str, limit: int = 200) -> str:
    """Untrusted text as an inline code span that its own backticks cannot break."""
    return code_span(defuse_closing(untrusted(text, limit)))


def plain(text: str, limit: int = 300, site: Site = GITHUB) -> str:
    """Untrusted text as one line of plain text: a title, a commit subject, an annotation."""
    return plain_line(untrusted(text, limit), site)


def fenced(text: str) -> str:
    """Verbatim output (redacted) in a fence that nothing inside can close."""
    return fence_block(redact(text))


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
