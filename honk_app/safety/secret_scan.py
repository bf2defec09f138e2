"""Pure: find and redact things that look like credentials.

One list of patterns serves three jobs: redacting text Honk shows or stores (comments, check runs,
the audit trail, logs), cleaning untrusted prompt input, and the policy that refuses to push a diff
that adds a secret.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

REDACTED = "[REDACTED]"


@dataclass(frozen=True)
class SecretPattern:
    name: str
    regex: re.Pattern[str]


# A word boundary, or an escaped newline or tab just before: logs and JSON show `\nghs_…`.
_START = r"(?:\b|(?<=\\[nrt]))"

PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "private key block",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?"
            r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"
        ),
    ),
    SecretPattern("GitHub token", re.compile(_START + r"(?:gh[pousr]_[A-Za-z0-9]{36,255})\b")),
    SecretPattern(
        "GitHub fine-grained token", re.compile(_START + r"github_pat_[A-Za-z0-9_]{60,255}\b")
    ),
    SecretPattern("Anthropic API key", re.compile(_START + r"sk-ant-[A-Za-z0-9_\-]{20,}")),
    SecretPattern("AWS access key id", re.compile(_START + r"(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    SecretPattern(
        "AWS secret access key",
        re.compile(r"(?i)aws_?secret_?access_?key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}\b"),
    ),
    SecretPattern("Slack token", re.compile(_START + r"xox[abposr]-[A-Za-z0-9-]{10,}")),
    SecretPattern(
        "Slack webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}")
    ),
    SecretPattern("Honk proxy token", re.compile(_START + r"honk-proxy-[A-Za-z0-9_-]{20,}")),
)


@dataclass(frozen=True)
class SecretFinding:
    kind: str
    start: int
    end: int
    preview: str  # redacted: the first four characters and the length, never the secret


def _preview(secret: str) -> str:
    return f"{secret[:4]}… ({len(secret)} chars)"


def find_secrets(text: str) -> list[SecretFinding]:
    """Every match of a known credential pattern, in order of position."""
    found = [
        SecretFinding(p.name, m.start(), m.end(), _preview(m.group(0)))
        for p in PATTERNS
        for m in p.regex.finditer(text)
    ]
    return sorted(found, key=lambda f: f.start)


def redact(text: str, known_secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and anything that looks like a credential with [REDACTED].

    `known_secrets` are the exact values Honk holds (webhook secret, tokens, API keys); values of
    fewer than 8 characters are ignored so that redaction cannot mangle ordinary words.
    """
    return _redact_known(text, _longest_first(known_secrets))


def _longest_first(known_secrets: Iterable[str]) -> list[str]:
    """The values worth replacing, longest first (so a secret containing another goes whole)."""
    return sorted({s for s in known_secrets if s and len(s) >= 8}, key=len, reverse=True)


def _redact_known(text: str, ordered: list[str]) -> str:
    for value in ordered:
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern in PATTERNS:
        text = pattern.regex.sub(REDACTED, text)
    return text


MIN_PART_CHARS = 16


def secret_parts(values: Iterable[str]) -> list[str]:
    """Each value, and each long line of a multi-line one, without duplicates.

    A PEM key is shown cut to its last lines as often as whole (an output tail, a log line), and
    its body lines carry no marker a pattern could find; so each line is a known secret too.
    """
    found: dict[str, None] = {}
    for value in values:
        if not value:
            continue
        found[value] = None
        for line in value.splitlines():
            line = line.strip()
            if len(line) >= MIN_PART_CHARS and not line.startswith("-----"):
                found[line] = None
    return list(found)


def redact_value(value: Any, known_secrets: Iterable[str] = ()) -> Any:
    """`value` with every string inside it redacted: containers rebuilt, exceptions copied with
    redacted arguments and attributes; anything else as it is.

    What a durable engine stores (workflow inputs, step results, errors) is made of these, so
    redacting before it is written keeps secrets out of the database whatever a step returns.
    """
    return _redact_value(value, _longest_first(known_secrets))  # ordered once, not per string


def _redact_value(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _redact_known(value, secrets)
    if isinstance(value, dict):
        return {_redact_value(k, secrets): _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, secrets) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_redact_value(v, secrets) for v in value)
    if isinstance(value, set | frozenset):
        return type(value)(_redact_value(v, secrets) for v in value)
    if isinstance(value, BaseException):
        return _redact_exception(value, secrets)
    return value


def _redact_exception(exc: BaseException, secrets: list[str]) -> BaseException:
    try:
        clean = copy.copy(exc)
        clean.args = tuple(_redact_value(a, secrets) for a in exc.args)
        for name, attribute in vars(exc).items():
            setattr(clean, name, _redact_value(attribute, secrets))
    except Exception:  # an exception that cannot be copied is kept as one redacted sentence
        return RuntimeError(_redact_known(f"{type(exc).__name__}: {exc}", secrets))
    return clean
