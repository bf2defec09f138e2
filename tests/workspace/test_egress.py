"""The egress proxy with real sockets on loopback, and reached from inside a real bubblewrap
sandbox with a network namespace of its own. Names resolve through a resolver of the test's, so
nothing here ever asks DNS or leaves 127.0.0.1; its pure rules are tested in test_egress_rules."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from honk_app.workspace.egress import MAX_DISTINCT_REFUSALS, EgressProxy, Refusal
from honk_app.workspace.egress_rules import (
    IPAddress,
    forbidden_reason,
    parse_allow_list,
    sandbox_egress,
)
from honk_app.workspace.sandbox import bwrap_binary
from tests import needs

LOOPBACK = ipaddress.ip_address("127.0.0.1")
NAMES: dict[str, list[IPAddress]] = {
    "registry.test": [LOOPBACK],  # the upstream below
    "mixed.test": [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.5")],
}


class Upstream(ThreadingHTTPServer):
    """A package registry stand-in on 127.0.0.1 that records what reaches it."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (path, Host header)
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host", "")))
        body = f"registry says {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class Resolver:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        if host not in NAMES:
            raise OSError(f"{host} is not a test name")  # never the real DNS
        return NAMES[host]


def loopback_for_tests(address: IPAddress) -> str | None:
    """The production policy, except that the test's own upstream on 127.0.0.1 is reachable."""
    return None if address == LOOPBACK else forbidden_reason(address)


def make_proxy(upstream: Upstream, *, lenient: bool, **options: object) -> EgressProxy:
    allow = parse_allow_list(f"registry.test:{upstream.port} mixed.test 127.0.0.1:{upstream.port}")
    policy = loopback_for_tests if lenient else forbidden_reason
    return EgressProxy(allow, resolver=Resolver(), address_policy=policy, **options)  # type: ignore[arg-type]


@pytest.fixture
def strict(upstream: Upstream) -> Iterator[EgressProxy]:
    """Production's vetting: loopback is refused, whatever the allow-list says."""
    with make_proxy(upstream, lenient=False) as proxy:
        yield proxy


@pytest.fixture
def lenient(upstream: Upstream) -> Iterator[EgressProxy]:
    with make_proxy(upstream, lenient=True) as proxy:
        yield proxy


