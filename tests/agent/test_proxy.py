"""The Anthropic proxy between a real client and an upstream on loopback (a recording app of this
file, and the scripted fake Anthropic API); its pure decisions are tested in
test_agent_proxy_rules."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from honk_app.agent.ledger import RequestCost, reservation_usd
from honk_app.agent.pricing import cost_usd
from honk_app.agent.proxy import AnthropicProxy
from honk_app.models import Usage
from tests.agent.test_proxy_rules import MODEL, REAL_KEY, STREAM
from tests.fakes import anthropic as fake_api
from tests.fakes.loopback import serve

# ---- an upstream that records what reaches it --------------------------------------------------


@dataclass
class Upstream:
    """A recording stand-in for api.anthropic.com; `reply` decides each answer."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    stream: bytes = STREAM
    gate: threading.Event = field(default_factory=threading.Event)
    gate_opened_in_time: list[bool] = field(default_factory=list)
    gzip: bool = False  # answer compressed, whatever the client asked for

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            body = await request.body()
            self.seen.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "query": request.url.query,
                    "headers": dict(request.headers),
                    "body": body,
                }
            )
            if request.url.path.endswith("count_tokens"):
                return JSONResponse({"input_tokens": 42})
            if json.loads(body).get("stream"):
                return StreamingResponse(self._gated(), media_type="text/event-stream")
            usage = {"input_tokens": 1000, "output_tokens": 500}
            reply = json.dumps({"type": "message", "model": MODEL, "usage": usage}).encode()
            if self.gzip:
                headers = {"content-encoding": "gzip"}
                return Response(
                    gzip.compress(reply), media_type="application/json", headers=headers
                )
            return Response(reply, media_type="application/json")

        return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])])

    async def _gated(self) -> AsyncIterator[bytes]:
        """The first event, then the rest only once the client has read that first event."""
        first, rest = self.stream.split(b"\n\n", 1)
        yield first + b"\n\n"
        opened = await asyncio.to_thread(self.gate.wait, 10)
        self.gate_opened_in_time.append(opened)
        yield rest


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Upstream, str, AnthropicProxy]]:
    """One upstream and one proxy for the module, as in Honk: one proxy serves every run."""
    recorder = Upstream()
    with serve(recorder.app()) as server, AnthropicProxy(REAL_KEY, upstream_url=server.url) as px:
        yield recorder, server.url, px


@pytest.fixture
def upstream(servers: tuple[Upstream, str, AnthropicProxy]) -> Iterator[tuple[Upstream, str]]:
    recorder, url, _ = servers
    recorder.seen.clear()
    recorder.gate.clear()
    recorder.gate_opened_in_time.clear()
    recorder.gzip = False
    yield recorder, url


@pytest.fixture
def proxy(
    servers: tuple[Upstream, str, AnthropicProxy], upstream: tuple[Upstream, str]
) -> Iterator[AnthropicProxy]:
    yield servers[2]
    for run_id in ("run-1", "run-2"):
        servers[2].revoke(run_id)


MESSAGE = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


async def test_the_token_is_swapped_for_the_real_key_and_the_rest_passes_unchanged(
    proxy: AnthropicProxy, upstream: tuple[Upstream, str]
) -> None:
    recorder, _ = upstream
    grant = proxy.issue("run-1", budget_usd=1.0)
    assert grant.token.startswith("honk-proxy-") and REAL_KEY not in repr(proxy)
    body = json.dumps(MESSAGE).encode()
    async with httpx.AsyncClient(base_url=grant.base_url) as client:
        by_key = await client.post(
            "/v1/messages?beta=true",
            content=body,
            headers={"x-api-key": grant.token, "anthropic-version": "2023-06-01"},
        )
        by_bearer = await client.post(
            "/v1/messages", content=body, headers={"authorization": f"Bearer {grant.token}"}
        )
    assert by_key.status_code == by_bearer.status_code == 200
    first, second = recorder.seen
    assert second["query"] == ""
    assert (first["method"], first["path"], first["query"]) == ("POST", "/v1/messages", "beta=true")
    assert first["body"] == body
    assert first["headers"]["anthropic-version"] == "2023-06-01"
    for seen in recorder.seen:
        assert seen["headers"]["x-api-key"] == REAL_KEY
        assert "authorization" not in seen["headers"]
        assert grant.token not in json.dumps({k: v for k, v in seen.items() if k != "body"})


