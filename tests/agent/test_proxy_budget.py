"""The proxy's money end to end: real HTTP clients, Honk's proxy and the scripted fake Anthropic API
on loopback. The security review's case (40 parallel requests with one run token took $96 of a $2
budget) now stays within the budget plus one reservation, with at most two requests in flight; a
dropped stream is charged; server tools and beta flags are filtered before anything leaves."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from honk_app.agent.ledger import RequestCost, reservation_usd
from honk_app.agent.pricing import WEB_SEARCH_USD, cost_usd
from honk_app.agent.proxy import AnthropicProxy
from honk_app.models import Usage
from tests.fakes import anthropic as fake_api
from tests.waiting import wait_for

REAL_KEY = "sk-ant-api03-real-key-held-only-by-honk-0123456789"
MODEL = "claude-sonnet-4-5"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[fake_api.FakeAnthropic, AnthropicProxy]]:
    fake = fake_api.FakeAnthropic(fake_api.Script([]), api_key=REAL_KEY)
    with fake, AnthropicProxy(REAL_KEY, upstream_url=fake.url) as proxy:
        yield fake, proxy


@pytest.fixture
def fake(servers: tuple[fake_api.FakeAnthropic, AnthropicProxy]) -> fake_api.FakeAnthropic:
    servers[0].reset(fake_api.Script([]))
    return servers[0]


@pytest.fixture
def proxy(servers: tuple[fake_api.FakeAnthropic, AnthropicProxy]) -> Iterator[AnthropicProxy]:
    yield servers[1]
    for run_id in ("run-1", "run-2"):
        servers[1].revoke(run_id)


def body(max_tokens: int = 1_000, *, stream: bool = False, **extra: Any) -> bytes:
    message = {"role": "user", "content": "Fix the failing test, please."}
    request = {"model": MODEL, "max_tokens": max_tokens, "messages": [message], **extra}
    return json.dumps(request | ({"stream": True} if stream else {})).encode()


def reserved(raw: bytes, max_tokens: int = 1_000) -> float:
    return reservation_usd(RequestCost(MODEL, max_tokens, len(raw)))


def billed(fake: fake_api.FakeAnthropic) -> float:
    """What the (fake) API charged: every usage it reported, at Honk's prices."""
    names = vars(Usage())
    return sum(cost_usd(MODEL, Usage(**{k: u[k] for k in names})) for u in fake.usages)


def full_output(hold: threading.Event) -> fake_api.Responder:
    """Every reply writes all of max_tokens (the most a request can cost), once `hold` is set."""

    def respond(request: dict[str, Any]) -> fake_api.Reply:
        return fake_api.Reply(
            [{"type": "text", "text": "done"}], output_tokens=request["max_tokens"], hold=hold
        )

    return respond


async def until(probe: Any, what: str) -> None:
    await asyncio.to_thread(wait_for, probe, what, 30)


async def test_forty_parallel_requests_stay_within_the_budget_plus_one_reservation(
    fake: fake_api.FakeAnthropic, proxy: AnthropicProxy
) -> None:
    hold = threading.Event()
    fake.responder = full_output(hold)
    plain, streamed = body(), body(stream=True)
    reservation = max(reserved(plain), reserved(streamed))
    budget = 0.10  # about six requests' worth
    grant = proxy.issue("run-1", budget)
    auth = {"x-api-key": grant.token, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=grant.base_url, timeout=60) as client:
        calls = [
            asyncio.create_task(
                client.post("/v1/messages", content=streamed if n % 2 else plain, headers=auth)
            )
            for n in range(40)
        ]
        await until(lambda: fake.in_flight == 2, "two requests in flight")
        assert not any(call.done() for call in calls)  # the others wait: none refused for that
        hold.set()
        replies = await asyncio.gather(*calls)
    meter = proxy.revoke("run-1")
    assert meter is not None
    passed = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 402]
    assert len(passed) + len(refused) == 40 and passed and refused
    assert fake.peak_in_flight == 2  # never more than two at once upstream
    assert len(fake.requests) == len(passed) == meter.requests
    for reply in refused:
        error = reply.json()["error"]
        assert error["type"] == "billing_error" and reply.headers["x-should-retry"] == "false"
        assert error["message"].startswith("Honk's budget of $0.10 for this run cannot cover")
    # what the API charged is what Honk counted, within the budget plus one reservation
    assert meter.spent_usd == pytest.approx(billed(fake))
    assert meter.spent_usd <= budget + reservation
    # and a request was refused only when one more could not have fit
    assert meter.spent_usd + min(reserved(plain), reserved(streamed)) > budget
    assert meter.reserved_usd == 0 and meter.refused == len(refused)


