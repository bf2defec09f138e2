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

The machine this runs on is shared and its speed drifts from second to second (the minimal app
alone has measured anywhere from 1,700 to 4,900 answers a second). So the rounds are short and
many, each Honk round is paired with the minimal app's round right after it, and the throughput
ratio is the median of those pairs' ratios; the ratio of the two medians is printed beside it.
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
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from honk_app.settings import Settings as HonkSettings
from honk_app.webhooks import sign
from tests.fakes import anthropic as fa
from tests.fakes.loopback import free_port
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, WEBHOOK_SECRET, World

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.85  # honk / minimal throughput, non-trigger events
TARGET_TRIGGER_P99_MS = 25.0
TARGET_BUSY_P99_MS = 50.0
PACED_TRIGGER_RATE = 10.0  # triggers per second: far more than one organisation sends
WEBHOOK_PATH = "/api/github/webhooks"
BUSY_COMMAND = "sleep 0.1; ls -la; head -c 400 calc.py"
HONK_YML = "test: 'true'\nmax_turns: 200\nmax_cost_usd: 100\n"
CALC = "def add(a, b):\n    return a + b\n"
PHASES = frozenset({"idle", "busy", "trigger"})
NON_TRIGGER = "non-trigger"
ROUNDS = 10  # per server per phase: short rounds, so each pair sees the same machine


# ---------------------------------------------------------------------------------------------
# Pure helpers: request framing and figures


