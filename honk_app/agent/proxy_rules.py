"""What the Anthropic proxy decides without doing any I/O.

Which requests it forwards, which tools and beta flags they may use, how it swaps credentials and
trims headers in both directions, and how it reads a run's usage out of JSON replies and
server-sent event streams (the money itself is `ledger.py`). Kept apart from the server in
`proxy.py` so each decision can be tested on plain values.

Tools: client tools (custom ones with an `input_schema`, and the Anthropic-defined bash, text
editor and memory tools, which the agent runs itself, in its sandbox) pass. A tool that runs on
Anthropic's servers would reach the network a sandbox does not have, and may cost a fee per use, so
web search and web fetch pass only when the run's grant allows the web (`allow_web`), with
`max_uses` capped so the ledger can reserve their worst case; every other typed tool, `mcp_servers`
and `container` are refused.

Beta flags: the allow-list holds feature names, and a flag passes if its name is on it, whatever its
date, so a Claude Code update that moves a harmless feature to a newer version keeps working. A flag
off the list is dropped rather than refused: refusing would break every run each time Claude Code
adds a flag, while without its flag the API itself refuses a body that needs the feature. Dropped
on purpose: `context-1m` (prompts past 200k tokens cost more than `pricing.py` knows),
`extended-cache-ttl` (one-hour cache writes cost twice the input price), and everything reaching
files, MCP servers, code execution or the web (the last two only with `allow_web`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from honk_app.agent.ledger import Meter as Meter
from honk_app.agent.ledger import RequestCost
from honk_app.agent.proxy_content import content_images
from honk_app.models import Usage

FORWARDED_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
METERED_PATH = "/v1/messages"
# Anthropic-defined tools the client runs itself (bash_20250124, text_editor_20250728, ...)
CLIENT_TOOL = re.compile(r"^(?:bash|text_editor|memory)_\d{8}$")
WEB_TOOL = re.compile(r"^(web_search|web_fetch)_\d{8}$")
MAX_WEB_USES = 10  # per request, whatever the client asks; the ledger reserves this many
MAX_FETCH_TOKENS = 20_000  # per fetched page
REFUSED_KEYS = ("mcp_servers", "container")
# feature names (a flag is NAME-YYYY-MM-DD or NAME-YYYYMMDD): what Claude Code sends, and more
ALLOWED_BETAS = frozenset(
    {
        "claude-code",
        "interleaved-thinking",
        "context-management",
        "fine-grained-tool-streaming",
        "token-efficient-tools",
        "prompt-caching",
        "token-counting",
        "thinking-token-count",
        "thinking-display-updates",
        "redact-thinking",
        "effort",
        "structured-outputs",
        "output-128k",
    }
)
WEB_BETAS = frozenset({"web-search", "web-fetch"})
_BETA = re.compile(r"^(?P<name>[a-z0-9]+(?:-[a-z0-9]+)*?)-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
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


def error_body(type_: str, message: str) -> dict[str, Any]:
    """An error in the Anthropic API's shape, so clients show `message` as they would the API's."""
    return {"type": "error", "error": {"type": type_, "message": message}}


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


def upstream_headers(
    headers: Iterable[tuple[str, str]], api_key: str, *, allow_web: bool = False
) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop ones, its credentials and beta flags off the
    allow-list, plus the real key."""
    kept: list[tuple[str, str]] = []
    flags: list[str] = []
    for name, value in headers:
        if name.lower() == "anthropic-beta":
            flags += [f for f in (f.strip() for f in value.split(",")) if f]
        elif name.lower() not in _DROPPED_REQUEST:
            kept.append((name, value))
    passed, _ = filter_betas(flags, allow_web=allow_web)
    if passed:
        kept.append(("anthropic-beta", ",".join(passed)))
    return [*kept, ("x-api-key", api_key), ("accept-encoding", "identity")]


def filter_betas(flags: Iterable[str], *, allow_web: bool) -> tuple[list[str], list[str]]:
    """The flags that pass and those dropped (see the module docstring)."""
    allowed = ALLOWED_BETAS | WEB_BETAS if allow_web else ALLOWED_BETAS
    passed: list[str] = []
    dropped: list[str] = []
    for flag in flags:
        match = _BETA.match(flag.strip().lower())
        ok = match is not None and match.group("name") in allowed
        (passed if ok else dropped).append(flag.strip())
    return list(dict.fromkeys(passed)), dropped


@dataclass(frozen=True)
class Inspected:
    """A request the proxy will forward: the bytes to send and what bounds its cost."""

    body: bytes  # the client's own bytes, unless a server tool's limits had to be added
    cost: RequestCost


