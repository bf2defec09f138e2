"""How fast Honk answers GitHub: throughput and latency of the webhook path, against a floor.

Starts a real `honk serve` (embedded defaults: SQLite in a temp HONK_DATA_DIR) wired to a fake
GitHub and a fake Anthropic API served in this process, and bench/_minimal_app.py (HMAC check
only) under the same uvicorn settings, then drives both over loopback with signed deliveries from
a load generator that runs in its own process (asyncio protocols on uvloop, keep-alive
connections, bodies signed ahead of time). Phases, each side in alternating rounds:

- non-trigger: `issue_comment.created` without `/honk` (Honk parses, decides, answers 200);
- busy: the same while two runs work (a scripted agent taking many short turns);
- trigger: `/honk …` comments on distinct issues, each a durable DBOS enqueue (answer 202).

    python bench/webhook_ingest.py [--duration 10] [--connections 16] [--quick]

Prints a table (median of the rounds), PASS/MISS per target, and how much CPU the server and the
load generator used, so a saturated load generator would show. Always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 0.85  # honk / minimal throughput, non-trigger events
TARGET_TRIGGER_P99_MS = 25.0
TARGET_BUSY_P99_MS = 50.0
WEBHOOK_PATH = "/api/github/webhooks"
BUSY_COMMAND = "sleep 0.1; ls -la; head -c 400 calc.py"
HONK_YML = "test: 'true'\nmax_turns: 200\nmax_cost_usd: 100\n"
CALC = "def add(a, b):\n    return a + b\n"


# ---------------------------------------------------------------------------------------------
# Pure helpers: request framing and figures


def http_request(port: int, event: str, body: bytes, secret: bytes) -> bytes:
    """One signed delivery as GitHub frames it, ready to write to a keep-alive connection."""
    from honk_app.webhooks import sign

    headers = [
        f"POST {WEBHOOK_PATH} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "User-Agent: GitHub-Hookshot/bench",
        "Accept: */*",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        f"X-GitHub-Delivery: {uuid.uuid4()}",
        f"X-GitHub-Event: {event}",
        "X-GitHub-Hook-ID: 123456789",
        "X-GitHub-Hook-Installation-Target-ID: 424242",
        "X-GitHub-Hook-Installation-Target-Type: integration",
        f"X-Hub-Signature-256: {sign(secret, body)}",
    ]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def write_pool(path: Path, requests: list[bytes]) -> None:
    """Length-prefixed requests, read back by the load generator process."""
    with path.open("wb") as out:
        for request in requests:
            out.write(struct.pack(">I", len(request)))
            out.write(request)


def read_pool(path: Path) -> list[bytes]:
    data = path.read_bytes()
    requests, at = [], 0
    while at < len(data):
        (size,) = struct.unpack_from(">I", data, at)
        requests.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return requests


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass(frozen=True)
class Load:
    """One load generator run against one server."""

    count: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    errors: int
    used: int  # requests taken from the pool, including warm-up ones
    server_cpu: float  # cores used by the server process during the window
    loadgen_cpu: float  # cores used by the load generator
    machine_busy: float  # share of all cores busy (everything on the machine)

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def median_load(rounds: list[Load]) -> Load:
    """The median of each figure across rounds (the machine is shared: rounds vary)."""

    def med(name: str) -> float:
        return float(statistics.median(getattr(r, name) for r in rounds))

    statuses: Counter[str] = Counter()
    for r in rounds:
        statuses.update(r.statuses)
    return Load(
        count=round(statistics.median(r.count for r in rounds)),
        seconds=med("seconds"),
        p50_ms=med("p50_ms"),
        p99_ms=med("p99_ms"),
        max_ms=max(r.max_ms for r in rounds),
        statuses=dict(statuses),
        errors=sum(r.errors for r in rounds),
        used=sum(r.used for r in rounds),
        server_cpu=med("server_cpu"),
        loadgen_cpu=med("loadgen_cpu"),
        machine_busy=med("machine_busy"),
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# ---------------------------------------------------------------------------------------------
# The load generator (runs in its own process: `--loadgen SPEC`)


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class _Connection(asyncio.Protocol):
    """One keep-alive connection with one request in flight (closed loop)."""

    def __init__(self, run: _LoadRun) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.expected: int | None = None
        self.status = ""
        self.busy = False  # a request is in flight
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.expected is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                raise RuntimeError("response without content-length")
            length = int(head[at + 17 :].split(b"\r\n", 1)[0])
            self.status = head[9:12].decode()
            self.expected = end + 4 + length
        if len(self.buffer) >= self.expected:
            self.buffer = self.buffer[self.expected :]
            self.expected = None
            self.busy = False
            self.run.completed(self, self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.lost(self)

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.busy = True
        self.started = time.perf_counter()
        self.transport.write(request)


class _LoadRun:
    def __init__(self, requests: list[bytes], spec: dict[str, Any]) -> None:
        self.requests = requests
        self.cycle: bool = spec["cycle"]
        self.next_index = 0
        self.window_start = 0.0
        self.window_end = float("inf")
        self.stopping = False
        self.in_flight = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.last_completion = 0.0
        self.done = asyncio.get_running_loop().create_future()

    def next_request(self) -> bytes | None:
        if self.next_index >= len(self.requests):
            if not self.cycle:
                return None
            self.next_index = 0
        request = self.requests[self.next_index]
        self.next_index += 1
        return request

    def send(self, conn: _Connection) -> None:
        request = None if self.stopping else self.next_request()
        if request is None:
            self.stopping = True
            self._maybe_done()
            return
        self.in_flight += 1
        conn.send(request)

    def completed(self, conn: _Connection, status: str) -> None:
        now = time.perf_counter()
        self.in_flight -= 1
        if self.window_start <= now <= self.window_end:
            self.latencies.append((now - conn.started) * 1000)
            self.statuses[status] += 1
            self.last_completion = now
        if now >= self.window_end:
            self.stopping = True
        self.send(conn)

    def lost(self, conn: _Connection) -> None:
        if conn.busy:  # the server closed a connection with a request in flight
            conn.busy = False
            self.in_flight -= 1
            self.errors += 1
        self.stopping = True
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.stopping and self.in_flight <= 0 and not self.done.done():
            self.done.set_result(None)


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    requests = read_pool(Path(spec["pool"]))[spec["start"] :]
    loop = asyncio.get_running_loop()
    run = _LoadRun(requests, spec)
    connections = []
    for _ in range(spec["connections"]):
        _, conn = await loop.create_connection(
            lambda: _Connection(run), "127.0.0.1", spec["port"]
        )
        connections.append(conn)
    begin = time.perf_counter()
    run.window_start = begin + spec["warmup"]
    run.window_end = run.window_start + spec["duration"]
    for conn in connections:
        run.send(conn)
    await asyncio.sleep(max(0.0, run.window_start - time.perf_counter()))
    cpu0 = (time.process_time(), _process_cpu(spec["server_pid"]), _machine_ticks())
    started = time.perf_counter()
    try:  # ends early only when a pool of distinct requests runs out
        await asyncio.wait_for(asyncio.shield(run.done), spec["duration"])
        seconds = max(run.last_completion - started, 1e-9)
    except TimeoutError:
        seconds = time.perf_counter() - started
    cpu1 = (time.process_time(), _process_cpu(spec["server_pid"]), _machine_ticks())
    run.stopping = True
    run._maybe_done()
    try:
        await asyncio.wait_for(run.done, 30)
    except TimeoutError:
        run.errors += run.in_flight
    for conn in connections:
        if conn.transport is not None:
            conn.transport.close()
    latencies = sorted(run.latencies)
    busy = (cpu1[2][0] - cpu0[2][0]) / max(1, cpu1[2][1] - cpu0[2][1])
    return {
        "count": len(latencies),
        "seconds": seconds,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": latencies[-1] if latencies else float("nan"),
        "statuses": dict(run.statuses),
        "errors": run.errors,
        "used": run.next_index,
        "server_cpu": (cpu1[1] - cpu0[1]) / max(seconds, 1e-9),
        "loadgen_cpu": (cpu1[0] - cpu0[0]) / max(seconds, 1e-9),
        "machine_busy": busy,
    }


def loadgen_main(spec_path: str) -> None:
    import uvloop

    spec = json.loads(Path(spec_path).read_text())
    result = uvloop.run(_drive(spec))
    print(json.dumps(result))


def run_load(
    tmp: Path, port: int, pid: int, pool: Path, *, start: int = 0, cycle: bool,
    connections: int, duration: float, warmup: float,
) -> Load:
    """Drive one server from a fresh load generator process and return its figures."""
    spec = {
        "pool": str(pool), "start": start, "cycle": cycle, "port": port, "server_pid": pid,
        "connections": connections, "duration": duration, "warmup": warmup,
    }
    spec_path = tmp / f"spec-{uuid.uuid4().hex}.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, __file__, "--loadgen", str(spec_path)],
        capture_output=True, text=True, timeout=duration + warmup + 90, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.strip()[-2000:]}")
    return Load(**json.loads(done.stdout))
