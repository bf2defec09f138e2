"""Pure: find and redact things that look like credentials.

One list of patterns serves three jobs: redacting text Honk shows or stores (comments, check runs,
the audit trail, logs), cleaning untrusted prompt input, and the policy that refuses to push a diff
that adds a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

REDACTED = "[REDACTED]"


@dataclass(frozen=True)
class SecretPattern:
    name: str
    regex: re.Pattern[str]


PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "private key block",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?"
            r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"
        ),
    ),
    SecretPattern("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255})\b")),
    SecretPattern("GitHub fine-grained token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b")),
    SecretPattern("Anthropic API key", re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}")),
    SecretPattern("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    SecretPattern(
        "AWS secret access key",
        re.compile(r"(?i)aws_?secret_?access_?key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}\b"),
    ),
    SecretPattern("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    SecretPattern(
        "Slack webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}")
    ),
    SecretPattern("Honk proxy token", re.compile(r"\bhonk-proxy-[A-Za-z0-9_-]{20,}")),
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
    for value in sorted({s for s in known_secrets if s and len(s) >= 8}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    for pattern in PATTERNS:
        text = pattern.regex.sub(REDACTED, text)
    return text
