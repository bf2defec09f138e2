"""What the Anthropic proxy decides without doing any I/O.

Which requests it forwards, how it swaps credentials and trims headers in both directions, how it
reads a run's usage out of JSON replies and server-sent event streams, and the meter that usage is
added to. Kept apart from the server in `proxy.py` so each decision can be tested on plain values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from honk_app.models import Usage

FORWARDED_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
METERED_PATH = "/v1/messages"
# Hop-by-hop headers (RFC 9110 §7.6.1) and what the proxy itself decides: credentials, framing,
# compression (the proxy asks for identity so it can read usage from the bytes it passes on).
_DROPPED_REQUEST = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
        "x-api-key",
        "authorization",
        "cookie",
    }
)
_DROPPED_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "set-cookie",
    }
)


@dataclass(frozen=True)
class ProxyGrant:
    """What a run's agent needs to reach the API through Honk (never the real key)."""

    run_id: str
    token: str
    base_url: str  # http://127.0.0.1:PORT (no /v1)
    unix_socket: Path  # the same service, for a sandbox without a network


@dataclass
class Meter:
    """A run's spend as the proxy saw it: the real measure, whatever the agent reports."""

    budget_usd: float
    spent_usd: float = 0.0
    usage: Usage = field(default_factory=Usage)
    requests: int = 0  # metered /v1/messages requests that were forwarded
    refused: int = 0  # requests refused because the budget was spent

    @property
    def exhausted(self) -> bool:
        return self.spent_usd >= self.budget_usd

    def snapshot(self) -> Meter:
        return replace(self, usage=replace(self.usage))


def error_body(type_: str, message: str) -> dict[str, Any]:
    """An error in the Anthropic API's shape, so clients show `message` as they would the API's."""
    return {"type": "error", "error": {"type": type_, "message": message}}


def budget_message(budget_usd: float) -> str:
    return f"Honk's budget of ${budget_usd:.2f} for this run is spent; the run must stop here."


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The token a client presents, as `x-api-key` or `Authorization: Bearer`."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def is_forwarded(method: str, path: str) -> bool:
    return method.upper() == "POST" and path in FORWARDED_PATHS


def upstream_headers(headers: Iterable[tuple[str, str]], api_key: str) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop ones and its credentials, plus the real key."""
    kept = [(k, v) for k, v in headers if k.lower() not in _DROPPED_REQUEST]
    return [*kept, ("x-api-key", api_key), ("accept-encoding", "identity")]


def downstream_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {k: v for k, v in headers if k.lower() not in _DROPPED_RESPONSE}


def usage_from(raw: Mapping[str, Any] | None) -> Usage:
    raw = raw or {}

    def count(name: str) -> int:
        value = raw.get(name)
        return int(value) if isinstance(value, int | float) else 0

    return Usage(
        input_tokens=count("input_tokens"),
        output_tokens=count("output_tokens"),
        cache_creation_input_tokens=count("cache_creation_input_tokens"),
        cache_read_input_tokens=count("cache_read_input_tokens"),
    )


def message_usage(body: bytes) -> tuple[str, Usage] | None:
    """Model and usage of a non-streamed Messages API reply, or None if it is not a message."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "message":
        return None
    return str(message.get("model", "")), usage_from(message.get("usage"))


class StreamUsage:
    """Reads usage out of a server-sent event stream as it passes, chunk by chunk.

    `message_start` carries the model and the input side; each `message_delta` carries cumulative
    counts (output tokens, and on newer API versions the input side again), which replace earlier
    values rather than add to them.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._fields: dict[str, int] = {}
        self.model = ""
        self.seen = False

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self._line(line.rstrip(b"\r"))

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        try:
            event = json.loads(line[5:])
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if event.get("type") == "message_start":
            message = event.get("message") or {}
            self.model = str(message.get("model", ""))
            self._merge(message.get("usage"))
        elif event.get("type") == "message_delta":
            self._merge(event.get("usage"))

    def _merge(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            return
        self.seen = True
        for name, value in raw.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self._fields[name] = int(value)

    @property
    def usage(self) -> Usage:
        return usage_from(self._fields)