async def test_everything_but_the_messages_api_is_refused_without_reaching_upstream(
    proxy: AnthropicProxy, upstream: tuple[Upstream, str]
) -> None:
    recorder, _ = upstream
    grant = proxy.issue("run-1", budget_usd=1.0)
    auth = {"x-api-key": grant.token}
    async with httpx.AsyncClient(base_url=grant.base_url) as client:
        models = await client.get("/v1/models", headers=auth)
        batches = await client.post("/v1/messages/batches", json=MESSAGE, headers=auth)
        get_messages = await client.get("/v1/messages", headers=auth)
    assert models.status_code == batches.status_code == get_messages.status_code == 404
    assert models.json()["error"]["type"] == "not_found_error"
    assert recorder.seen == []


async def test_an_unknown_token_or_the_real_key_itself_is_refused(
    proxy: AnthropicProxy, upstream: tuple[Upstream, str]
) -> None:
    recorder, _ = upstream
    proxy.issue("run-1", budget_usd=1.0)
    async with httpx.AsyncClient(base_url=proxy.base_url) as client:
        guessed = await client.post(
            "/v1/messages", json=MESSAGE, headers={"x-api-key": "honk-proxy-x"}
        )
        real = await client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": REAL_KEY})
        bare = await client.post("/v1/messages", json=MESSAGE)
    assert guessed.status_code == real.status_code == bare.status_code == 401
    assert guessed.json()["error"]["type"] == "authentication_error"
    assert recorder.seen == []


