"""A loopback proxy to the Anthropic API, so Claude Code never holds Honk's API key.

Each run gets a token (`honk-proxy-…`) that the proxy swaps for the real key, which lives only
in this object's memory. The proxy forwards nothing but `POST /v1/messages` and
`POST /v1/messages/count_tokens`, meters each run's spend from the usage in the responses (JSON and
server-sent events alike), refuses a run's requests once its budget is spent, and forgets the token
when the run ends.

One proxy serves a whole Honk process: it runs uvicorn in its own thread with its own event loop,
so streaming model output never competes with the loop that answers GitHub, and callers on any loop
or thread may issue and revoke tokens. It listens on 127.0.0.1 and on a Unix socket; the socket is
what a sandbox without a network reaches (Claude Code's `ANTHROPIC_UNIX_SOCKET`). What it decides
without I/O (which requests pass, headers, reading usage, the meter) lives in `proxy_rules`.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from honk_app.agent.pricing import cost_usd
from honk_app.agent.proxy_rules import (
    METERED_PATH,
    Meter,
    ProxyGrant,
    StreamUsage,
    budget_message,
    downstream_headers,
    error_body,
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

CostFunction = Callable[[str, Usage], float]


@dataclass
class _Account:
    run_id: str
    token: str
    meter: Meter
    cost: CostFunction


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

    def issue(self, run_id: str, budget_usd: float, *, cost: CostFunction = cost_usd) -> ProxyGrant:
        """A fresh token for `run_id`, good until `revoke` and for `budget_usd` of spend."""
        self._require_started()
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        account = _Account(run_id, token, Meter(budget_usd=budget_usd), cost)
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
            return account.meter.snapshot() if account else None

    def revoke(self, run_id: str) -> Meter | None:
        """Refuse the run's token from now on; returns its final meter. Safe to call twice."""
        with self._lock:
            account = self._by_run.pop(run_id, None)
            if account is None:
                return None
            self._by_token.pop(account.token, None)
            return account.meter.snapshot()

    # the server (runs on the proxy's own thread and loop)

    def _app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            async with httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, trust_env=self._trust_env
            ) as client:
                self._client = client
                yield
            self._client = None

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
            if account is not None and path == METERED_PATH and account.meter.exhausted:
                account.meter.refused += 1
                refused: float | None = account.meter.budget_usd
            else:
                refused = None
        if account is None:
            return self._fail(
                401, "authentication_error", "This Honk proxy token is unknown or has expired."
            )
        if refused is not None:
            log.info("proxy refused a request of run %s: budget spent", account.run_id)
            return self._fail(402, "billing_error", budget_message(refused))
        return await self._forward(request, account)

    async def _forward(self, request: Request, account: _Account) -> Response:
        assert self._client is not None
        url = self._upstream + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self._max_body:
                return self._fail(413, "request_too_large", "The request is too large.")
        upstream = self._client.build_request(
            "POST",
            url,
            headers=upstream_headers(request.headers.items(), self._api_key),
            content=bytes(body),
        )
        try:
            response = await self._client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            log.warning("proxy could not reach the Anthropic API: %s", type(exc).__name__)
            return self._fail(502, "api_error", "Honk's proxy could not reach the Anthropic API.")
        metered = request.url.path == METERED_PATH
        headers = downstream_headers(response.headers.multi_items())
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return StreamingResponse(
                self._relay(response, account, metered),
                status_code=response.status_code,
                headers=headers,
            )
        try:
            content = await response.aread()  # decoded, whatever encoding upstream chose
        finally:
            await response.aclose()
        if metered and response.status_code == 200:
            found = message_usage(content)
            if found is not None:
                self._record(account, *found)
        return Response(content, status_code=response.status_code, headers=headers)

    async def _relay(
        self, response: httpx.Response, account: _Account, metered: bool
    ) -> AsyncIterator[bytes]:
        reader = StreamUsage()
        try:
            async for chunk in response.aiter_bytes():  # decoded, so usage is always readable
                reader.feed(chunk)
                yield chunk
        finally:
            await response.aclose()
            if metered and reader.seen:
                self._record(account, reader.model, reader.usage)

    def _record(self, account: _Account, model: str, usage: Usage) -> None:
        cost = account.cost(model, usage)
        with self._lock:
            account.meter.usage.add(usage)
            account.meter.spent_usd += cost
            account.meter.requests += 1
