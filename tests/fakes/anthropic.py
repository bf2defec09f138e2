"""A scripted fake of the Anthropic Messages API, served on loopback for tests and benchmarks.

The real SDK (built on httpx2) talks to it over real HTTP, so what it checks is what the real API
checks: authentication, the request shape (tool_use answered by tool_result, at most four cache
breakpoints), streaming as server-sent events, and usage with prompt caching. Token counts are a
deterministic approximation (about four characters of canonical JSON per token), never exact.

Prompt caching follows the documented model: the prompt is the sequence tools → system →
messages; each `cache_control` breakpoint makes the prefix up to and including its block a cache
entry (if it holds at least `min_cacheable_tokens`); a request reads the longest previously written
prefix that ends at, or up to `lookback_blocks` blocks before, one of its breakpoints. The 5-minute
lifetime is not modelled: entries live as long as the fake.

As the real API, it reports no more output tokens than the request's `max_tokens` (unless a reply
scripts `output_tokens`, which is reported as given: script `max_tokens` for a reply that writes all
it may). A reply can be held (`Reply.hold`, an event the test sets) after `message_start`, or before
a JSON answer, so tests can have many requests in flight at once; `in_flight` and `peak_in_flight`
count them. A reply's `web_search_requests` is reported as `usage.server_tool_use`, as the API bills
server-side searches.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.anthropic_prompt import (
    PromptCache,
    RequestInvalid,
    approx_tokens,
    prompt_blocks,
    validate,
)
from tests.fakes.loopback import LoopbackServer

DEFAULT_API_KEY = "sk-ant-test-fake-key-0123456789abcdef"
_ids = itertools.count(1)


@dataclass
class Reply:
    """One scripted answer: content blocks (text / tool_use / thinking) or an error."""

    content: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "end_turn"
    status: int = 200
    # {"type": "overloaded_error", "message": ...}; status 200 makes a stream fail mid-way
    error: dict[str, Any] | None = None
    output_tokens: int | None = None
    hold: threading.Event | None = None  # answer (stream: go on after message_start) once set
    web_search_requests: int = 0


Responder = Callable[[dict[str, Any]], Reply]


def text(t: str) -> Reply:
    return Reply(content=[{"type": "text", "text": t}], stop_reason="end_turn")


def tool_use(
    name: str, input: dict[str, Any], *, id: str | None = None, text: str | None = None
) -> Reply:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks.append(
        {
            "type": "tool_use",
            "id": id or f"toolu_fake{next(_ids):06d}",
            "name": name,
            "input": input,
        }
    )
    return Reply(content=blocks, stop_reason="tool_use")


def error(status: int, type_: str, message: str) -> Reply:
    return Reply(status=status, error={"type": type_, "message": message})


class Script:
    """Replies in order (a callable entry is called with the request); then a final text "done"."""

    def __init__(self, replies: Sequence[Reply | Callable[[dict[str, Any]], Reply]]) -> None:
        self._replies = list(replies)
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            index = self.calls
            self.calls += 1
        if index >= len(self._replies):
            return text("done")
        entry = self._replies[index]
        return entry if isinstance(entry, Reply) else entry(request)


# ---- the HTTP adapter ------------------------------------------------------------------------


def _error_body(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(value: str, size: int = 24) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def stream_events(message: dict[str, Any], reply: Reply) -> list[bytes]:
    """The event sequence the real API streams for `message`."""
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events = [_sse("message_start", {"type": "message_start", "message": start})]
    events.append(_sse("ping", {"type": "ping"}))
    if reply.error is not None:
        return [*events, _sse("error", _error_body(reply.error["type"], reply.error["message"]))]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            head: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _chunks(block["text"])]
        elif kind == "tool_use":
            head = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            encoded = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": c} for c in _chunks(encoded)]
        elif kind == "thinking":
            head = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": c} for c in _chunks(block["thinking"])]
            deltas.append({"type": "signature_delta", "signature": block.get("signature", "sig")})
        else:
            head, deltas = block, []
        events.append(
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": head},
            )
        )
        for delta in deltas:
            events.append(
                _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(_sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events


class FakeAnthropic:
    """The Messages API on loopback: `url` is the base URL to give the SDK (without /v1)."""

    def __init__(
        self,
        responder: Responder,
        *,
        api_key: str = DEFAULT_API_KEY,
        min_cacheable_tokens: int = 1024,
        lookback_blocks: int = 20,
    ) -> None:
        self.responder = responder
        self.api_key = api_key
        self.cache = PromptCache(min_cacheable_tokens, lookback_blocks)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.usages: list[dict[str, int]] = []  # the usage of every successful reply, in order
        self.count_token_requests: list[dict[str, Any]] = []
        self.in_flight = 0  # replies being produced right now
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route(
                    "/{path:path}",
                    self._not_found,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                ),
            ]
        )
        self._server: LoopbackServer | None = None

    def reset(self, responder: Responder | None = None) -> None:
        """Forget requests and cache entries (one server can then serve many tests)."""
        with self._lock, self.cache.lock:
            if responder is not None:
                self.responder = responder
            self.requests.clear()
            self.headers.clear()
            self.usages.clear()
            self.count_token_requests.clear()
            self.cache.entries.clear()
            self.peak_in_flight = self.in_flight

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeAnthropic is not started")
        return self._server.url

    def start(self) -> FakeAnthropic:
        self._server = LoopbackServer(self.app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _fail(self, status: int, type_: str, message: str) -> JSONResponse:
        headers = {"request-id": f"req_fake{next(_ids):06d}", "x-should-retry": "false"}
        if status in (408, 409, 429) or status >= 500:
            headers["x-should-retry"] = "true"
        return JSONResponse(_error_body(type_, message), status_code=status, headers=headers)

    def _authorised(self, request: Request) -> bool:
        key = request.headers.get("x-api-key")
        bearer = request.headers.get("authorization", "")
        if key is None and bearer.lower().startswith("bearer "):
            key = bearer[len("bearer ") :]
        return key == self.api_key

    async def _read(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None, self._fail(
                400, "invalid_request_error", "The request body is not valid JSON."
            )
        if not isinstance(body, dict):
            return None, self._fail(
                400, "invalid_request_error", "The request body must be an object."
            )
        return body, None

    async def _messages(self, request: Request) -> Response:
        body, failure = await self._read(request)
        if body is not None:
            with self._lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
        if failure is not None or body is None:
            return failure or self._fail(400, "invalid_request_error", "empty body")
        if not self._authorised(request):
            return self._fail(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return self._fail(400, "invalid_request_error", "anthropic-version: header is required")
        try:
            validate(body)
        except RequestInvalid as exc:
            return self._fail(400, "invalid_request_error", str(exc))
        try:
            reply = self.responder(body)
        except Exception as exc:  # a broken script should fail loudly, as the API's 500 would
            return self._fail(500, "api_error", f"fake responder raised {exc!r}")
        stream = bool(body.get("stream"))
        if reply.error is not None and (reply.status != 200 or not stream):
            return self._fail(reply.status if reply.status != 200 else 500, **_kw(reply.error))
        usage: dict[str, Any] = self.cache.account(str(body["model"]), prompt_blocks(body))
        output = reply.output_tokens
        if output is None:  # the API never writes more than max_tokens
            output = min(approx_tokens(reply.content), int(body["max_tokens"]))
        usage = {
            **usage,
            "output_tokens": output,
            "cache_creation": {
                "ephemeral_5m_input_tokens": usage["cache_creation_input_tokens"],
                "ephemeral_1h_input_tokens": 0,
            },
            "service_tier": "standard",
        }
        if reply.web_search_requests:
            usage["server_tool_use"] = {"web_search_requests": reply.web_search_requests}
        with self._lock:
            self.usages.append(usage)
        message = {
            "id": f"msg_fake{next(_ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": reply.content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        headers = {"request-id": f"req_fake{next(_ids):06d}"}
        if not stream:
            self._enter()
            try:
                await _held(reply)
            finally:
                self._leave()
            return JSONResponse(message, headers=headers)
        events = stream_events(message, reply)

        async def emit() -> AsyncIterator[bytes]:
            self._enter()
            try:
                yield events[0]
                await _held(reply)
                for event in events[1:]:
                    yield event
            finally:
                self._leave()

        return StreamingResponse(emit(), media_type="text/event-stream", headers=headers)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    async def _count_tokens(self, request: Request) -> Response:
        body, failure = await self._read(request)
        if failure is not None or body is None:
            return failure or self._fail(400, "invalid_request_error", "empty body")
        with self._lock:
            self.count_token_requests.append(body)
        if not self._authorised(request):
            return self._fail(401, "authentication_error", "invalid x-api-key")
        total = sum(b.tokens for b in prompt_blocks(body))
        return JSONResponse({"input_tokens": total})

    async def _not_found(self, request: Request) -> Response:
        return self._fail(404, "not_found_error", f"Not found: {request.method} {request.url.path}")


async def _held(reply: Reply) -> None:
    if reply.hold is not None:
        await asyncio.to_thread(reply.hold.wait, 60)


def _kw(err: dict[str, Any]) -> dict[str, str]:
    return {"type_": str(err.get("type", "api_error")), "message": str(err.get("message", ""))}
