"""Keep-alive HTTP connections shared by every short-lived client Honk's libraries create.

githubkit opens a new httpx client for each call made outside `async with`, and closes it after:
every GitHub call paid a new TCP and TLS handshake, and building and closing that client's pool
was a fifth of the CPU of a GitHub call (measured with py-spy).
`SharedTransport` outlives those clients: their `aclose()` leaves it open. Its connections belong
to one event loop each (httpcore's pool is not shared across loops), so there is a pool per loop:
DBOS runs workflows on its own loop, and the webhook server has another.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verified TLS context for all clients: httpx would load the CA bundle per client."""
    return ssl.create_default_context()


class SharedTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose connection pools (one per event loop) outlive their clients."""

    def __init__(self, *, max_connections: int = 32, keepalive_expiry_s: float = 30.0) -> None:
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry_s,
        )
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport
        ] = weakref.WeakKeyDictionary()

    def _pool(self) -> httpx.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = httpx.AsyncHTTPTransport(verify=tls_context(), limits=self._limits)
            self._pools[loop] = pool
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool().handle_async_request(request)

    async def aclose(self) -> None:
        """A client closing after one call: the connections stay for the next one."""

    async def close_current_loop(self) -> None:
        """Close this loop's connections (at shutdown); other loops' close with their loop."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()
