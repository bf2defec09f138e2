"""A loopback proxy to the Anthropic API, so Claude Code never holds Honk's API key.

Each run gets a token (`honk-proxy-…`) that the proxy swaps for the real key, which lives only
in this object's memory. The proxy forwards nothing but `POST /v1/messages` and
`POST /v1/messages/count_tokens`, and only with the tools and beta flags `proxy_rules` allows. Each
run's money is a `Ledger`: a request reserves its worst case before it is forwarded (waiting, never
holding the lock, while two are in flight or until an open one settles; refused if it cannot fit),
and is settled from the usage in the response (JSON and server-sent events alike), or charged its
reservation if the usage never arrives. The token is forgotten when the run ends.

One proxy serves a whole Honk process: it runs uvicorn in its own thread with its own event loop,
so streaming model output never competes with the loop that answers GitHub, and callers on any loop
or thread may issue and revoke tokens. It listens on 127.0.0.1 and on a Unix socket; the socket is
what a sandbox without a network reaches (Claude Code's `ANTHROPIC_UNIX_SOCKET`). What it decides
without I/O (which requests, tools and flags pass, headers, usage) lives in `proxy_rules`, and the
money in `ledger`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from honk_app.agent.ledger import Admitted, Ledger, Meter, Refused, Wait, reservation_usd
from honk_app.agent.pricing import cost_usd, fees_usd
from honk_app.agent.proxy_rules import (
    METERED_PATH,
    Billed,
    ProxyGrant,
    StreamUsage,
    downstream_headers,
    error_body,
    inspect_request,
    is_forwarded,
    message_usage,
    presented_token,
    upstream_headers,
)
from honk_app.models import Usage

log = logging.getLogger(__name__)

DEFAULT_UPSTREAM = "https://api.anthropic.com"
TOKEN_PREFIX = "honk-proxy-"  # noqa: S105 - a prefix, not a secret
MAX_BODY_BYTES = 64 * 1024 * 1024  # above the API's own request limit
UNKNOWN_TOKEN = "This Honk proxy token is unknown or has expired."  # noqa: S105 - a sentence

CostFunction = Callable[[str, Usage], float]


@dataclass
class _Account:
    run_id: str
    token: str
    ledger: Ledger
    cost: CostFunction
    allow_web: bool = False
    revoked: bool = False

    def price(self, billed: Billed) -> float:
        return self.cost(billed.model, billed.usage) + fees_usd(billed.web_searches)


class _ThreadServer(uvicorn.Server):
    """uvicorn in a thread of its own; Honk's server owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AnthropicProxy:
    """Started once per Honk process (`start()`/`stop()`, or `with`); tokens are per run."""

    def __init__(
        self,
        api_key: str,
        *,
        upstream_url: str = DEFAULT_UPSTREAM,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 600.0,
        trust_env: bool = True,  # HTTPS_PROXY and SSL_CERT_FILE, as the built-in loop's client
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        if not api_key:
            raise ValueError("The Anthropic proxy needs an API key (ANTHROPIC_API_KEY).")
        self._api_key = api_key
        self._upstream = upstream_url.rstrip("/")
        self._timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._trust_env = trust_env
        self._max_body = max_body_bytes
        self._lock = threading.Lock()
        self._by_token: dict[str, _Account] = {}
        self._by_run: dict[str, _Account] = {}
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()  # set, and replaced, whenever a reservation is freed
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._socket_dir: Path | None = None
        self._port = 0

    def __repr__(self) -> str:  # never the key
        return f"AnthropicProxy(upstream={self._upstream!r}, port={self._port})"

    # lifecycle

    @property
    def started(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        self._require_started()
        return f"http://127.0.0.1:{self._port}"

    @property
    def unix_socket(self) -> Path:
        self._require_started()
        assert self._socket_dir is not None
        return self._socket_dir / "anthropic.sock"

    def _require_started(self) -> None:
        if self._server is None:
            raise RuntimeError("The Anthropic proxy is not started.")

    def start(self, timeout_s: float = 10.0) -> AnthropicProxy:
        """Listen on 127.0.0.1 (a free port) and a private Unix socket. Safe to call twice."""
        if self._server is not None:
            return self
        self._socket_dir = Path(tempfile.mkdtemp(prefix="honk-anthropic-"))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", 0))
        self._port = int(tcp.getsockname()[1])
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(str(self._socket_dir / "anthropic.sock"))
        config = uvicorn.Config(
            self._app(),
            lifespan="on",
            log_config=None,
            access_log=False,
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        server = _ThreadServer(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [tcp, unix]}, name="honk-anthropic-proxy"
        )
        thread.daemon = True
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                shutil.rmtree(self._socket_dir, ignore_errors=True)
                raise RuntimeError("The Anthropic proxy did not start.")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        log.info("anthropic proxy listening on 127.0.0.1:%d", self._port)
        return self

    def stop(self) -> None:
        """Stop listening and forget every token. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=10)
        with self._lock:
            self._by_token.clear()
            self._by_run.clear()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def __enter__(self) -> AnthropicProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # tokens

    def issue(
        self,
        run_id: str,
        budget_usd: float,
        *,
        allow_web: bool = False,
        cost: CostFunction = cost_usd,
    ) -> ProxyGrant:
        """A fresh token for `run_id`, good until `revoke` and for `budget_usd` of spend;
        `allow_web` (the repository's config) lets its requests use web search and fetch."""
        self._require_started()
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        account = _Account(run_id, token, Ledger(budget_usd), cost, allow_web)
        with self._lock:
            if run_id in self._by_run:
                raise ValueError(f"Run {run_id} already holds a proxy token.")
            self._by_run[run_id] = account
            self._by_token[token] = account
        return ProxyGrant(run_id, token, self.base_url, self.unix_socket)

    def meter(self, run_id: str) -> Meter | None:
        """The run's spend so far (a copy), or None if the run holds no token."""
        with self._lock:
            account = self._by_run.get(run_id)
            return account.ledger.snapshot() if account else None

    def revoke(self, run_id: str) -> Meter | None:
        """Refuse the run's token from now on; returns its final meter, with requests still in
        flight charged their reservations. Safe to call twice."""
        with self._lock:
            account = self._by_run.pop(run_id, None)
            if account is None:
                return None
            self._by_token.pop(account.token, None)
            account.revoked = True
            account.ledger.charge_open()
            final = account.ledger.snapshot()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake)  # its waiting requests give up
        return final

    # the server (runs on the proxy's own thread and loop)

    def _app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, trust_env=self._trust_env
            ) as client:
                self._client, self._loop = client, asyncio.get_running_loop()
                self._changed = asyncio.Event()
                yield
            self._client = self._loop = None

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        return Starlette(
            routes=[Route("/{path:path}", self._handle, methods=methods)], lifespan=lifespan
        )

    def _fail(self, status: int, type_: str, message: str) -> JSONResponse:
        return JSONResponse(
            error_body(type_, message), status_code=status, headers={"x-should-retry": "false"}
        )

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        if not is_forwarded(request.method, path):
            return self._fail(404, "not_found_error", "Honk's proxy serves only the Messages API.")
        token = presented_token(request.headers)
        with self._lock:
            account = self._by_token.get(token) if token else None
        if account is None:
            return self._fail(401, "authentication_error", UNKNOWN_TOKEN)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self._max_body:
                return self._fail(413, "request_too_large", "The request is too large.")
        metered = path == METERED_PATH
        inspected = inspect_request(bytes(body), allow_web=account.allow_web, metered=metered)
        if isinstance(inspected, str):
            log.info("proxy refused a request of run %s: %s", account.run_id, inspected)
            return self._fail(400, "invalid_request_error", inspected)
        if not metered:
            return await self._forward(request, account, inspected.body, None)
        admission = await self._admit(account, reservation_usd(inspected.cost))
        if admission is None:
            return self._fail(401, "authentication_error", UNKNOWN_TOKEN)
        if isinstance(admission, Refused):
            log.info("proxy refused a request of run %s: over budget", account.run_id)
            return self._fail(402, "billing_error", admission.message)
        try:
            return await self._forward(request, account, inspected.body, admission.ticket)
        except BaseException:  # cancelled mid-way: it may have been billed (a no-op if settled)
            self._close(account, admission.ticket, None, pay=True)
            raise

    async def _admit(self, account: _Account, reservation: float) -> Admitted | Refused | None:
        """Reserve, waiting while the run's requests in flight leave no room; None if revoked."""
        while True:
            with self._lock:
                if account.revoked:
                    return None
                admission = account.ledger.admit(reservation)
                changed = self._changed
            if not isinstance(admission, Wait):
                return admission
            await changed.wait()  # without the lock: `_wake` on this loop sets it

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _close(
        self, account: _Account, ticket: int | None, billed: Billed | None, *, pay: bool
    ) -> None:
        """Settle a reservation: from `billed` if final, else charge it (`pay`) or free it."""
        if ticket is None:
            return
        with self._lock:
            if billed is not None:
                account.ledger.settle(
                    ticket, account.price(billed), billed.usage, web_searches=billed.web_searches
                )
            elif pay:
                account.ledger.charge(ticket)
            else:
                account.ledger.release(ticket)
        self._wake()

    async def _forward(
        self, request: Request, account: _Account, body: bytes, ticket: int | None
    ) -> Response:
        assert self._client is not None
        query = request.url.query
        url = self._upstream + request.url.path + (f"?{query}" if query else "")
        headers = upstream_headers(
            request.headers.items(), self._api_key, allow_web=account.allow_web
        )
        upstream = self._client.build_request("POST", url, headers=headers, content=body)
        try:
            response = await self._client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            log.warning("proxy could not reach the Anthropic API: %s", type(exc).__name__)
            # never sent: nothing to pay; sent and lost: the API may have worked, so pay
            self._close(account, ticket, None, pay=not isinstance(exc, httpx.ConnectError))
            return self._fail(502, "api_error", "Honk's proxy could not reach the Anthropic API.")
        if response.status_code != 200:  # the API charges nothing for a refused request
            self._close(account, ticket, None, pay=False)
            ticket = None
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return _RelayedStream(self, account, ticket, response)
        try:
            content = await response.aread()  # decoded, whatever encoding upstream chose
        except httpx.HTTPError:
            self._close(account, ticket, None, pay=True)
            return self._fail(502, "api_error", "Honk's proxy lost the Anthropic API's answer.")
        finally:
            await response.aclose()
        self._close(account, ticket, message_usage(content), pay=True)
        headers_out = downstream_headers(response.headers.multi_items())
        return Response(content, status_code=response.status_code, headers=headers_out)


class _RelayedStream(StreamingResponse):
    """One stream passing through: its usage is read as it passes, and however it ends (even if
    the client left before the first byte), its reservation is settled exactly once."""

    def __init__(
        self, proxy: AnthropicProxy, account: _Account, ticket: int | None, upstream: httpx.Response
    ) -> None:
        self.proxy, self.account, self.ticket, self.upstream = proxy, account, ticket, upstream
        self.reader = StreamUsage()
        self.settled = False
        self.chunks = self._chunks()
        headers = downstream_headers(upstream.headers.multi_items())
        super().__init__(self.chunks, status_code=upstream.status_code, headers=headers)

    async def _chunks(self) -> AsyncGenerator[bytes]:
        try:
            async for chunk in self.upstream.aiter_bytes():  # decoded: usage is always readable
                self.reader.feed(chunk)
                yield chunk
        except httpx.HTTPError as exc:  # upstream failed mid-way: the client sees a cut stream
            log.warning("proxy lost an Anthropic API stream: %s", type(exc).__name__)
        self.settle()  # before the client reads the end of the stream

    def settle(self) -> None:
        if not self.settled:
            self.settled = True
            reader = self.reader
            billed = reader.billed if reader.final and not reader.failed else None
            self.proxy._close(self.account, self.ticket, billed, pay=True)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.settle()
            with contextlib.suppress(Exception):
                await self.chunks.aclose()
            with contextlib.suppress(Exception):
                await self.upstream.aclose()