def exchange(path: Path, request: bytes, *, then: bytes = b"") -> bytes:
    """Send `request` on the run's socket (then `then`), read until the proxy closes.

    A proxy that refuses a connection on sight (too many at once) may answer and close before
    the request is written: its answer is still there to read.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(path))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            client.sendall(request)
        if then:
            reply = client.recv(4096)
            client.sendall(then)
        else:
            reply = b""
        while chunk := client.recv(65536):
            reply += chunk
    return reply


# ---- refusals, from the host side of the socket -------------------------------------------------

OFF_LIST = "host not on the egress allow-list (HONK_EGRESS_ALLOW)"


def test_a_host_off_the_list_is_refused_recorded_and_never_resolved(
    strict: EgressProxy, upstream: Upstream
) -> None:
    grant = strict.open_run("run-1")
    reply = exchange(grant.unix_socket, b"CONNECT evil.example:443 HTTP/1.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert reply.endswith(f"proxy: evil.example:443: {OFF_LIST}\n".encode())
    exchange(grant.unix_socket, b"CONNECT evil.example:443 HTTP/1.1\r\n\r\n")
    exchange(grant.unix_socket, b"GET http://10.0.0.5/ HTTP/1.1\r\n\r\n")
    exchange(grant.unix_socket, b"GET /simple/ HTTP/1.1\r\nHost: pypi.org\r\n\r\n")
    assert strict.refused("run-1") == [
        Refusal("evil.example:443", f"evil.example:443: {OFF_LIST}", 403, count=2),
        Refusal("10.0.0.5:80", f"10.0.0.5:80: {OFF_LIST.replace('host', 'IP address')}", 403),
        Refusal("-", "only absolute http:// targets (use CONNECT for https)", 400),
    ]
    assert strict.refused("another-run") == []
    assert strict._resolver.asked == [] and upstream.seen == []  # type: ignore[attr-defined]


def test_an_allowed_host_that_resolves_inward_is_refused_whatever_dns_answers(
    strict: EgressProxy, upstream: Upstream
) -> None:
    grant = strict.open_run("run-1")
    port = upstream.port
    for request in (
        f"CONNECT registry.test:{port} HTTP/1.1\r\n\r\n",  # listed, but resolves to 127.0.0.1
        f"GET http://registry.test:{port}/simple/ HTTP/1.1\r\n\r\n",
        "CONNECT mixed.test:443 HTTP/1.1\r\n\r\n",  # one public address, one private
        f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n",  # listed as an IP, still loopback
    ):
        assert exchange(grant.unix_socket, request.encode()).startswith(b"HTTP/1.1 403 ")
    where = f"registry.test:{port}"
    assert strict.refused("run-1") == [
        Refusal(where, "registry.test resolves to 127.0.0.1, a loopback address", 403, count=2),
        Refusal("mixed.test:443", "mixed.test resolves to 10.0.0.5, a private address", 403),
        Refusal(f"127.0.0.1:{port}", "127.0.0.1 resolves to 127.0.0.1, a loopback address", 403),
    ]
    assert upstream.seen == []


def test_the_production_resolver_and_policy_refuse_localhost(upstream: Upstream) -> None:
    # /etc/hosts answers for localhost: no DNS query leaves the machine
    with EgressProxy(parse_allow_list(f"localhost:{upstream.port}")) as proxy:
        grant = proxy.open_run("run-1")
        request = f"GET http://localhost:{upstream.port}/ HTTP/1.1\r\n\r\n".encode()
        assert exchange(grant.unix_socket, request).startswith(b"HTTP/1.1 403 ")
        [refusal] = proxy.refused("run-1")
    assert refusal.reason.startswith("localhost resolves to ") and "loopback" in refusal.reason
    assert upstream.seen == []


def test_a_flood_of_refusals_is_counted_not_listed(strict: EgressProxy) -> None:
    grant = strict.open_run("run-1")
    for n in range(MAX_DISTINCT_REFUSALS + 5):
        exchange(grant.unix_socket, f"CONNECT h{n}.example:443 HTTP/1.1\r\n\r\n".encode())
    report = strict.close_run("run-1")
    assert report is not None and len(report.refused) == MAX_DISTINCT_REFUSALS
    assert report.refused_omitted == 5


# ---- what passes --------------------------------------------------------------------------------


def test_a_tunnel_and_a_plain_request_reach_the_vetted_address_after_one_lookup_each(
    lenient: EgressProxy, upstream: Upstream
) -> None:
    grant = lenient.open_run("run-1")
    port = upstream.port
    tunnel = exchange(
        grant.unix_socket,
        f"CONNECT registry.test:{port} HTTP/1.1\r\nHost: registry.test\r\n\r\n".encode(),
        then=b"GET /tunnel HTTP/1.0\r\nHost: whatever\r\n\r\n",
    )
    assert tunnel.startswith(b"HTTP/1.1 200 Connection established\r\n\r\n")
    assert tunnel.endswith(b"registry says /tunnel\n")
    plain = exchange(
        grant.unix_socket,
        f"GET http://registry.test:{port}/plain?x=1 HTTP/1.1\r\nHost: evil.example\r\n"
        "Proxy-Authorization: Basic eDp5\r\n\r\n".encode(),
    )
    assert plain.startswith(b"HTTP/1.0 200 ") and plain.endswith(b"registry says /plain?x=1\n")
    assert upstream.seen == [("/tunnel", "whatever"), ("/plain?x=1", f"registry.test:{port}")]
    assert lenient._resolver.asked == ["registry.test"] * 2  # type: ignore[attr-defined]
    report = lenient.close_run("run-1")
    assert report is not None and report.refused == () and report.connections == 2
    assert report.bytes > 100


def test_closing_a_run_ends_its_tunnels_and_removes_its_socket(
    lenient: EgressProxy, upstream: Upstream
) -> None:
    grant = lenient.open_run("run-1")
    with pytest.raises(ValueError, match="already"):
        lenient.open_run("run-1")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(grant.unix_socket))
        client.sendall(f"CONNECT registry.test:{upstream.port} HTTP/1.1\r\n\r\n".encode())
        assert client.recv(100).startswith(b"HTTP/1.1 200 ")
        report = lenient.close_run("run-1")
        assert client.recv(100) == b""  # the tunnel was ended
    assert report is not None and report.connections == 1
    assert not grant.unix_socket.exists()
    assert lenient.close_run("run-1") is None and lenient.refused("run-1") == []
    assert oct(grant.unix_socket.parent.stat().st_mode & 0o777) == "0o700"


def test_connections_head_size_and_idle_time_are_bounded(upstream: Upstream) -> None:
    options = {"max_connections_per_run": 2, "max_header_bytes": 1024, "idle_timeout_s": 0.5}
    with make_proxy(upstream, lenient=True, **options) as proxy:
        grant = proxy.open_run("run-1")
        too_long = b"GET http://registry.test/" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n"
        assert exchange(grant.unix_socket, too_long).startswith(b"HTTP/1.1 400 ")
        idle = exchange(  # nothing moves through the tunnel: closed after the idle time
            grant.unix_socket, f"CONNECT registry.test:{upstream.port} HTTP/1.1\r\n\r\n".encode()
        )
        assert idle == b"HTTP/1.1 200 Connection established\r\n\r\n"
        held = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
        for client in held:
            client.connect(str(grant.unix_socket))
            client.sendall(b"CONNECT regis")  # an unfinished head holds its place
        third = exchange(grant.unix_socket, b"CONNECT registry.test:443 HTTP/1.1\r\n\r\n")
        for client in held:
            client.close()
        assert third.startswith(b"HTTP/1.1 429 Too Many Requests")
        assert [(r.status, r.reason) for r in proxy.refused("run-1")] == [
            (400, "request head over 1024 bytes"),
            (429, "more than 2 connections at once"),
        ]


def test_a_spent_byte_budget_ends_the_connection(upstream: Upstream) -> None:
    with make_proxy(upstream, lenient=True, max_bytes_per_run=60) as proxy:
        grant = proxy.open_run("run-1")
        reply = exchange(
            grant.unix_socket,
            f"GET http://registry.test:{upstream.port}/{'x' * 80} HTTP/1.1\r\n\r\n".encode(),
        )
        assert b"registry says" not in reply
        assert proxy.refused("run-1") == [
            Refusal("-", "the run's 60 bytes of egress are spent", 429)
        ]


# ---- from inside a sandbox ----------------------------------------------------------------------

CLIENT = """
import http.client, os, socket, sys, urllib.error, urllib.parse, urllib.request
port, host_port = int(sys.argv[1]), int(sys.argv[2])
url = f"http://registry.test:{port}"
print("plain:", urllib.request.urlopen(url + "/plain", timeout=10).read().decode().strip())
proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
tunnel = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=10)
tunnel.set_tunnel("registry.test", port)
tunnel.request("GET", "/tunnel")
print("tunnel:", tunnel.getresponse().read().decode().strip())
try:
    urllib.request.urlopen("http://evil.example/", timeout=10)
