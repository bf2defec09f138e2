"""Hostile answers for the fake GitHub: an endless `Link: next`, a trickle, a flood, crowds of
commenters.

Each plans the next answers to matching requests (as `fail_next` does), so that a test can show
how much work Honk does against them through what the fake records: the requests it received
(`fake.requests`) and the bytes it sent for each (`RecordedRequest.bytes_sent`). Flooded bodies
are generated as they are sent, so even a huge one costs the test no memory.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.github_state import CommentState, Flood, Injection

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

FOREVER = 1_000_000


def _plan(fake: FakeGitHub, injection: Injection) -> None:
    with fake.lock:
        fake.injections.append(injection)


def endless_pages(fake: FakeGitHub, path_regex: str, page: list[Any]) -> None:
    """Every GET whose path matches answers `page` and links `next` to one more page."""
    _plan(fake, Injection("GET", re.compile(path_regex), 200, page, {}, FOREVER, endless=True))


def trickle(
    fake: FakeGitHub, method: str, path_regex: str, body: Any, *, pause_s: float = 0.05
) -> None:
    """The next matching request gets `body` one byte every `pause_s`, after a long run of
    whitespace: the answer keeps arriving, and never ends in any test's lifetime."""
    flood = Flood(chunk=1, pause_s=pause_s, filler=FOREVER)
    _plan(fake, Injection(method.upper(), re.compile(path_regex), 200, body, {}, 1, flood))


def flood(fake: FakeGitHub, method: str, path_regex: str, body: Any, *, size: int) -> None:
    """The next matching request gets `body` padded to about `size` bytes, sent as fast as the
    connection takes it and without `Content-Length`."""
    plan = Flood(filler=size)
    _plan(fake, Injection(method.upper(), re.compile(path_regex), 200, body, {}, 1, plan))


def crowd(
    fake: FakeGitHub, full_name: str, number: int, count: int, *, body: str = "me too"
) -> list[CommentState]:
    """`count` comments on one issue, each by a different stranger (`stranger-0`, ...)."""
    repo = fake.repo(full_name)
    made = [CommentState(repo.full_name, number, body, f"stranger-{i}") for i in range(count)]
    with fake.lock:
        fake.comments.extend(made)
    return made


def endless_link(url: str, query: str) -> str:
    """GitHub's `Link` header naming the page after the one asked for as `next`."""
    params = dict(parse_qsl(query))
    try:
        page = int(params.get("page", "1"))
    except ValueError:
        page = 1
    params["page"] = str(page + 1)
    return f'<{url}?{urlencode(params)}>; rel="next"'


def _pieces(payload: bytes, plan: Flood) -> Iterator[bytes]:
    yield payload[:1]
    left = plan.filler
    while left > 0:
        size = min(plan.chunk, left)
        yield b" " * size
        left -= size
    rest = payload[1:]
    for start in range(0, len(rest), plan.chunk):
        yield rest[start : start + plan.chunk]


def flood_response(injection: Injection) -> ASGIApp:
    """The injection's JSON body, sent as its `Flood` plan says, until the client hangs up (so
    that `bytes_sent` counts what the connection took, not what a closed one dropped)."""
    plan = injection.flood or Flood()
    payload = json.dumps(injection.body, separators=(",", ":")).encode()
    headers = [(k.lower().encode(), v.encode()) for k, v in injection.headers.items()]
    headers.append((b"content-type", b"application/json; charset=utf-8"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        listener = asyncio.create_task(listen())
        try:
            start = {"type": "http.response.start", "status": injection.status, "headers": headers}
            await send(start)
            for index, piece in enumerate(_pieces(payload, plan)):
                await asyncio.sleep(plan.pause_s if index else 0)  # lets the hang-up be heard
                if gone.is_set():
                    return
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            listener.cancel()

    return app
