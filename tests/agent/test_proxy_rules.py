"""The Anthropic proxy's decisions on plain values: which requests pass (paths, tools, beta
flags), how headers change, and how usage is read from JSON replies and server-sent event
streams."""

from __future__ import annotations

import json
from typing import Any

import pytest

from honk_app.agent.ledger import RequestCost, reservation_usd
from honk_app.agent.proxy_rules import (
    MAX_FETCH_TOKENS,
    MAX_WEB_USES,
    Billed,
    Inspected,
    StreamUsage,
    downstream_headers,
    filter_betas,
    inspect_request,
    is_forwarded,
    message_usage,
    presented_token,
    upstream_headers,
)
from honk_app.models import Usage

REAL_KEY = "sk-ant-api03-real-key-held-only-by-honk-0123456789"
MODEL = "claude-sonnet-4-5"


def test_a_token_is_read_from_x_api_key_or_a_bearer_header() -> None:
    assert presented_token({"x-api-key": "honk-proxy-abc"}) == "honk-proxy-abc"
    assert presented_token({"authorization": "Bearer honk-proxy-abc"}) == "honk-proxy-abc"
    assert presented_token({"authorization": "Basic Zm9vOmJhcg=="}) is None
    assert presented_token({}) is None


def test_only_the_messages_api_is_forwarded() -> None:
    assert is_forwarded("POST", "/v1/messages")
    assert is_forwarded("post", "/v1/messages/count_tokens")
    assert not is_forwarded("GET", "/v1/messages")
    assert not is_forwarded("POST", "/v1/models")
    assert not is_forwarded("POST", "/v1/messages/batches")
    assert not is_forwarded("POST", "/v1/files")


def test_upstream_headers_swap_the_credentials_and_drop_hop_by_hop_headers() -> None:
    client = [
        ("x-api-key", "honk-proxy-abc"),
        ("Authorization", "Bearer honk-proxy-abc"),
        ("Connection", "keep-alive"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Host", "127.0.0.1:9"),
        ("Accept-Encoding", "gzip, br"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "claude-code-20250219"),
        ("content-type", "application/json"),
    ]
    headers = upstream_headers(client, REAL_KEY)
    names = [k.lower() for k, _ in headers]
    assert ("x-api-key", REAL_KEY) in headers
    assert names.count("x-api-key") == 1
    assert "authorization" not in names
    assert not {"connection", "keep-alive", "transfer-encoding", "host"} & set(names)
    assert ("accept-encoding", "identity") in headers  # so usage can be read from the bytes
    assert ("anthropic-beta", "claude-code-20250219") in headers


def test_downstream_headers_drop_framing_and_hop_by_hop_headers() -> None:
    upstream = [
        ("content-type", "text/event-stream"),
        ("content-length", "12"),
        ("connection", "close"),
        ("request-id", "req_1"),
    ]
    assert downstream_headers(upstream) == {
        "content-type": "text/event-stream",
        "request-id": "req_1",
    }


def test_a_json_reply_yields_its_model_and_usage() -> None:
    body = json.dumps(
        {
            "type": "message",
            "model": MODEL,
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100},
        }
    ).encode()
    assert message_usage(body) == Billed(MODEL, Usage(10, 5, 0, 100))
    assert message_usage(b'{"type": "error"}') is None
    assert message_usage(b"not json") is None


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


STREAM = b"".join(
    [
        sse(
            {
                "type": "message_start",
                "message": {
                    "model": MODEL,
                    "usage": {
                        "input_tokens": 7,
                        "cache_creation_input_tokens": 2000,
                        "cache_read_input_tokens": 300,
                        "output_tokens": 1,
                    },
                },
            }
        ),
        sse({"type": "ping"}),
        sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}),
        sse({"type": "content_block_delta", "index": 0, "delta": {"text": "usage: lots"}}),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 40},
            }
        ),
        sse({"type": "message_stop"}),
    ]
)


def test_stream_usage_is_read_across_any_chunk_boundaries() -> None:
    for size in (1, 7, 64, len(STREAM)):
        reader = StreamUsage()
        for start in range(0, len(STREAM), size):
            reader.feed(STREAM[start : start + size])
        assert reader.seen
        assert reader.model == MODEL
        # message_delta's counts are cumulative: they replace message_start's, never add
        assert reader.usage == Usage(7, 40, 2000, 300)


def test_a_stream_is_final_only_once_message_delta_has_come() -> None:
    cut = STREAM[: STREAM.index(b"event: message_delta")]
    dropped, failed, whole = StreamUsage(), StreamUsage(), StreamUsage()
    dropped.feed(cut)
    failed.feed(cut + sse({"type": "error", "error": {"type": "overloaded_error"}}))
    whole.feed(STREAM)
    assert dropped.seen and not dropped.final  # input known, output not: charged its reservation
    assert failed.failed and not failed.final
    assert whole.final and not whole.failed


