"""Honk's egress proxy: the only way out of a sandbox that asked for network.

A sandboxed command never shares the host's network. With egress it gets its own network
namespace (only loopback) and reaches this proxy through a Unix socket bound into the sandbox;
a forwarder inside (`egress_forwarder.py`, see `sandbox_egress`) turns the socket back into
`http://127.0.0.1:PORT`, which HTTP_PROXY/HTTPS_PROXY name. The proxy tunnels `CONNECT host:port`
(no TLS interception) and forwards absolute-form plain HTTP, nothing else, and only when:
- the host is on the allow-list (`HONK_EGRESS_ALLOW`, `parse_allow_list`), the port 80/443 or the
  one the entry names, an IP literal only if listed as such;
- every address it resolves to is public (`forbidden_reason`: never loopback, link-local, cloud
  metadata, private or reserved ranges), and the connection goes to that vetted address, never
  to a second lookup (DNS rebinding).
What it refuses is recorded per run for the run's report.

One proxy serves the Honk process, on a thread and event loop of its own (like the Anthropic
proxy: package downloads never compete with the loop that answers GitHub). Each run gets a socket
of its own (`open_run`), so the socket a sandbox holds is its identity: no token to leak, limits
and refusals counted per run, and `close_run` ends the run's connections. The sockets live in a
0700 dir under /tmp, which every sandbox replaces with an empty tmpfs: no sandbox sees another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from honk_app.workspace.egress_rules import (
    AllowRule,
    IPAddress,
    Refused,
    Target,
    check_target,
    forbidden_reason,
    parse_allow_list,
    parse_head,
    printable,
    refusal_response,
    vet_addresses,
)

log = logging.getLogger("honk.egress")

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
AddressPolicy = Callable[[IPAddress], str | None]

MAX_DISTINCT_REFUSALS = 50  # per run: the report lists these, with counts
CHUNK = 65_536


# ---- resolution ---------------------------------------------------------------------------------


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host` (production's resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


# ---- per-run accounting -------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    host: str  # host:port as asked ("-" when the request said none), printable, truncated
    reason: str
    status: int  # 403/429: policy; 400/405: not a proxy request; 502: resolving or connecting
    count: int = 1


@dataclass(frozen=True)
class EgressGrant:
    run_id: str
    unix_socket: Path  # host path: give it to `sandbox_egress`


@dataclass(frozen=True)
class EgressReport:
    run_id: str
    refused: tuple[Refusal, ...]
    refused_omitted: int  # distinct refusals beyond MAX_DISTINCT_REFUSALS
    connections: int
    bytes: int


@dataclass(eq=False)
class _Run:
    run_id: str
    rules: tuple[AllowRule, ...]
    socket_path: Path
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    refusals: dict[tuple[str, str, int], int] = field(default_factory=dict)
    omitted: int = 0
    active: int = 0
    connections: int = 0
    bytes: int = 0
    closed: bool = False


@dataclass
class _Activity:
    last: float = field(default_factory=time.monotonic)


# ---- the proxy ----------------------------------------------------------------------------------


class EgressProxy:
    """Started once per Honk process (`start()`/`stop()`, or `with`); sockets are per run.
    Every public method is thread-safe and may be called from any thread or event loop;
    `open_run` and `close_run` block for one hop to the proxy's loop (about a millisecond)."""

    def __init__(
        self,
        allow: Sequence[AllowRule] | None = None,
        *,
        resolver: Resolver = resolve,
        address_policy: AddressPolicy = forbidden_reason,
        max_header_bytes: int = 32_768,
        max_connections_per_run: int = 64,
        max_bytes_per_run: int | None = None,
        idle_timeout_s: float = 120.0,
        connect_timeout_s: float = 15.0,
        header_timeout_s: float = 30.0,
        socket_parent: Path = Path("/tmp"),  # noqa: S108 - emptied in every sandbox, see above
    ) -> None:
        self.allow = tuple(parse_allow_list(None) if allow is None else allow)
        self._resolver = resolver
        self._policy = address_policy
        self._max_header = max_header_bytes
        self._max_connections = max_connections_per_run
        self._max_bytes = max_bytes_per_run
        self._idle_s = idle_timeout_s
        self._connect_s = connect_timeout_s
        self._header_s = header_timeout_s
        self._socket_parent = socket_parent
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._root: Path | None = None

    def __repr__(self) -> str:
        return f"EgressProxy(allow={[str(rule) for rule in self.allow]!r})"

    # lifecycle

    def start(self) -> EgressProxy:
        """Start the proxy's thread and loop. Safe to call twice."""
        if self._loop is not None:
            return self
        self._root = Path(tempfile.mkdtemp(prefix="honk-egress-", dir=self._socket_parent))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="honk-egress-proxy", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """End every run's connections, stop the thread, remove the sockets. Safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        for run_id in list(self._runs):
            self.close_run(run_id)
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> EgressProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[object, object, None]) -> None:
        if self._loop is None:
            coro.close()
            raise RuntimeError("The egress proxy is not started.")
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    # runs

    def open_run(self, run_id: str, *, allow: Sequence[AllowRule] | None = None) -> EgressGrant:
        """A socket of the run's own, serving `allow` (default: the proxy's allow-list)."""
        if self._root is None:
            raise RuntimeError("The egress proxy is not started.")
        path = self._root / f"{secrets.token_hex(8)}.sock"
        run = _Run(run_id, tuple(self.allow if allow is None else allow), path)
        with self._lock:
            if run_id in self._runs:
                raise ValueError(f"Run {run_id} already has an egress socket.")
            self._runs[run_id] = run
        try:
            self._call(self._listen(run))
        except BaseException:
            with self._lock:
                self._runs.pop(run_id, None)
            raise
        return EgressGrant(run_id, path)

    def refused(self, run_id: str) -> list[Refusal]:
        """What the proxy refused this run so far, first refusal first."""
        with self._lock:
            run = self._runs.get(run_id)
            items = list(run.refusals.items()) if run else []
        return [Refusal(*key, count=count) for key, count in items]

    def close_run(self, run_id: str) -> EgressReport | None:
        """Stop serving the run and end its connections; its final report. Safe to call twice."""
        with self._lock:
            run = self._runs.pop(run_id, None)
            if run is None:
                return None
            run.closed = True  # a connection accepted but not yet handled is ended too
        if self._loop is not None:
            self._call(self._shut(run))
        with self._lock:
            refused = tuple(Refusal(*key, count=n) for key, n in run.refusals.items())
            return EgressReport(run_id, refused, run.omitted, run.connections, run.bytes)

    async def _listen(self, run: _Run) -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(run, reader, writer)

        run.server = await asyncio.start_unix_server(
            serve, path=str(run.socket_path), limit=self._max_header
        )
        run.socket_path.chmod(0o600)

    async def _shut(self, run: _Run) -> None:
        if run.server is not None:
            run.server.close()
        for task in list(run.tasks):
            task.cancel()
        await asyncio.gather(*run.tasks, return_exceptions=True)
        run.socket_path.unlink(missing_ok=True)

    def _record(self, run: _Run, host: str, reason: str, status: int) -> None:
        key = (printable(host) or "-", reason, status)
        with self._lock:
            first = key not in run.refusals and len(run.refusals) < MAX_DISTINCT_REFUSALS
            if first or key in run.refusals:
                run.refusals[key] = run.refusals.get(key, 0) + 1
            else:
                run.omitted += 1
        if first:  # once per host and reason: a loop of refused requests does not flood the log
            log.info("egress refused for run %s: %s (%s)", run.run_id, key[0], reason)

    # one connection

    async def _serve(
        self, run: _Run, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        run.tasks.add(task)
        with self._lock:
            admitted = run.active < self._max_connections and not run.closed
            run.active += admitted
            run.connections += admitted
        try:
            if run.closed:
                return
            if not admitted:
                limit = f"more than {self._max_connections} connections at once"
                raise Refused(429, limit)
            await self._handle(run, reader, writer)
        except Refused as refused:
            self._record(run, refused.host, refused.reason, refused.status)
            with contextlib.suppress(OSError):
                writer.write(refusal_response(refused.status, refused.reason))
                await asyncio.wait_for(writer.drain(), 5)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client or upstream went away, or stalled
        finally:
            with self._lock:
                run.active -= admitted
            writer.close()
            run.tasks.discard(task)

    async def _handle(
        self, run: _Run, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._header_s)
        except asyncio.LimitOverrunError as exc:
            raise Refused(400, f"request head over {self._max_header} bytes") from exc
        target = parse_head(head)
        reason = check_target(run.rules, target.host, target.port)
        if reason is not None:
            raise Refused(403, reason, target.where)
        addresses = await self._addresses(target)
        reason = vet_addresses(target.host, addresses, self._policy)
        if reason is not None:
            raise Refused(403, reason, target.where)
        up_reader, up_writer = await self._connect(addresses, target)
        try:
            if target.forward_head is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up_writer.write(target.forward_head)
            await self._relay(run, (reader, up_writer), (up_reader, writer))
        finally:
            up_writer.close()

    async def _addresses(self, target: Target) -> list[IPAddress]:
        with contextlib.suppress(ValueError):
            return [ipaddress.ip_address(target.host)]  # a listed IP literal: nothing to resolve
        try:
            found = await asyncio.wait_for(
                self._resolver(target.host, target.port), self._connect_s
            )
        except (OSError, TimeoutError) as exc:
            raise Refused(502, f"{target.host} does not resolve", target.where) from exc
        if not found:
            raise Refused(502, f"{target.host} does not resolve", target.where)
        return found

    async def _connect(
        self, addresses: list[IPAddress], target: Target
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        for address in addresses:  # the vetted literals: no second lookup can rebind the name
            with contextlib.suppress(OSError, TimeoutError):
                return await asyncio.wait_for(
                    asyncio.open_connection(
                        str(address), target.port, flags=socket.AI_NUMERICHOST, limit=CHUNK
                    ),
                    self._connect_s,
                )
        raise Refused(502, f"could not connect to {target.where}", target.where)

    async def _relay(
        self, run: _Run, *pairs: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    ) -> None:
        activity = _Activity()
        pumps = [asyncio.ensure_future(self._pump(run, src, dst, activity)) for src, dst in pairs]
        try:
            await asyncio.gather(*pumps)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    async def _pump(
        self,
        run: _Run,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        activity: _Activity,
    ) -> None:
        """Copy one direction; idle means neither direction moved for `idle_timeout_s`."""
        while True:
            try:
                chunk = await asyncio.wait_for(source.read(CHUNK), self._idle_s)
            except TimeoutError:
                if time.monotonic() - activity.last < self._idle_s:
                    continue  # the other direction is busy (a long download)
                raise
            if not chunk:
                break
            activity.last = time.monotonic()
            with self._lock:
                run.bytes += len(chunk)
                over = self._max_bytes is not None and run.bytes > self._max_bytes
            if over:
                spent = f"the run's {self._max_bytes} bytes of egress are spent"
                self._record(run, "-", spent, 429)
                raise ConnectionAbortedError
            sink.write(chunk)
            await asyncio.wait_for(sink.drain(), self._idle_s)
        if sink.can_write_eof():
            with contextlib.suppress(OSError):
                sink.write_eof()  # half-close: the other direction may still be talking