def _short(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _limited(tool: dict[str, Any], key: str, cap: int) -> tuple[dict[str, Any], int]:
    value = tool.get(key)
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= cap
    limit = value if ok and isinstance(value, int) else cap
    return (tool if ok else {**tool, key: cap}), limit


def _tools(raw: Any, *, allow_web: bool) -> tuple[list[Any], int, int, int] | str:
    """The tools with server tools' limits enforced and the worst-case uses, or a refusal."""
    if raw is None:
        return [], 0, 0, 0
    if not isinstance(raw, list):
        return "Honk's proxy refused the request: `tools` must be a list."
    tools: list[Any] = []
    searches = fetches = fetch_tokens = 0
    for tool in raw:
        if not isinstance(tool, dict):
            return "Honk's proxy refused the request: every tool must be an object."
        kind = tool.get("type")
        if kind is None or kind == "custom" or (isinstance(kind, str) and CLIENT_TOOL.match(kind)):
            tools.append(tool)
            continue
        web = WEB_TOOL.match(kind) if isinstance(kind, str) else None
        if web is None or not allow_web:
            why = "the web is off for this repository" if web else "it runs on Anthropic's servers"
            return f"Honk's proxy refused the tool type {_short(kind)}: {why}."
        tool, uses = _limited(tool, "max_uses", MAX_WEB_USES)
        if web.group(1) == "web_search":
            searches += uses
        else:
            tool, tokens = _limited(tool, "max_content_tokens", MAX_FETCH_TOKENS)
            fetches, fetch_tokens = fetches + uses, max(fetch_tokens, tokens)
        tools.append(tool)
    return tools, searches, fetches, fetch_tokens


def inspect_request(body: bytes, *, allow_web: bool, metered: bool) -> Inspected | str:
    """The request as the proxy forwards it, or the sentence that refuses it."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        request = None
    if not isinstance(request, dict):
        return "Honk's proxy refused the request: its body is not a JSON object."
    for key in REFUSED_KEYS:
        if request.get(key):
            return f"Honk's proxy refused the request: `{key}` is not allowed for Honk's runs."
    model, max_tokens = request.get("model"), request.get("max_tokens")
    if not isinstance(model, str) or not model:
        return "Honk's proxy refused the request: it names no model."
    valid_max = isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0
    if metered and not valid_max:
        return "Honk's proxy refused the request: max_tokens must be a positive whole number."
    found = _tools(request.get("tools"), allow_web=allow_web)
    if isinstance(found, str):
        return found
    tools, searches, fetches, fetch_tokens = found
    images = content_images(request)
    if isinstance(images, str):
        return images
    if tools != (request.get("tools") or []):
        body = json.dumps({**request, "tools": tools}, separators=(",", ":")).encode()
    cost = RequestCost(
        model=model,
        max_tokens=max_tokens if valid_max and isinstance(max_tokens, int) else 0,
        body_bytes=len(body),
        web_searches=searches,
        web_fetches=fetches,
        fetch_tokens=fetch_tokens,
        images=images,
    )
    return Inspected(body, cost)


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


def web_searches_from(raw: Mapping[str, Any] | None) -> int:
    """`usage.server_tool_use.web_search_requests`: the searches a reply is billed for."""
    tools = (raw or {}).get("server_tool_use")
    value = tools.get("web_search_requests") if isinstance(tools, dict) else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class Billed:
    """What one reply is charged for."""

    model: str
    usage: Usage
    web_searches: int = 0


def message_usage(body: bytes) -> Billed | None:
    """What a non-streamed Messages API reply is billed for, or None if it is not a message."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "message":
        return None
    usage = message.get("usage") if isinstance(message.get("usage"), dict) else None
    return Billed(str(message.get("model", "")), usage_from(usage), web_searches_from(usage))


class StreamUsage:
    """Reads usage out of a server-sent event stream as it passes, chunk by chunk.

    `message_start` carries the model and the input side; each `message_delta` carries cumulative
    counts (output tokens, server tool uses, and on newer API versions the input side again), which
    replace earlier values rather than add to them. Only a `message_delta` makes the usage `final`:
    a stream that ends before one, or with an `error` event, is charged its reservation.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._fields: dict[str, int] = {}
        self.web_searches = 0
        self.model = ""
        self.seen = False
        self.final = False
        self.failed = False

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
            self.final = self._merge(event.get("usage")) or self.final
        elif event.get("type") == "error":
            self.failed = True

    def _merge(self, raw: Any) -> bool:
        if not isinstance(raw, dict):
            return False
        self.seen = True
        for name, value in raw.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self._fields[name] = int(value)
        self.web_searches = max(self.web_searches, web_searches_from(raw))
        return True

    @property
    def usage(self) -> Usage:
        return usage_from(self._fields)

    @property
    def billed(self) -> Billed:
        return Billed(self.model, self.usage, self.web_searches)