def test_server_side_web_searches_are_read_from_json_and_streams() -> None:
    usage = {"input_tokens": 10, "output_tokens": 5, "server_tool_use": {"web_search_requests": 3}}
    body = json.dumps({"type": "message", "model": MODEL, "usage": usage}).encode()
    assert message_usage(body) == Billed(MODEL, Usage(10, 5), web_searches=3)
    reader = StreamUsage()
    reader.feed(sse({"type": "message_start", "message": {"model": MODEL, "usage": {}}}))
    reader.feed(sse({"type": "message_delta", "usage": usage}))
    assert reader.final and reader.billed == Billed(MODEL, Usage(10, 5), web_searches=3)


# ---- beta flags and tools ----------------------------------------------------------------------

CLAUDE_CODE_BETAS = [
    "claude-code-20250219",
    "interleaved-thinking-2025-05-14",
    "context-management-2025-06-27",
    "thinking-token-count-2026-05-13",
    "thinking-display-updates-2026-08-18",
]


@pytest.mark.parametrize(
    ("flag", "allow_web", "passes"),
    [
        *[(flag, False, True) for flag in CLAUDE_CODE_BETAS],  # what Claude Code 2.1 sends
        ("interleaved-thinking-2027-01-01", False, True),  # a newer version of an allowed feature
        ("context-1m-2025-08-07", False, False),  # long-context prices Honk does not know
        ("extended-cache-ttl-2025-04-11", False, False),  # one-hour cache writes cost 2x
        ("files-api-2025-04-14", False, False),
        ("mcp-client-2025-04-04", False, False),
        ("code-execution-2025-08-25", False, False),
        ("web-fetch-2025-09-10", False, False),
        ("web-fetch-2025-09-10", True, True),
        ("web-search-2025-03-05", True, True),
        ("code-execution-2025-08-25", True, False),  # the web, not a computer on Anthropic's side
        ("claude-code", False, False),  # not a flag
        ("claude-code-20250219-x", False, False),
    ],
)
def test_beta_flags_pass_only_from_the_allow_list(flag: str, allow_web: bool, passes: bool) -> None:
    passed, dropped = filter_betas([flag], allow_web=allow_web)
    assert (passed, dropped) == (([flag], []) if passes else ([], [flag]))


def test_dropped_beta_flags_leave_the_header_with_the_rest_or_remove_it() -> None:
    mixed = [("anthropic-beta", "claude-code-20250219, files-api-2025-04-14")]
    assert ("anthropic-beta", "claude-code-20250219") in upstream_headers(mixed, REAL_KEY)
    only_dropped = [("anthropic-beta", "files-api-2025-04-14")]
    names = [name for name, _ in upstream_headers(only_dropped, REAL_KEY)]
    assert "anthropic-beta" not in names


def request(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]} | (
        extra
    )


CUSTOM = {"name": "Bash", "description": "run", "input_schema": {"type": "object"}}
SEARCH = {"type": "web_search_20250305", "name": "web_search"}
FETCH = {"type": "web_fetch_20250910", "name": "web_fetch"}


@pytest.mark.parametrize(
    ("body", "allow_web", "refusal"),
    [
        (request(tools=[CUSTOM]), False, None),
        (request(tools=[{**CUSTOM, "type": "custom"}]), False, None),
        (request(tools=[{"type": "bash_20250124", "name": "bash"}]), False, None),
        (request(tools=[{"type": "text_editor_20250728", "name": "edit"}]), False, None),
        (request(tools=[SEARCH]), False, "the web is off for this repository"),
        (request(tools=[FETCH]), False, "the web is off for this repository"),
        (request(tools=[SEARCH, FETCH]), True, None),
        (request(tools=[{"type": "code_execution_20250825", "name": "x"}]), True, "servers"),
        (request(tools=[{"type": "tool_search_tool_regex_20251119"}]), False, "servers"),
        (request(tools=[{"type": "something_new", "name": "x"}]), True, "servers"),
        (request(tools=[{"type": 7, "name": "x"}]), False, "servers"),
        (request(tools=["Bash"]), False, "every tool must be an object"),
        (request(tools={"name": "Bash"}), False, "must be a list"),
        (request(mcp_servers=[{"type": "url", "url": "https://x"}]), True, "mcp_servers"),
        (request(container="container_1"), False, "container"),
        (request(max_tokens=0), False, "max_tokens"),
        (request(max_tokens=True), False, "max_tokens"),
        (request(model=""), False, "model"),
        ([1, 2], False, "not a JSON object"),
    ],
)
def test_tools_and_fields_that_reach_anthropics_servers_are_refused(
    body: Any, allow_web: bool, refusal: str | None
) -> None:
    found = inspect_request(json.dumps(body).encode(), allow_web=allow_web, metered=True)
    if refusal is None:
        assert isinstance(found, Inspected)
    else:
        assert isinstance(found, str) and refusal in found
        assert found.startswith("Honk's proxy refused") and found.endswith(".")
        assert "\n" not in found