def http_request(event: str, body: bytes, secret: bytes) -> bytes:
    """One signed delivery as GitHub frames it, ready to write to a keep-alive connection."""
    headers = [
        f"POST {WEBHOOK_PATH} HTTP/1.1",
        "Host: 127.0.0.1",
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

    count: int  # answers within the measured window
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    errors: int
    used: int  # requests taken from the pool, including warm-up ones
    server_cpu: float  # cores used by the server process during the window
    loadgen_cpu: float  # cores used by the load generator
    machine_busy: float  # share of all cores busy (everything on the machine)


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
        rps=med("rps"),
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


def paired_ratios(honk: list[Load], minimal: list[Load]) -> list[float]:
    """Honk's throughput over the minimal app's, round by round (each pair ran back to back)."""
    return [h.rps / m.rps for h, m in zip(honk, minimal, strict=False) if m.rps > 0]


def split_cpus() -> set[int]:
    """Keep this process (the fakes) and the load generators it starts off the last CPU, and
    return that CPU for the servers: both then run on the same core, which on a shared virtual
    machine is not always as fast as the other. Empty on one CPU or off Linux."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        return set()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set()
    os.sched_setaffinity(0, set(cpus[:-1]))
    return {cpus[-1]}


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of a running process (the threads and processes it starts later inherit)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:  # a thread that has just ended
            continue


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
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, run: _LoadRun) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.expected: int | None = None
        self.status = ""
        self.busy = False  # a request is in flight
        self.started = 0.0  # when the request was due (paced) or sent (closed loop)
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

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

    def send(self, request: bytes, due: float) -> None:
        assert self.transport is not None
        self.timer = None
        self.busy = True
        self.started = due
        self.transport.write(request)


class _LoadRun:
    """Closed loop (each connection sends again on each answer) or paced at `rate` per second.

    Paced latencies count from when a request was due, not when it went out, so a server that
    stalls is charged for the requests it delayed (no coordinated omission).
    """

    def __init__(self, requests: list[bytes], spec: dict[str, Any]) -> None:
        self.requests = requests
        self.cycle: bool = spec["cycle"]
        rate = float(spec.get("rate") or 0)
        self.interval = spec["connections"] / rate if rate > 0 else 0.0
        self.next_index = 0
        self.window_start = 0.0
        self.window_end = float("inf")
        self.stopping = False
        self.in_flight = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.last_completion = 0.0
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()

    def next_request(self) -> bytes | None:
        if self.next_index >= len(self.requests):
            if not self.cycle:
                return None
            self.next_index = 0
        request = self.requests[self.next_index]
        self.next_index += 1
        return request

    def send(self, conn: _Connection, due: float | None = None) -> None:
        """Send now, or at `due` when paced."""
        now = time.perf_counter()
        if due is not None and due > now:
            conn.timer = self.loop.call_later(due - now, self.send, conn, due)
            return
        request = None if self.stopping else self.next_request()
        if request is None:
            self.stopping = True
            self._maybe_done()
            return
        self.in_flight += 1
        conn.send(request, now if due is None else due)

    def completed(self, conn: _Connection, status: str) -> None:
        now = time.perf_counter()
        self.in_flight -= 1
        if self.window_start <= now <= self.window_end:
            self.latencies.append((now - conn.started) * 1000)
            self.statuses[status] += 1
            self.last_completion = now
        if now >= self.window_end:
            self.stopping = True
        self.send(conn, conn.started + self.interval if self.interval else None)

    def lost(self, conn: _Connection) -> None:
        if conn.busy:  # the server closed a connection with a request in flight
            conn.busy = False
            self.in_flight -= 1
            self.errors += 1
        self.stopping = True
        self._maybe_done()

    def stop(self, connections: list[_Connection]) -> None:
        self.stopping = True
        for conn in connections:
            if conn.timer is not None:
                conn.timer.cancel()
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
        _, conn = await loop.create_connection(lambda: _Connection(run), "127.0.0.1", spec["port"])
        connections.append(conn)
    begin = time.perf_counter()
    run.window_start = begin + spec["warmup"]
    run.window_end = run.window_start + spec["duration"]
    for i, conn in enumerate(connections):  # paced connections start staggered
        run.send(conn, begin + i * run.interval / len(connections) if run.interval else None)
    await asyncio.sleep(max(0.0, run.window_start - time.perf_counter()))
    cpu0 = (time.process_time(), _process_cpu(spec["server_pid"]), _machine_ticks())
    started = time.perf_counter()
    try:  # ends early only when a pool of distinct requests runs out
        await asyncio.wait_for(asyncio.shield(run.done), spec["duration"])
        seconds = max(run.last_completion - started, 1e-9)
    except TimeoutError:
        seconds = time.perf_counter() - started
    cpu1 = (time.process_time(), _process_cpu(spec["server_pid"]), _machine_ticks())
    run.stop(connections)
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
        "rps": len(latencies) / seconds,
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
    tmp: Path,
    port: int,
    pid: int,
    pool: Path,
    *,
    start: int = 0,
    cycle: bool,
    connections: int,
    duration: float,
    warmup: float,
    rate: float = 0.0,
) -> Load:
    """Drive one server from a fresh load generator process and return its figures."""
    spec = {
        "pool": str(pool),
        "start": start,
        "cycle": cycle,
        "port": port,
        "server_pid": pid,
        "connections": connections,
        "duration": duration,
        "warmup": warmup,
        "rate": rate,
    }
    spec_path = tmp / f"spec-{uuid.uuid4().hex}.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, __file__, "--loadgen", str(spec_path)],
        capture_output=True,
        text=True,
        timeout=duration + warmup + 90,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.strip()[-2000:]}")
    return Load(**json.loads(done.stdout))


# ---------------------------------------------------------------------------------------------
# The world: fakes in this process, Honk and the minimal app as subprocesses


class BenchWorld(World):
    """The end-to-end tests' world; its model keeps runs busy (many short turns) when asked."""

    def __init__(self, tmp: Path) -> None:
        self.busy = False
        self.busy_turns = 0
        super().__init__(tmp)
        # Honk's embedded defaults, not the tests' faster queue polling.
        default_poll = HonkSettings.model_fields["HONK_POLL_INTERVAL_S"].default
        self.extra_env = {"HONK_POLL_INTERVAL_S": str(default_poll), "HONK_EXECUTOR_ID": "bench"}

    def _respond(self, request: dict[str, Any]) -> fa.Reply:
        if not request.get("tools"):
            return fa.text("ok")
        if self.busy:
            self.busy_turns += 1
            return fa.tool_use("bash", {"command": BUSY_COMMAND})
        return fa.text("Nothing to change here.")

    def comment_payload(self, number: int, body: str) -> dict[str, Any]:
        """A new comment on the fake GitHub and the `issue_comment.created` delivery for it."""
        posted = self.github.add_comment(REPO, number, body=body, user=SENDER)
        return self.point(payloads.issue_comment(body, comment_id=posted.id), number)


@dataclass
class Server:
    name: str
    port: int
    pid: int


class MinimalApp:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.log = (tmp / "minimal.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "_minimal_app.py"), "--port", str(self.port)],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "WEBHOOK_SECRET": WEBHOOK_SECRET},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        import httpx

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError("the minimal app exited; see minimal.log")
            try:
                url = f"http://127.0.0.1:{self.port}/healthz"
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        World.wait(answers, what="the minimal app", timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


def non_trigger_pool(w: BenchWorld, size: int = 256) -> list[bytes]:
    """Ordinary discussion: comments without `/honk` on one issue (Honk answers 200 ignored)."""
    secret = WEBHOOK_SECRET.encode()
    number = w.github.add_issue(REPO, title="a discussion", user=SENDER)
    return [
        http_request(
            "issue_comment",
            json.dumps(
                w.point(payloads.issue_comment(f"Looks good to me ({i})."), number)
            ).encode(),
            secret,
        )
        for i in range(size)
    ]


def trigger_pool(w: BenchWorld, size: int) -> list[bytes]:
    """`/honk …` comments, each on its own issue, so each is a new durable run."""
    secret = WEBHOOK_SECRET.encode()
    pool = []
    for i in range(size):
        number = w.github.add_issue(REPO, title=f"bench issue {i}", user=SENDER)
        payload = w.comment_payload(number, f"/honk tidy up the README ({i})")
        pool.append(http_request("issue_comment", json.dumps(payload).encode(), secret))
    return pool


# ---------------------------------------------------------------------------------------------
# Phases


@dataclass
class Pool:
    """Signed deliveries in a file for the load generator; distinct ones are used once each."""

    path: Path
    size: int
    distinct: bool
    offset: int = 0

    @classmethod
    def write(cls, path: Path, requests: list[bytes], *, distinct: bool) -> Pool:
        write_pool(path, requests)
        return cls(path, len(requests), distinct)


@dataclass
class Settings:
    duration: float
    connections: int
    rounds: int
    warmup: float
    trigger_pool: int
    phases: frozenset[str] = PHASES


class Bench:
    def __init__(self, tmp: Path, settings: Settings) -> None:
        self.tmp = tmp
        self.s = settings
        (tmp / "world").mkdir()
        self.w = BenchWorld(tmp / "world")
        self.minimal: MinimalApp | None = None
        self.rows: list[tuple[str, str, Load]] = []
        self.rounds_of: dict[str, dict[str, list[Load]]] = {}  # phase -> server -> its rounds
        self.notes: list[str] = []

    def start(self) -> tuple[Server, Server]:
        w = self.w
        server_cpus = split_cpus()
        w.github.start()
        w.anthropic.start()
        w.add_repo({"calc.py": CALC, "README.md": "# hello\n"}, honk_yml=HONK_YML)
        w.start_honk()
        self.minimal = MinimalApp(self.tmp)
        assert w.honk is not None
        servers = (
            Server("honk", w.port, w.honk.pid),
            Server("minimal", self.minimal.port, self.minimal.process.pid),
        )
        if server_cpus:
            for server in servers:
                pin(server.pid, server_cpus)
            self.notes.append(
                f"both servers ran on CPU {', '.join(map(str, sorted(server_cpus)))}, the load "
                "generator and the fakes on the others; so in the busy and trigger phases, the "
                "minimal app shared its core with Honk's runs and intakes still going on"
            )
        return servers

    def stop(self) -> None:
        self.w.busy = False
        if self.minimal is not None:
            self.minimal.stop()
        self.w.stop_honk()
        self.w.anthropic.stop()
        self.w.github.stop()

    def alternate(
        self,
        phase: str,
        servers: list[Server],
        pool: Pool,
        *,
        rate: float = 0.0,
        rounds: int | None = None,
    ) -> dict[str, Load]:
        """Each server in turn, `rounds` times; a pool of distinct deliveries is Honk's only."""
        count = rounds or self.s.rounds
        per_round = self.s.duration / count
        loads: dict[str, list[Load]] = {s.name: [] for s in servers}
        for n, server in itertools.product(range(count), servers):
            print(f"  {phase}: {server.name}, round {n + 1}/{count}", file=sys.stderr)
            consumes = pool.distinct and server.name == "honk"
            if consumes and pool.offset >= pool.size:
                continue
            load = run_load(
                self.tmp,
                server.port,
                server.pid,
                pool.path,
                start=pool.offset if consumes else 0,
                cycle=not consumes,
                connections=self.s.connections,
                duration=per_round,
                warmup=self.s.warmup,
                rate=rate,
            )
            if consumes:
                pool.offset += load.used
                if pool.offset >= pool.size:
                    self.notes.append(
                        f"{phase}: the pool of {pool.size} distinct triggers ran out; "
                        "the figures cover the deliveries made"
                    )
            loads[server.name].append(load)
        self.rounds_of[phase] = loads
        medians = {name: median_load(r) for name, r in loads.items() if r}
        for name, load in medians.items():
            self.rows.append((phase, name, load))
        return medians

    def start_busy_runs(self) -> list[int]:
        w = self.w
        w.busy = True
        numbers = []
        for i in range(2):
            number = w.github.add_issue(REPO, title=f"keep busy {i}", user=SENDER)
            body = "/honk look around the repository, one command at a time"
            w.deliver("issue_comment", w.comment_payload(number, body))
            numbers.append(number)
        w.wait(
            lambda: all(self.status(n) == "running" for n in numbers) and w.busy_turns >= 4,
            what="two runs to be working",
            timeout=120,
        )
        return numbers

    def status(self, number: int) -> str | None:
        rows = self.w.store_rows(number)
        return str(rows[-1]["status"]) if rows else None

    def stop_busy_runs(self, numbers: list[int]) -> None:
        w = self.w
        w.busy = False
        for number in numbers:
            w.deliver("issue_comment", w.comment_payload(number, "/honk stop"))
        try:
            w.wait(
                lambda: all(self.status(n) != "running" for n in numbers),
                what="the busy runs to stop",
                timeout=60,
            )
        except AssertionError as exc:
            self.notes.append(f"busy runs: {exc}")

    def run(self) -> None:
        honk, minimal = self.start()
        both = [honk, minimal]
        idle = busy = trig = None
        ordinary = Pool.write(self.tmp / "ordinary.bin", non_trigger_pool(self.w), distinct=False)
        if "idle" in self.s.phases:
            idle = self.alternate(NON_TRIGGER, both, ordinary)
        if "busy" in self.s.phases:
            busy = self.measure_busy(both, ordinary)
        if "trigger" in self.s.phases:
            trig = self.measure_triggers(honk, both)
        self.report(idle, busy, trig)

    def measure_busy(self, both: list[Server], ordinary: Pool) -> dict[str, Load]:
        numbers = self.start_busy_runs()
        turns_before = self.w.busy_turns
        busy = self.alternate("non-trigger, 2 runs working", both, ordinary)
        turns = self.w.busy_turns - turns_before
        still = [self.status(n) for n in numbers]
        self.notes.append(
            f"the two busy runs took {turns} agent turns while measured; "
            f"their status at the end: {', '.join(map(str, still))}"
        )
        self.stop_busy_runs(numbers)
        return busy

    def measure_triggers(self, honk: Server, both: list[Server]) -> dict[str, Load]:
        triggers = Pool.write(
            self.tmp / "triggers.bin", trigger_pool(self.w, self.s.trigger_pool), distinct=True
        )
        self.alternate(
            f"trigger, paced {PACED_TRIGGER_RATE:g}/s",
            [honk],
            triggers,
            rate=PACED_TRIGGER_RATE,
            rounds=1,
        )
        return self.alternate("trigger (/honk, distinct issues)", both, triggers)

    def report(
        self,
        idle: dict[str, Load] | None,
        busy: dict[str, Load] | None,
        trig: dict[str, Load] | None,
    ) -> None:
        s = self.s
        print(
            f"\nHonk webhook ingest: {s.connections} connections (closed loop unless paced), "
            f"{s.duration:g} s per server per phase in {s.rounds} alternating round(s), medians; "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}\n"
        )
        print(format_table(self.rows))
        print()
        pairs = self.rounds_of.get(NON_TRIGGER, {})
        ratios = paired_ratios(pairs.get("honk", []), pairs.get("minimal", []))
        for line, ok in check_targets(idle, busy, trig, s.connections, ratios):
            print(f"  {verdict(ok)}  {line}")
        busiest = max((r.loadgen_cpu for _, _, r in self.rows), default=0.0)
        self.notes.append(
            f"the load generator used at most {busiest:.0%} of a core "
            + ("and may have been the bottleneck" if busiest > 0.8 else "(not the bottleneck)")
        )
        for note in self.notes:
            print(f"  note: {note}")


def format_table(rows: list[tuple[str, str, Load]]) -> str:
    """CPU columns: cores used over the window, and microseconds of CPU per request."""
    header = (
        f"{'phase':34} {'server':8} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'srv cpu':>7} {'µs/req':>7} {'gen cpu':>7} {'µs/req':>7} {'machine':>7}  statuses"
    )
    lines = [header, "-" * len(header)]
    for phase, name, r in rows:
        codes = " ".join(f"{k}:{v}" for k, v in sorted(r.statuses.items()))
        if r.errors:
            codes += f" errors:{r.errors}"
        per = 1e6 / r.rps if r.rps else float("nan")
        lines.append(
            f"{phase:34} {name:8} {r.rps:7.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.max_ms:8.1f} "
            f"{r.server_cpu:7.0%} {r.server_cpu * per:7.0f} {r.loadgen_cpu:7.0%} "
            f"{r.loadgen_cpu * per:7.0f} {r.machine_busy:7.0%}  {codes}"
        )
    return "\n".join(lines)


def check_targets(
    idle: dict[str, Load] | None,
    busy: dict[str, Load] | None,
    trig: dict[str, Load] | None,
    connections: int,
    ratios: list[float] | None = None,
) -> list[tuple[str, bool]]:
    """The targets of the phases that ran; `ratios` are the non-trigger rounds' paired ratios."""
    verdicts = []
    if idle is not None:
        of_medians = idle["honk"].rps / idle["minimal"].rps if idle["minimal"].rps else 0.0
        if ratios:
            ratio = statistics.median(ratios)
            how = (
                f"median of {len(ratios)} paired rounds, {min(ratios):.2f}-{max(ratios):.2f}; "
                f"ratio of the medians {of_medians:.2f}"
            )
        else:
            ratio, how = of_medians, "ratio of the medians"
        verdicts.append(
            (
                f"non-trigger throughput honk/minimal = {ratio:.2f} ({how}) "
                f"(target >= {TARGET_RATIO})",
                ratio >= TARGET_RATIO,
            )
        )
    if trig is not None:
        verdicts.append(
            (
                f"trigger p99 = {trig['honk'].p99_ms:.1f} ms at {connections} connections "
                f"(target < {TARGET_TRIGGER_P99_MS:g} ms)",
                trig["honk"].p99_ms < TARGET_TRIGGER_P99_MS,
            )
        )
    if busy is not None:
        verdicts.append(
            (
                f"non-trigger p99 while 2 runs work = {busy['honk'].p99_ms:.1f} ms "
                f"(target < {TARGET_BUSY_P99_MS:g} ms)",
                busy["honk"].p99_ms < TARGET_BUSY_P99_MS,
            )
        )
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per server per phase")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="alternating rounds per phase")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (2 s, 1 round)")
    parser.add_argument(
        "--phases",
        default="idle,busy,trigger",
        help="comma-separated phases to run: idle, busy, trigger (default: all three)",
    )
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)  # the load generator process
    args = parser.parse_args(argv)
    if args.loadgen:
        loadgen_main(args.loadgen)
        return 0
    if args.duration < 1 or not 1 <= args.connections <= 256 or not 1 <= args.rounds <= 100:
        parser.error(
            "--duration must be at least 1, --connections between 1 and 256 "
            "and --rounds between 1 and 100"
        )
    phases = frozenset(p.strip() for p in args.phases.split(",") if p.strip())
    if not phases or not phases <= PHASES:
        parser.error(f"--phases takes a comma-separated subset of {', '.join(sorted(PHASES))}")
    duration = 2.0 if args.quick else args.duration
    settings = Settings(
        duration=duration,
        connections=args.connections,
        rounds=1 if args.quick else args.rounds,
        warmup=0.3 if args.quick else 0.5,
        trigger_pool=int(1000 * (duration + 1)) if args.quick else int(2000 * (duration + 3)),
        phases=phases,
    )
    with tempfile.TemporaryDirectory(prefix="honk-webhook-ingest-") as tmp:
        bench = Bench(Path(tmp), settings)
        try:
            bench.run()
        except Exception as exc:  # a benchmark reports what broke; it does not fail the build
            print(f"ERROR: the benchmark could not finish: {type(exc).__name__}: {exc}")
            print("---- honk serve log (tail) ----\n" + bench.w.log()[-4000:])
        finally:
            bench.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