except urllib.error.HTTPError as refused:
    print("refused:", refused.code, refused.read().decode().strip())
try:
    socket.create_connection(("127.0.0.1", host_port), timeout=5)
    print("direct: connected")
except OSError as exc:
    print("direct:", type(exc).__name__)
"""


def in_sandbox(unix_socket: Path, command: str, port: int) -> subprocess.CompletedProcess[str]:
    """`command` in bubblewrap as Honk's sandbox builds it (no --share-net), plus the egress."""
    needs.require_bwrap()
    plumbing = sandbox_egress(unix_socket, port=port)
    argv = [bwrap_binary() or "bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
    argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    argv += [*plumbing.bwrap_args, "--", *plumbing.argv_prefix, "bash", "-c", command]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "CLIENT": CLIENT}
    env.update(plumbing.env)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_from_a_sandbox_egress_passes_only_through_the_proxy(
    lenient: EgressProxy, upstream: Upstream
) -> None:
    grant = lenient.open_run("run-1")
    port = upstream.port
    command = f'python3 -I -c "$CLIENT" {port} {port}'
    curl = shutil.which("curl")
    if curl:  # curl reads http_proxy, and -p tunnels even plain HTTP through CONNECT
        command += f"; {curl} -sS http://registry.test:{port}/curl"
        command += f"; {curl} -sS -p http://registry.test:{port}/curl-tunnel"
    done = in_sandbox(grant.unix_socket, command, 3128)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:4] == [
        "plain: registry says /plain",
        "tunnel: registry says /tunnel",
        f"refused: 403 Honk egress proxy: evil.example:80: {OFF_LIST}",
        "direct: ConnectionRefusedError",  # the host's loopback is another namespace's
    ]
    if curl:
        assert lines[4:] == ["registry says /curl", "registry says /curl-tunnel"]
    assert [r.host for r in lenient.refused("run-1")] == ["evil.example:80"]


def test_the_forwarder_exits_with_the_command_and_leaves_nothing_behind(
    strict: EgressProxy,
) -> None:
    grant = strict.open_run("run-1")
    port = 20_000 + uuid.uuid4().int % 40_000
    marker = f"honk-egress-{uuid.uuid4().hex[:12]}"
    done = in_sandbox(grant.unix_socket, f"(exec -a {marker} sleep 300) & exit 7", port)
    assert done.returncode == 7, done.stderr
    assert not live(marker) and not live(f"{port}\0/tmp/.honk-egress/proxy.sock")
    assert in_sandbox(grant.unix_socket, "kill -9 $$", port).returncode == 128 + 9


def live(fragment: str) -> list[int]:
    """Pids whose command line holds `fragment` (NUL-separated arguments)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and fragment.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in found if pid != os.getpid()]