def test_a_request_without_server_tools_is_forwarded_byte_for_byte() -> None:
    raw = json.dumps(request(tools=[CUSTOM]), indent=1).encode()
    found = inspect_request(raw, allow_web=True, metered=True)
    assert isinstance(found, Inspected)
    assert found.body == raw
    assert found.cost == RequestCost(MODEL, 100, len(raw))


def test_count_tokens_needs_no_max_tokens() -> None:
    raw = json.dumps({"model": MODEL, "messages": []}).encode()
    assert isinstance(inspect_request(raw, allow_web=False, metered=False), Inspected)
    assert isinstance(inspect_request(raw, allow_web=False, metered=True), str)


@pytest.mark.parametrize(
    ("asked", "enforced"),
    [(None, MAX_WEB_USES), (3, 3), (500, MAX_WEB_USES), (0, MAX_WEB_USES), ("9", MAX_WEB_USES)],
)
def test_server_tools_get_a_use_limit_the_reservation_counts(asked: Any, enforced: int) -> None:
    search = SEARCH if asked is None else {**SEARCH, "max_uses": asked}
    fetch = FETCH if asked is None else {**FETCH, "max_uses": asked}
    raw = json.dumps(request(tools=[CUSTOM, search, fetch])).encode()
    found = inspect_request(raw, allow_web=True, metered=True)
    assert isinstance(found, Inspected)
    sent = json.loads(found.body)
    assert [t.get("max_uses") for t in sent["tools"]] == [None, enforced, enforced]
    assert sent["tools"][2]["max_content_tokens"] == MAX_FETCH_TOKENS
    assert {k: v for k, v in sent.items() if k != "tools"} == request()
    assert found.cost == RequestCost(
        MODEL,
        100,
        len(found.body),
        web_searches=enforced,
        web_fetches=enforced,
        fetch_tokens=MAX_FETCH_TOKENS,
    )


def _with(*blocks: dict[str, Any], system: Any = None) -> dict[str, Any]:
    body = request(messages=[{"role": "user", "content": list(blocks)}])
    return {**body, "system": system} if system is not None else body


PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
URL_IMAGE = {"type": "image", "source": {"type": "url", "url": "https://x.test/?d=secret"}}


def _nested(block: dict[str, Any], depth: int) -> dict[str, Any]:
    for _ in range(depth):
        block = {"type": "tool_result", "tool_use_id": "t", "content": [block]}
    return block


@pytest.mark.parametrize(
    ("body", "images", "refusal"),
    [
        (_with({"type": "text", "text": "hi"}), 0, None),
        (_with({"type": "image", "source": PNG}), 1, None),
        (_with(*[{"type": "image", "source": PNG}] * 3), 3, None),
        (
            _with({"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}),
            0,
            "url",
        ),
        (_with({"type": "image", "source": {"type": "file", "file_id": "file_1"}}), 0, "file"),
        (
            _with({"type": "document", "source": {"type": "url", "url": "https://x.test/a"}}),
            0,
            "url",
        ),
        (_with({"type": "document", "source": {**PNG, "media_type": "application/pdf"}}), 0, "PDF"),
        (_with({"type": "document", "source": {"type": "text", "data": "notes"}}), 0, None),
        (_with(_nested(URL_IMAGE, 3)), 0, "url"),  # inside tool results
        (_with({"type": "text", "text": "x"}, system=[URL_IMAGE]), 0, "url"),
        (_with(_nested(URL_IMAGE, 40)), 0, "nested too deeply"),  # never passed unread
        (_with(*[{"type": "image", "source": PNG}] * 101), 0, "more than 100 images"),
        # the model's own tool arguments are not content the API reads: deep is fine there
        (
            _with({"type": "tool_use", "id": "t", "name": "x", "input": _nested(URL_IMAGE, 30)}),
            0,
            None,
        ),
    ],
)
def test_content_the_api_would_fetch_or_bill_by_pixels_is_refused_or_reserved(
    body: dict[str, Any], images: int, refusal: str | None
) -> None:
    found = inspect_request(json.dumps(body).encode(), allow_web=False, metered=True)
    if refusal is None:
        assert isinstance(found, Inspected) and found.cost.images == images
    else:
        assert isinstance(found, str) and refusal in found and found.endswith(".")


def test_each_image_reserves_its_worst_case_whatever_its_bytes() -> None:
    one = RequestCost(MODEL, 100, 300, images=1)
    none = RequestCost(MODEL, 100, 300)
    # 1,600 tokens of Sonnet input at $3 per million
    assert reservation_usd(one) - reservation_usd(none) == pytest.approx(1_600 * 3 / 1e6)


def test_a_body_nested_past_what_json_can_read_is_refused_not_a_crash() -> None:
    raw = b'{"model":"m","max_tokens":1,"messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    found = inspect_request(raw, allow_web=False, metered=True)
    assert isinstance(found, str) and "not a JSON object" in found
