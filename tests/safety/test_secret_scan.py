"""Redaction of known values, escaped text, PEM lines and whole stored values (pure, no fakes)."""

from __future__ import annotations

import logging
import subprocess

import pytest

from honk_app.cli import redacting_records
from honk_app.runs.runtime import RedactingSerializer
from honk_app.safety.secret_scan import REDACTED, redact, redact_value, secret_parts

TOKEN = "ghs_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
PROXY = "honk-proxy-" + "Zx9_Yw8-Vu7Ts6Rq5Po4Nm3Lk2"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAuTUgYsD/+mauC7Jg\nLZZZ6jwpOMH7QKYi/YDNy65v\n"
    "-----END RSA PRIVATE KEY-----\n"
)


@pytest.mark.parametrize(
    ("text", "known"),
    [
        (f'as JSON: "line\\n{TOKEN}\\n"', []),  # an escaped newline is no word boundary
        (f"tab\\t{PROXY}", []),
        (f"glued_{TOKEN}", [TOKEN]),  # no pattern sees it; the known value does
        ("tail: LZZZ6jwpOMH7QKYi/YDNy65v", secret_parts([PEM])),  # a PEM cut to its last lines
    ],
)
def test_secrets_are_redacted_wherever_they_stand(text: str, known: list[str]) -> None:
    clean = redact(text, known)
    assert REDACTED in clean
    for secret in (TOKEN, PROXY, "LZZZ6jwpOMH7QKYi/YDNy65v"):
        assert secret not in clean


def test_secret_parts_are_the_values_and_their_long_lines() -> None:
    assert secret_parts(["short", PEM, "", PEM]) == [
        "short",
        PEM,
        "MIIEowIBAAKCAQEAuTUgYsD/+mauC7Jg",
        "LZZZ6jwpOMH7QKYi/YDNy65v",
    ]


def test_a_stored_value_is_redacted_all_through() -> None:
    error = subprocess.CalledProcessError(1, ["git", "push", TOKEN], output=f"out {TOKEN}")
    value = {"summary": f"key {PROXY}", "steps": [(TOKEN, 3)], "error": error, TOKEN: None}
    clean = redact_value(value, [])
    assert TOKEN not in repr(clean) and PROXY not in repr(clean)
    assert clean["steps"][0][1] == 3
    assert isinstance(clean["error"], subprocess.CalledProcessError)
    assert clean["error"].output == f"out {REDACTED}"
    assert TOKEN in repr(value)  # the original is left as it was


def test_dbos_stores_the_redacted_value_and_reads_it_back() -> None:
    serializer = RedactingSerializer(lambda: ["webhook-secret-123"])
    stored = serializer.serialize({"out": "webhook-secret-123 and " + TOKEN, "n": 2})
    assert serializer.deserialize(stored) == {"out": f"{REDACTED} and {REDACTED}", "n": 2}


def test_log_records_are_redacted_message_arguments_and_traceback() -> None:
    make = redacting_records(logging.LogRecord, lambda: ["webhook-secret-123"])
    try:
        raise RuntimeError(f"push failed with {TOKEN}")
    except RuntimeError as exc:
        info = (type(exc), exc, exc.__traceback__)
    record = make(
        "honk", logging.ERROR, __file__, 1, "secret %s, %s", ("webhook-secret-123", PROXY), info
    )
    text = logging.Formatter().format(record)
    assert "webhook-secret-123" not in text and TOKEN not in text and PROXY not in text
    assert "secret [REDACTED], [REDACTED]" in text and "RuntimeError" in text
