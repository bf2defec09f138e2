"""The Anthropic proxy's decisions on plain values: which requests pass, how headers change, and
how usage is read from JSON replies and server-sent event streams."""

from __future__ import annotations

import json
from typing import Any

from honk_app.agent.proxy_rules import (
    StreamUsage,
    downstream_headers,
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
    assert message_usage(body) == (MODEL, Usage(10, 5, 0, 100))
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