async def test_a_stream_passes_through_event_by_event_and_is_metered(
    proxy: AnthropicProxy, upstream: tuple[Upstream, str]
) -> None:
    recorder, _ = upstream
    grant = proxy.issue("run-1", budget_usd=5.0)
    received = b""
    async with (
        httpx.AsyncClient(base_url=grant.base_url) as client,
        client.stream(
            "POST",
            "/v1/messages",
            json={**MESSAGE, "stream": True},
            headers={"x-api-key": grant.token},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        async for chunk in response.aiter_raw():
            received += chunk
            if b"message_start" in received:
                recorder.gate.set()  # upstream sends the rest only after this
    assert received == STREAM
    assert recorder.gate_opened_in_time == [True]  # the first event arrived before the rest left
    meter = proxy.meter("run-1")
    assert meter is not None and meter.requests == 1
    assert meter.usage == Usage(7, 40, 2000, 300)
    assert meter.spent_usd == pytest.approx(cost_usd(MODEL, Usage(7, 40, 2000, 300)))


async def test_count_tokens_is_forwarded_but_costs_nothing(
    proxy: AnthropicProxy, upstream: tuple[Upstream, str]
) -> None:
    grant = proxy.issue("run-1", budget_usd=1.0)
    async with httpx.AsyncClient(base_url=grant.base_url) as client:
        counted = await client.post(
            "/v1/messages/count_tokens", json=MESSAGE, headers={"x-api-key": grant.token}
        )
    assert counted.json() == {"input_tokens": 42}
    meter = proxy.meter("run-1")
    assert meter is not None and meter.spent_usd == 0 and meter.requests == 0


async def test_a_request_the_budget_cannot_cover_is_refused_with_a_readable_error(
    proxy: AnthropicProxy, upstream: tuple[Upstream, str]
) -> None:
    recorder, _ = upstream
    one_reply = cost_usd(MODEL, Usage(input_tokens=1000, output_tokens=500))
    message = {**MESSAGE, "max_tokens": 500}
    reservation = reservation_usd(RequestCost(MODEL, 500, len(json.dumps(message))))
    grant = proxy.issue("run-1", budget_usd=one_reply + reservation / 2)
    auth = {"x-api-key": grant.token}
    async with httpx.AsyncClient(base_url=grant.base_url) as client:
        first = await client.post("/v1/messages", content=json.dumps(message), headers=auth)
        second = await client.post("/v1/messages", content=json.dumps(message), headers=auth)
        counting = await client.post("/v1/messages/count_tokens", json=MESSAGE, headers=auth)
    assert first.status_code == 200  # its worst case fitted
    assert second.status_code == 402  # after the first, half a worst case is left
    assert second.headers["x-should-retry"] == "false"
    assert second.json()["error"]["type"] == "billing_error"
    assert "cannot cover this request" in second.json()["error"]["message"]
    assert counting.status_code == 200  # counting tokens is free, so not refused
    assert len(recorder.seen) == 2
    meter = proxy.meter("run-1")
    assert meter is not None and meter.exhausted and meter.refused == 1
    assert meter.spent_usd == pytest.approx(one_reply)


async def test_a_compressed_reply_is_metered_and_passed_on_decoded(
    proxy: AnthropicProxy, upstream: tuple[Upstream, str]
) -> None:
    recorder, _ = upstream
    recorder.gzip = True
    grant = proxy.issue("run-1", budget_usd=1.0)
    async with httpx.AsyncClient(base_url=grant.base_url) as client:
        reply = await client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": grant.token})
    assert reply.json()["usage"] == {"input_tokens": 1000, "output_tokens": 500}
    meter = proxy.meter("run-1")
    assert meter is not None and meter.usage == Usage(1000, 500)


async def test_an_oversized_request_is_refused_before_reaching_upstream(
    upstream: tuple[Upstream, str],
) -> None:
    recorder, url = upstream
    with AnthropicProxy(REAL_KEY, upstream_url=url, max_body_bytes=1000) as proxy:
        grant = proxy.issue("run-1", budget_usd=1.0)
        async with httpx.AsyncClient(base_url=grant.base_url) as client:
            reply = await client.post(
                "/v1/messages", content=b"x" * 5000, headers={"x-api-key": grant.token}
            )
    assert reply.status_code == 413 and recorder.seen == []


async def test_a_revoked_token_is_refused_and_revoking_returns_the_final_meter(
    proxy: AnthropicProxy,
) -> None:
    grant = proxy.issue("run-1", budget_usd=1.0)
    async with httpx.AsyncClient(base_url=grant.base_url) as client:
        before = await client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": grant.token})
        final = proxy.revoke("run-1")
        after = await client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": grant.token})
    assert before.status_code == 200 and after.status_code == 401
    assert final is not None and final.requests == 1
    assert proxy.revoke("run-1") is None and proxy.meter("run-1") is None
    proxy.issue("run-2", budget_usd=1.0)
    with pytest.raises(ValueError, match="already"):
        proxy.issue("run-2", budget_usd=1.0)


async def test_the_unix_socket_serves_the_same_api(
    proxy: AnthropicProxy, upstream: tuple[Upstream, str]
) -> None:
    recorder, _ = upstream
    grant = proxy.issue("run-1", budget_usd=1.0)
    transport = httpx.AsyncHTTPTransport(uds=str(grant.unix_socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
        reply = await client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": grant.token})
    assert reply.status_code == 200
    assert recorder.seen[0]["headers"]["x-api-key"] == REAL_KEY


async def test_an_unreachable_upstream_is_a_502_in_the_apis_error_shape() -> None:
    with AnthropicProxy(REAL_KEY, upstream_url="http://127.0.0.1:9") as proxy:
        grant = proxy.issue("run-1", budget_usd=1.0)
        async with httpx.AsyncClient(base_url=grant.base_url) as client:
            reply = await client.post(
                "/v1/messages", json=MESSAGE, headers={"x-api-key": grant.token}
            )
    assert reply.status_code == 502
    assert reply.json()["error"]["type"] == "api_error"


async def test_neither_the_key_nor_the_token_reaches_the_logs(
    proxy: AnthropicProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    grant = proxy.issue("run-1", budget_usd=0.0)
    async with httpx.AsyncClient(base_url=grant.base_url) as client:
        await client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": grant.token})
        await client.post("/v1/messages", json=MESSAGE, headers={"x-api-key": "honk-proxy-wrong"})
    proxy.revoke("run-1")
    assert "refused" in caplog.text  # something was logged
    assert REAL_KEY not in caplog.text and grant.token not in caplog.text


async def test_the_anthropic_sdk_streams_through_the_proxy_to_the_fake_api() -> None:
    """The real client library, the proxy and the scripted fake: the path Claude Code takes."""
    fake = fake_api.FakeAnthropic(
        fake_api.Script([fake_api.text("hello from upstream")]), api_key=REAL_KEY
    )
    with fake, AnthropicProxy(REAL_KEY, upstream_url=fake.url) as proxy:
        grant = proxy.issue("run-1", budget_usd=1.0)
        client = anthropic.AsyncAnthropic(
            api_key=grant.token, base_url=grant.base_url, max_retries=0
        )
        async with client.messages.stream(**MESSAGE) as stream:
            message = await stream.get_final_message()
        await client.close()
        meter = proxy.revoke("run-1")
    assert message.content[0].text == "hello from upstream"  # type: ignore[union-attr]
    assert fake.headers[0]["x-api-key"] == REAL_KEY
    assert meter is not None and meter.requests == 1
    seen = fake.usages[0]
    assert meter.usage == Usage(
        seen["input_tokens"],
        seen["output_tokens"],
        seen["cache_creation_input_tokens"],
        seen["cache_read_input_tokens"],
    )
    assert meter.spent_usd > 0
