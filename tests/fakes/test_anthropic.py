"""The fake Messages API, exercised through the real SDK over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.fakes.anthropic import (
    DEFAULT_API_KEY,
    FakeAnthropic,
    Reply,
    Script,
    error,
    text,
    tool_use,
)
from tests.waiting import wait_for

MODEL = "claude-sonnet-4-5"
EPHEMERAL = {"type": "ephemeral"}


@pytest.fixture
def script() -> Script:
    return Script([])


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(Script([]), min_cacheable_tokens=50) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeAnthropic, script: Script) -> FakeAnthropic:
    server.reset(script)
    return server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(api_key=DEFAULT_API_KEY, base_url=fake.url, max_retries=0)
    yield sdk
    await sdk.close()


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def big_system(breakpoint: bool = True) -> list[dict[str, Any]]:
    block: dict[str, Any] = {"type": "text", "text": "You are a careful engineer. " * 40}
    if breakpoint:
        block["cache_control"] = EPHEMERAL
    return [block]


def scripted(fake: FakeAnthropic, *replies: Reply) -> None:
    fake.responder = Script(list(replies))


async def test_a_scripted_tool_call_comes_back_as_sdk_objects(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    scripted(fake, tool_use("bash", {"command": "ls"}, id="toolu_1", text="Looking around."))
    message = await client.messages.create(
        model=MODEL, max_tokens=100, messages=[user("list the files")]
    )
    assert message.model == MODEL
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "text" and message.content[0].text == "Looking around."
    call = message.content[1]
    assert call.type == "tool_use" and call.id == "toolu_1" and call.input == {"command": "ls"}
    assert fake.requests[0]["messages"] == [user("list the files")]


async def test_streaming_gives_the_same_message_as_a_plain_request(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    long_input = {"command": "create", "path": "a.py", "file_text": "print('hi')\n" * 30}
    reply = tool_use("str_replace_based_edit_tool", long_input, id="toolu_2", text="Writing " * 9)
    scripted(fake, reply, reply, reply)
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "messages": [user("go")]}
    plain = await client.messages.create(**kwargs)
    async with client.messages.stream(**kwargs) as stream:
        streamed = await stream.get_final_message()
    events = [event async for event in await client.messages.create(**kwargs, stream=True)]
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in plain.content]
    assert streamed.stop_reason == "tool_use"
    assert streamed.usage.output_tokens == plain.usage.output_tokens
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    deltas = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    assert json.loads(deltas) == long_input


def test_the_beta_path_streams_server_sent_events_in_the_api_order(fake: FakeAnthropic) -> None:
    scripted(fake, text("hello there"))
    body = {"model": MODEL, "max_tokens": 50, "stream": True, "messages": [user("hi")]}
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
    response = httpx.post(f"{fake.url}/v1/messages?beta=true", json=body, headers=headers)
    assert response.headers["content-type"].startswith("text/event-stream")
    names = [
        line[len("event: ") :] for line in response.text.splitlines() if line.startswith("event: ")
    ]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_a_wrong_key_is_refused_with_401(fake: FakeAnthropic) -> None:
    wrong = anthropic.AsyncAnthropic(
        api_key="sk-ant-not-the-right-key-000000000", base_url=fake.url, max_retries=0
    )
    with pytest.raises(anthropic.AuthenticationError) as raised:
        await wrong.messages.create(model=MODEL, max_tokens=10, messages=[user("hi")])
    await wrong.close()
    assert raised.value.type == "authentication_error"


def test_a_request_without_anthropic_version_is_refused(fake: FakeAnthropic) -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": [user("hi")]}
    response = httpx.post(
        f"{fake.url}/v1/messages", json=body, headers={"x-api-key": DEFAULT_API_KEY}
    )
    assert response.status_code == 400
    assert "anthropic-version" in response.json()["error"]["message"]


def test_unknown_paths_answer_404_json(fake: FakeAnthropic) -> None:
    response = httpx.get(f"{fake.url}/v1/models")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


async def test_more_than_four_breakpoints_is_a_400(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": EPHEMERAL} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError) as raised:
        await client.messages.create(model=MODEL, max_tokens=5, messages=[user(blocks)])
    assert "maximum of 4 blocks with cache_control" in str(raised.value.api_message)
    assert fake.usages == []


async def test_a_tool_use_without_its_result_is_a_400(client: anthropic.AsyncAnthropic) -> None:
    call = {"type": "tool_use", "id": "toolu_x", "name": "bash", "input": {"command": "ls"}}
    messages = [user("hi"), {"role": "assistant", "content": [call]}, user("and?")]
    with pytest.raises(anthropic.BadRequestError) as raised:
        await client.messages.create(model=MODEL, max_tokens=5, messages=messages)  # type: ignore[arg-type]
    assert "toolu_x" in str(raised.value.api_message)


async def test_scripted_errors_reach_the_sdk_as_typed_errors(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    scripted(fake, error(529, "overloaded_error", "Overloaded"))
    with pytest.raises(anthropic.APIStatusError) as raised:
        await client.messages.create(model=MODEL, max_tokens=5, messages=[user("hi")])
    assert raised.value.status_code == 529
    assert raised.value.type == "overloaded_error"


async def test_an_error_event_mid_stream_fails_the_stream(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    scripted(fake, Reply(error={"type": "overloaded_error", "message": "Overloaded"}))
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        async with client.messages.stream(model=MODEL, max_tokens=5, messages=[user("hi")]) as s:
            await s.get_final_message()


async def test_a_script_hands_each_step_the_request_then_says_done(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    seen: list[int] = []

    def count_messages(request: dict[str, Any]) -> Reply:
        seen.append(len(request["messages"]))
        return text("counted")

    scripted(fake, text("first"))
    fake.responder = Script([text("first"), count_messages])
    answers = []
    for _ in range(3):
        message = await client.messages.create(model=MODEL, max_tokens=5, messages=[user("x")])
        answers.append(message.content[0].text)  # type: ignore[union-attr]
    assert answers == ["first", "counted", "done"]
    assert seen == [1]


# ---- prompt caching --------------------------------------------------------------------------


async def test_the_second_request_reads_the_prefix_the_first_wrote(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    first = await client.messages.create(
        model=MODEL, max_tokens=5, system=big_system(), messages=[user("question one")]
    )
    second = await client.messages.create(
        model=MODEL, max_tokens=5, system=big_system(), messages=[user("question two")]
    )
    assert first.usage.cache_read_input_tokens == 0
    assert first.usage.cache_creation_input_tokens is not None
    assert first.usage.cache_creation_input_tokens >= 50
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens > 0  # the new question is not cached


async def test_without_a_breakpoint_nothing_is_cached(client: anthropic.AsyncAnthropic) -> None:
    for _ in range(2):
        message = await client.messages.create(
            model=MODEL, max_tokens=5, system=big_system(False), messages=[user("q")]
        )
        assert message.usage.cache_read_input_tokens == 0
        assert message.usage.cache_creation_input_tokens == 0


async def test_a_prefix_below_the_minimum_is_not_cached(client: anthropic.AsyncAnthropic) -> None:
    small = [{"type": "text", "text": "short", "cache_control": EPHEMERAL}]
    for _ in range(2):
        message = await client.messages.create(
            model=MODEL, max_tokens=5, system=small, messages=[user("q")]
        )  # type: ignore[arg-type]
        assert message.usage.cache_creation_input_tokens == 0
        assert message.usage.cache_read_input_tokens == 0


async def test_a_moving_breakpoint_reads_the_whole_previous_conversation(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    history: list[dict[str, Any]] = []
    reads: list[int] = []
    for turn in range(4):
        history.append(user([{"type": "text", "text": f"step {turn} " * 30}]))
        marked = [dict(m) for m in history]
        last = marked[-1]["content"][-1]
        marked[-1] = user([{**last, "cache_control": EPHEMERAL}])
        message = await client.messages.create(
            model=MODEL, max_tokens=5, system=big_system(), messages=marked
        )  # type: ignore[arg-type]
        reads.append(message.usage.cache_read_input_tokens or 0)
        history.append({"role": "assistant", "content": [{"type": "text", "text": "ok"}]})
        total = sum(
            fake.usages[-1][k]
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        counted = httpx.post(
            f"{fake.url}/v1/messages/count_tokens",
            json={"model": MODEL, "system": big_system(), "messages": marked},
            headers={"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"},
        ).json()["input_tokens"]
        assert total == counted
    assert reads[0] == 0
    assert reads[1] < reads[2] < reads[3]


async def test_an_entry_beyond_the_lookback_window_is_missed(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    """The real API looks back about 20 blocks from a breakpoint, no further."""
    blocks = [{"type": "text", "text": f"block {i} " * 20} for i in range(30)]
    first = [*blocks[:5]]
    first[-1] = {**first[-1], "cache_control": EPHEMERAL}
    await client.messages.create(model=MODEL, max_tokens=5, messages=[user(first)])  # type: ignore[arg-type]
    far = [*blocks]
    far[-1] = {**far[-1], "cache_control": EPHEMERAL}
    near = [*blocks[:20]]
    near[-1] = {**near[-1], "cache_control": EPHEMERAL}
    missed = await client.messages.create(model=MODEL, max_tokens=5, messages=[user(far)])  # type: ignore[arg-type]
    found = await client.messages.create(model=MODEL, max_tokens=5, messages=[user(near)])  # type: ignore[arg-type]
    assert missed.usage.cache_read_input_tokens == 0
    assert found.usage.cache_read_input_tokens == fake.usages[0]["cache_creation_input_tokens"]


async def test_output_stays_within_max_tokens_and_web_searches_are_billed(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    fake.responder = Script([text("a long answer " * 200), Reply([], web_search_requests=3)])
    long = await client.messages.create(model=MODEL, max_tokens=7, messages=[user("hi")])
    searched = await client.messages.create(model=MODEL, max_tokens=50, messages=[user("hi")])
    assert long.usage.output_tokens == 7
    assert searched.usage.server_tool_use is not None
    assert searched.usage.server_tool_use.web_search_requests == 3


async def test_a_held_reply_keeps_its_request_in_flight_until_released(
    fake: FakeAnthropic, client: anthropic.AsyncAnthropic
) -> None:
    hold = threading.Event()
    fake.responder = Script([Reply(content=[{"type": "text", "text": "x"}], hold=hold)] * 2)
    calls = [
        asyncio.create_task(client.messages.create(model=MODEL, max_tokens=5, messages=[user("a")]))
        for _ in range(2)
    ]
    await asyncio.to_thread(wait_for, lambda: fake.in_flight == 2, "two held replies")
    assert not any(call.done() for call in calls)
    hold.set()
    await asyncio.gather(*calls)
    assert fake.in_flight == 0 and fake.peak_in_flight == 2