async def test_a_stream_the_client_drops_before_its_usage_is_charged_its_reservation(
    fake: fake_api.FakeAnthropic, proxy: AnthropicProxy
) -> None:
    hold = threading.Event()  # never set: the reply stops after message_start
    fake.responder = full_output(hold)
    raw = body(stream=True)
    grant = proxy.issue("run-1", 1.0)
    async with (
        httpx.AsyncClient(base_url=grant.base_url, timeout=60) as client,
        client.stream(
            "POST",
            "/v1/messages",
            content=raw,
            headers={"x-api-key": grant.token, "anthropic-version": "2023-06-01"},
        ) as response,
    ):
        async for chunk in response.aiter_bytes():
            assert b"message_start" in chunk
            break  # and the client goes away
    await until(lambda: (m := proxy.meter("run-1")) is not None and m.requests == 1, "the charge")
    hold.set()
    meter = proxy.meter("run-1")
    assert meter is not None and meter.reserved_usd == 0
    assert meter.spent_usd == pytest.approx(reserved(raw))


@pytest.mark.parametrize(
    ("reply", "charged"),
    [
        (fake_api.error(529, "overloaded_error", "Overloaded"), False),  # refused: nothing to pay
        (fake_api.Reply(status=200, error={"type": "overloaded_error", "message": "x"}), True),
    ],
)
async def test_an_upstream_error_costs_nothing_before_the_stream_and_the_reservation_within(
    reply: fake_api.Reply, charged: bool, fake: fake_api.FakeAnthropic, proxy: AnthropicProxy
) -> None:
    fake.responder = fake_api.Script([reply])
    raw = body(stream=True)
    grant = proxy.issue("run-1", 1.0)
    async with httpx.AsyncClient(base_url=grant.base_url, timeout=60) as client:
        await client.post(
            "/v1/messages",
            content=raw,
            headers={"x-api-key": grant.token, "anthropic-version": "2023-06-01"},
        )
    meter = proxy.meter("run-1")
    assert meter is not None and meter.reserved_usd == 0
    assert meter.spent_usd == pytest.approx(reserved(raw) if charged else 0.0)


async def test_a_waiting_request_holds_no_lock_and_gives_up_when_the_run_ends(
    fake: fake_api.FakeAnthropic, proxy: AnthropicProxy
) -> None:
    hold = threading.Event()
    fake.responder = full_output(hold)
    first, second = proxy.issue("run-1", 1.0), proxy.issue("run-2", 1.0)
    version = {"anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=first.base_url, timeout=60) as client:

        def send(token: str) -> asyncio.Task[httpx.Response]:
            post = client.post(
                "/v1/messages", content=body(), headers={"x-api-key": token, **version}
            )
            return asyncio.create_task(post)

        running = [send(first.token), send(first.token)]
        await until(lambda: fake.in_flight == 2, "run-1's two requests in flight")
        waiting = send(first.token)
        other = send(second.token)  # another run is not held up by run-1's wait
        await until(lambda: fake.in_flight == 3, "run-2's request in flight")
        assert not waiting.done()
        ended = proxy.revoke("run-1")  # from another thread than the proxy's, as a run does
        assert (await waiting).status_code == 401
        hold.set()
        replies = await asyncio.gather(*running, other)
    assert [r.status_code for r in replies] == [200, 200, 200]
    # the run ended with two requests in flight: its final meter charged both reservations
    assert ended is not None and ended.spent_usd == pytest.approx(2 * reserved(body()))


async def test_server_tools_pass_only_with_the_web_allowed_and_their_fees_are_counted(
    fake: fake_api.FakeAnthropic, proxy: AnthropicProxy
) -> None:
    fake.responder = fake_api.Script([fake_api.Reply([], web_search_requests=2)])
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 50}
    raw = body(tools=[search])
    headers = {"anthropic-version": "2023-06-01"}
    closed, open_ = proxy.issue("run-1", 1.0), proxy.issue("run-2", 1.0, allow_web=True)
    async with httpx.AsyncClient(base_url=closed.base_url, timeout=60) as client:
        refused = await client.post(
            "/v1/messages", content=raw, headers={"x-api-key": closed.token, **headers}
        )
        assert refused.status_code == 400 and fake.requests == []
        assert refused.json()["error"] == {
            "type": "invalid_request_error",
            "message": "Honk's proxy refused the tool type 'web_search_20250305': the web is "
            "off for this repository.",
        }
        allowed = await client.post(
            "/v1/messages", content=raw, headers={"x-api-key": open_.token, **headers}
        )
    assert allowed.status_code == 200
    assert fake.requests[0]["tools"][0]["max_uses"] == 10  # capped, so the reservation holds
    meter = proxy.meter("run-2")
    assert meter is not None and meter.web_searches == 2
    assert meter.spent_usd == pytest.approx(billed(fake) + 2 * WEB_SEARCH_USD)


async def test_beta_flags_off_the_allow_list_never_reach_the_api(
    fake: fake_api.FakeAnthropic, proxy: AnthropicProxy
) -> None:
    grant = proxy.issue("run-1", 1.0)
    flags = "claude-code-20250219,files-api-2025-04-14,context-1m-2025-08-07"
    async with httpx.AsyncClient(base_url=grant.base_url, timeout=60) as client:
        reply = await client.post(
            "/v1/messages",
            content=body(),
            headers={
                "x-api-key": grant.token,
                "anthropic-version": "2023-06-01",
                "anthropic-beta": flags,
            },
        )
    assert reply.status_code == 200
    assert fake.headers[0]["anthropic-beta"] == "claude-code-20250219"
