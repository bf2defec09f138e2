"""Pure: make untrusted issue, pull request and comment text safe to show a model or quote back.

What a reader on GitHub cannot see must not steer the agent: hidden HTML comments, invisible and
bidirectional Unicode, markdown that renders as nothing. Anything that looks like a credential is
redacted, so a token pasted into an issue never reaches a prompt, a log or a reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from honk_app.invisible_text import INVISIBLE as _INVISIBLE  # shared with the /honk grammar
from honk_app.safety.secret_scan import redact

# Control characters other than tab and newline (terminal escapes, backspaces, C1 controls).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# An HTML comment, or one left open at the end of the text (GitHub hides the rest).
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# A link reference definition that points nowhere, the usual markdown "comment":
# `[//]: # (hidden)`, `[comment]: <> "hidden"`, `[x]: #`.
_HIDDEN_REFERENCE = re.compile(
    r"^[ \t]{0,3}\[[^\]\n]*\]:[ \t]*(?:#|<>|<#>)(?:[ \t]+.*)?[ \t]*(?:\n|\Z)", re.MULTILINE
)
_MAX_QUOTED_LINE = 300


def clean_untrusted(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Remove hidden content and redact secrets from text written by someone else.

    Order matters: invisible characters go first, so they cannot split a comment marker or a
    token to slip it past the later steps.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub("", text)
    text = _HTML_COMMENT.sub("", text)
    text = _HIDDEN_REFERENCE.sub("", text)
    return redact(text, known_secrets)


def inline_code(text: str) -> str:
    """`text` as an inline code span: no markdown, mention, reference or HTML inside is live."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def quote_for_reply(line: str) -> str:
    """Quote user text in one of Honk's replies so that it can never act again.

    Every line is quoted with `> ` (quoted lines never count as commands), shown as inline code
    (an echoed `@team` pings nobody, an echoed `<!-- honk:run=… -->` is not a marker of Honk's)
    and long lines are shortened. Secrets are redacted.
    """
    quoted: list[str] = []
    for raw in clean_untrusted(line).split("\n"):
        text = raw.strip()
        if len(text) > _MAX_QUOTED_LINE:
            text = text[: _MAX_QUOTED_LINE - 1].rstrip() + "…"
        quoted.append(f"> {inline_code(text)}" if text else ">")
    return "\n".join(quoted)
