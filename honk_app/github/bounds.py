"""Bounds on every GitHub call: an overall deadline, a cap on each answer's size, a page cap.

httpx's read timeout starts again with every byte, so an answer trickling a byte at a time never
timed out; githubkit reads every answer whole and follows `Link: next` for as long as GitHub sends
one. So each call Honk makes costs a bounded time, memory and number of requests:

- `bounded_call` puts `asyncio.timeout` around the whole call, githubkit's retries and waits
  included, and names the byte cap that call's answers may reach (a context variable, so the cap
  travels with the call into Honk's transport and into no other task);
- `CappedTransport` is the httpx transport Honk hands githubkit (its own object, public httpx
  API): it refuses an answer whose `Content-Length` is over the cap and stops reading one that
  grows past it. It asks for answers uncompressed, so the cap counts what Honk holds in memory,
  not what a compressed answer would grow to;
- listings read at most `Bounds.max_pages` pages (github/paging.py) and log when they stop early.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import httpx

from honk_app.github.errors import GitHubError, ResponseTooLarge, translated
from honk_app.safety.secret_scan import redact

MIB = 1024 * 1024


@dataclass(frozen=True)
class Bounds:
    """What one call may cost. A listing's pages share `listing_s`; each other call has `call_s`."""

    call_s: float = 60.0
    listing_s: float = 180.0
    max_bytes: int = 16 * MIB  # one answer; a page of 100 long comments fits, a flood does not
    max_pages: int = 10


DEFAULT_BOUNDS = Bounds()

_answer_cap: ContextVar[int | None] = ContextVar("honk_github_answer_cap", default=None)


@asynccontextmanager
async def bounded_call(
    op: str, endpoint: str, secrets: Iterable[str], *, seconds: float, max_bytes: int
) -> AsyncIterator[None]:
    """Run one GitHub call (or one listing) within `seconds`, its answers within `max_bytes`;
    anything it raises leaves as a GitHubError sentence."""
    cap = _answer_cap.set(max_bytes)
    try:
        async with asyncio.timeout(seconds):
            with translated(op, endpoint, secrets):
                yield
    except TimeoutError:
        sentence = f"GitHub did not answer {op} ({endpoint}) within {seconds:g} s."
        raise GitHubError(redact(sentence, list(secrets))) from None
    finally:
        _answer_cap.reset(cap)


def _declared_length(headers: httpx.Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


class _CappedStream(httpx.AsyncByteStream):
    """An answer's body that stops once more than `limit` bytes arrived."""

    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            seen += len(chunk)
            if seen > self._limit:
                raise ResponseTooLarge(self._limit)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CappedTransport(httpx.AsyncBaseTransport):
    """Honk's transport for githubkit: every answer within the current call's byte cap."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, max_bytes: int) -> None:
        self._inner = inner
        self._max_bytes = max_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        limit = _answer_cap.get() or self._max_bytes
        request.headers["Accept-Encoding"] = "identity"
        response = await self._inner.handle_async_request(request)
        declared = _declared_length(response.headers)
        if declared is not None and declared > limit:
            await response.aclose()
            raise ResponseTooLarge(limit, declared)
        if not isinstance(response.stream, httpx.AsyncByteStream):
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, limit),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
