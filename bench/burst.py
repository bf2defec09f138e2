"""A burst of webhooks with a kill -9 in the middle: is every acknowledged trigger run exactly once?

A real `honk serve` (embedded defaults: SQLite in a temporary HONK_DATA_DIR) works against the
fake GitHub (REST and real git smart HTTP) and a fake Anthropic API answering at once (one edit,
then "done"), while signed deliveries arrive over keep-alive connections: `/honk …` comments on
distinct issues shuffled among comments without `/honk`. Part-way, Honk gets SIGKILL and starts
again on the same data directory; afterwards every delivery without a 2xx is redelivered (same id,
same body) with some duplicates of acknowledged triggers, the runs drain, and the outcome is read
from the fake GitHub and Honk's run table (read-only). Only Honk's HTTP interface, environment and
the fakes are used, so the bench survives changes inside honk_app. See bench/README.md.

    python bench/burst.py [--deliveries 5000] [--triggers 500] [--connections 16]
                          [--crash-at 0.4] [--duplicates 50] [--timeout 2400] [--quick]

Everything is on 127.0.0.1, in a temporary directory removed afterwards; always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import hmac
import json
import math
import os
import random
import resource
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, WEBHOOK_SECRET, World

TARGET_P99_S = 1.0
TARGET_IDLE_CPU = 0.03
STATUS_LINE = "Status: generated for the burst benchmark."
ACTIVE = frozenset({"queued", "waiting", "running"})  # honk_runs.status of an unfinished run
STALL_S = 90.0  # nothing active and nothing moving for this long: what is missing is lost
IDLE_S = 10.0
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Delivery:
    event: str
    delivery_id: str
    body: bytes
    issue: int | None  # the issue a trigger asks a run for; None for a non-trigger


@dataclass(frozen=True)
class Attempt:
    index: int
    start: float
    end: float
    status: int | None  # None: no answer (refused, or the connection died)

    @property
    def acked(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Burst:
    """What the senders saw, and when Honk was down."""

    attempts: list[Attempt] = field(default_factory=list)
    kill_at: float = math.inf
    up_at: float = math.inf
    at_kill: tuple[int, int, int] = (0, 0, 0)  # runs recorded, tracking comments, pull requests


class HonkWorld(World):
    """The tests' world, but with Honk's own queue polling instead of the tests' faster one."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("HONK_POLL_INTERVAL_S", None)
        return {**env, **self.extra_env}


class Peak:
    """Peak RSS of whichever Honk process is alive: /proc/<pid>/status, every 0.2 s."""

    def __init__(self, world: World) -> None:
        self.world, self.kib = world, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> None:
        honk = self.world.honk
        try:
            text = Path(f"/proc/{honk.pid}/status").read_text() if honk else ""
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                self.kib = max(self.kib, int(line.split()[1]))

    def _loop(self) -> None:
        while not self.stop.wait(0.2):
            self.sample()


def respond(request: dict[str, Any]) -> fa.Reply:
    """Stateless by turn, so a run resumed after the crash gets the same answers."""
    if not request.get("tools"):
        return fa.text("ok")
    if any(m["role"] == "assistant" for m in request["messages"]):
        return fa.text("Updated the status line in README.md.")
    edit = {"command": "str_replace", "path": "README.md", "old_str": STATUS_LINE}
    return fa.tool_use("str_replace_based_edit_tool", {**edit, "new_str": "Status: edited."})


def build(world: World, n: int, triggers: int, rng: random.Random) -> list[Delivery]:
    """`triggers` issues the fake GitHub knows, each with its `/honk` comment; chatter on them."""
    deliveries, issues = [], []
    for k in range(triggers):
        title = f"Update the status line ({k})"
        number = world.github.add_issue(REPO, title=title, body="Say it was edited.", user=SENDER)
        text = f"/honk update the status line in README.md ({k})"
        posted = world.github.add_comment(REPO, number, body=text, user=SENDER)
        payload = world.point(payloads.issue_comment(text, comment_id=posted.id), number)
        payload["issue"]["title"] = title
        body = json.dumps(payload).encode()
        deliveries.append(Delivery("issue_comment", str(uuid.uuid4()), body, number))
        issues.append(number)
    for k in range(n - triggers):
        payload = payloads.issue_comment(f"Thanks, this looks right ({k}).", comment_id=9**8 + k)
        body = json.dumps(world.point(payload, rng.choice(issues))).encode()
        deliveries.append(Delivery("issue_comment", str(uuid.uuid4()), body, None))
    rng.shuffle(deliveries)
    return deliveries


async def send(client: httpx.AsyncClient, url: str, d: Delivery, index: int) -> Attempt:
    """One delivery as GitHub sends it, signed with HMAC SHA-256 over the exact body."""
    digest = hmac.new(WEBHOOK_SECRET.encode(), d.body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/bench",
        "x-github-event": d.event,
        "x-github-delivery": d.delivery_id,
        "x-hub-signature-256": f"sha256={digest}",
    }
    start = time.monotonic()
    try:
        status: int | None = (await client.post(url, content=d.body, headers=headers)).status_code
    except httpx.HTTPError:
        status = None
    return Attempt(index, start, time.monotonic(), status)


def answers_ping(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def run_burst(
    world: World, peak: Peak, deliveries: list[Delivery], order: list[int], connections: int,
    crash_after: int | None, burst: Burst,
) -> None:  # fmt: skip
    """Send `order` (indices into `deliveries`); kill and restart Honk once `crash_after` are
    answered. A sender that gets no answer or a 5xx waits until Honk answers /ping again."""
    url = f"http://127.0.0.1:{world.port}/api/github/webhooks"
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    up, queue = asyncio.Event(), iter(order)
    crashes: list[asyncio.Task[None]] = []
    up.set()

    async def crash_and_restart() -> None:
        data_dir = Path(world.env()["HONK_DATA_DIR"])
        seen = await asyncio.to_thread(Seen.read, world, data_dir)  # while the senders go on
        runs = sum(len(r) for r in seen.rows.values())
        burst.at_kill = (runs, sum(seen.tracking.values()), sum(seen.pulls.values()))
        peak.sample()
        up.clear()  # a request cut by the kill waits for the restart; those in flight are cut
        try:
            burst.kill_at = time.monotonic()
            await asyncio.to_thread(world.kill_honk)
            await asyncio.to_thread(world.start_honk)  # same environment, same data directory
            ping = functools.partial(answers_ping, world.port)
            await asyncio.to_thread(world.wait, ping, what="Honk to answer /ping", timeout=30)
            burst.up_at = time.monotonic()
        finally:
            up.set()  # if the restart failed, the senders fail fast and the error surfaces

    async def sender(client: httpx.AsyncClient) -> None:
        for index in queue:
            if crash_after is not None and len(burst.attempts) >= crash_after and not crashes:
                crashes.append(asyncio.create_task(crash_and_restart()))
            await up.wait()
            attempt = await send(client, url, deliveries[index], index)
            burst.attempts.append(attempt)
            if attempt.status is None or attempt.status >= 500:
                await asyncio.sleep(0.05)  # time for the crash to be noticed
                await up.wait()

    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        await asyncio.gather(*(sender(client) for _ in range(connections)))
    for task in crashes:
        await task


# ---- the outcome: the fake GitHub, and Honk's tables read-only --------------------------------


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]] | None:
    """Rows from the first SQLite file under the data directory that answers `sql`, or None."""
    for path in sorted(data_dir.rglob("*.sqlite")):
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
                return conn.execute(sql).fetchall()
        except sqlite3.Error:
            continue
    return None


@dataclass
class Seen:
    """Per issue: pull requests, tracking comments and run rows; and how much is unfinished."""

    pulls: Counter[int]
    tracking: Counter[int]
    rows: dict[int, list[str]]  # issue -> the status of each of its runs
    active: int

    @staticmethod
    def read(world: World, data_dir: Path) -> Seen:
        gh = world.github
        with gh.lock:
            branches = [p.head_ref.split("/") for p in gh.pulls if p.head_ref.startswith("honk/")]
            tracking = Counter(c.issue_number for c in gh.comments if "<!-- honk:run=" in c.body)
            checks = sum(1 for c in gh.check_runs if c.status != "completed")
        numbers = [b[1].split("-")[0] for b in branches if len(b) > 1]
        pulls = Counter(int(n) for n in numbers if n.isdigit())
        rows: dict[int, list[str]] = {}
        for key, status in query(data_dir, "SELECT target_key, status FROM honk_runs") or []:
            number = str(key).rpartition("#")[2]
            rows.setdefault(int(number) if number.isdigit() else -1, []).append(str(status))
        pending = "SELECT count(*) FROM workflow_status WHERE status IN ('PENDING', 'ENQUEUED')"
        active = sum(s in ACTIVE for statuses in rows.values() for s in statuses) + checks
        active += int((query(data_dir, pending) or [(0,)])[0][0])
        return Seen(pulls, tracking, rows, active)

    def finished(self, issue: int) -> bool:
        runs = self.rows.get(issue, [])
        return bool(self.pulls[issue] or (runs and not ACTIVE.intersection(runs)))


def drain(
    world: World, data_dir: Path, acked: set[int], deadline: float, progress: Progress
) -> tuple[Seen, bool]:
    """Wait until nothing is active and every acknowledged trigger has a finished run (or nothing
    moved for STALL_S); False when the overall deadline came first."""
    last, moved, told = None, time.monotonic(), time.monotonic()
    while True:
        seen = Seen.read(world, data_dir)
        done = sum(seen.finished(n) for n in acked)
        if seen.active == 0 and (done == len(acked) or time.monotonic() - moved > STALL_S):
            return seen, True
        if time.monotonic() > deadline:
            return seen, False
        now = (done, sum(seen.tracking.values()), seen.active)
        if now != last:
            last, moved = now, time.monotonic()
        if time.monotonic() - told > 30:
            told = time.monotonic()
            progress(f"{done} of {len(acked)} triggers finished ({seen.active} unfinished records)")
        time.sleep(1.0)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def idle_cpu(world: World) -> float:
    """Honk's CPU time over IDLE_S of wall time, as a share of one core."""
    assert world.honk is not None
    before, started = cpu_seconds(world.honk.pid), time.monotonic()
    time.sleep(IDLE_S)
    return (cpu_seconds(world.honk.pid) - before) / (time.monotonic() - started)


# ---- main ------------------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(args: argparse.Namespace, tmp: Path, progress: Progress) -> list[str]:
    rng = random.Random(20250610)
    deadline = time.monotonic() + args.timeout
    world = HonkWorld(tmp)
    world.anthropic.responder = respond
    world.github.start()  # before the payloads: they carry its clone URL
    world.anthropic.start()
    world.add_repo({"README.md": f"# Burst\n\n{STATUS_LINE}\n"})
    deliveries = build(world, args.deliveries, args.triggers, rng)
    data_dir = Path(world.env()["HONK_DATA_DIR"])
    peak, burst = Peak(world), Burst()
    crash_after = int(args.crash_at * len(deliveries))

    def phase(order: list[int], crash: int | None) -> None:
        job = run_burst(world, peak, deliveries, order, args.connections, crash, burst)
        asyncio.run(asyncio.wait_for(job, max(1.0, deadline - time.monotonic())))

    try:
        world.start_honk()
        peak.thread.start()
        progress(f"honk serve is up; sending {len(deliveries):,} deliveries")
        started, cpu = time.monotonic(), own_cpu()
        phase(list(range(len(deliveries))), crash_after)
        sent_s, cores = time.monotonic() - started, (own_cpu() - cpu) / (time.monotonic() - started)
        first = len(burst.attempts)
        ok = {a.index for a in burst.attempts if a.acked}
        failed = sorted(set(range(len(deliveries))) - ok)
        acked_triggers = sorted(i for i in ok if deliveries[i].issue is not None)
        dupes = rng.sample(acked_triggers, min(args.duplicates, len(acked_triggers)))
        progress(f"burst sent in {sent_s:.1f} s; re-sending {len(failed)} + {len(dupes)} dupes")
        phase(rng.sample(failed + dupes, len(failed) + len(dupes)), None)
        ok |= {a.index for a in burst.attempts[first:] if a.acked}
        burst_end = time.monotonic()
        acked = {d.issue for i, d in enumerate(deliveries) if i in ok and d.issue is not None}
        progress(f"{len(acked)} triggers acknowledged; waiting for the runs to drain")
        seen, drained = drain(world, data_dir, acked, deadline, progress)
        drain_s = time.monotonic() - burst_end
        alive = world.honk is not None and world.honk.poll() is None
        idle = idle_cpu(world) if drained and alive else math.nan
        peak.sample()
    finally:
        peak.stop.set()
        world.stop_honk()
        world.anthropic.stop()
        world.github.stop()

    issues = {d.issue for d in deliveries if d.issue is not None}
    started_runs = {n for n in issues if seen.rows.get(n) or seen.tracking[n] or seen.pulls[n]}
    lost = sorted(n for n in acked if not seen.pulls[n])
    doubled = sorted(
        n for n in issues if max(len(seen.rows.get(n, [])), seen.pulls[n], seen.tracking[n]) > 1
    )
    answered = [a for a in burst.attempts if a.status is not None]
    outside = [a for a in answered if a.end < burst.kill_at or a.start > burst.up_at]
    latency = [a.end - a.start for a in outside]
    trigger_latency = [a.end - a.start for a in outside if deliveries[a.index].issue is not None]
    p50, p99 = quantile(latency, 0.5), quantile(latency, 0.99)
    answers = Counter(str(a.status or "no answer") for a in burst.attempts)
    dupe_answers = Counter(str(a.status) for a in burst.attempts[first:] if a.index in set(dupes))
    statuses = Counter(s for n in issues for s in seen.rows.get(n, []))
    return [
        f"Burst: {len(deliveries):,} deliveries ({len(issues)} triggers) over {args.connections} "
        f"connections, kill -9 after {crash_after:,} answers, {len(dupes)} duplicates",
        f"  deliveries acknowledged (2xx)  {len(ok):,} / {len(deliveries):,} "
        f"({len(failed)} re-sent after the crash; every answer: {dict(answers)}; "
        f"duplicates: {dict(dupe_answers)})",
        f"  runs started (issues)          {len(started_runs)} / {len(issues)} "
        f"(runs by status: {dict(statuses)}; at the kill: {burst.at_kill[0]} runs, "
        f"{burst.at_kill[1]} tracking comments, {burst.at_kill[2]} pull requests)",
        f"  triggers lost                  {len(lost)} {verdict(not lost)} (target 0)"
        + (f": issues {lost[:20]}, {len(set(lost) - started_runs)} with no run" if lost else ""),
        f"  runs doubled                   {len(doubled)} {verdict(not doubled)} (target 0)"
        + (f": issues {doubled[:20]}" if doubled else ""),
        f"  ack latency p50 / p99          {p50 * 1000:.0f} / {p99 * 1000:.0f} ms "
        f"{verdict(p99 < TARGET_P99_S)} (p99 < {TARGET_P99_S:g} s; triggers' p99 "
        f"{quantile(trigger_latency, 0.99) * 1000:.0f} ms; "
        f"{len(answered) - len(outside)} answers in the crash window left out)",
        f"  drain time                     {drain_s:.1f} s"
        + ("" if drained else f" NOT DRAINED within --timeout {args.timeout:g} s"),
        f"  peak RSS of honk serve         {peak.kib / 1024:.0f} MiB",
        f"  idle CPU after the drain       {idle * 100:.1f} % of a core "
        f"{verdict(idle < TARGET_IDLE_CPU)} (target < {TARGET_IDLE_CPU * 100:g} %)",
        f"  notes: burst {sent_s:.1f} s, down {burst.up_at - burst.kill_at:.1f} s from the kill "
        f"to /ping; this process (load generator + fakes) {cores:.2f} cores during the burst; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--triggers", type=int, default=500, help="distinct issues asking a run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--crash-at", type=float, default=0.4, help="share answered at the kill")
    parser.add_argument("--duplicates", type=int, default=50, help="acked triggers sent again")
    parser.add_argument("--timeout", type=float, default=2400.0, help="overall limit in seconds")
    parser.add_argument("--quick", action="store_true", help="600 deliveries, 60 triggers")
    args = parser.parse_args(argv)
    if args.quick:
        args.deliveries, args.triggers = 600, 60
    if not 0 < args.triggers <= args.deliveries or args.connections < 1 or args.duplicates < 0:
        parser.error("need 0 < --triggers <= --deliveries, --connections >= 1, --duplicates >= 0")
    if not 0 < args.crash_at < 1:
        parser.error("--crash-at is a share of the burst, between 0 and 1")

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="honk-burst-") as tmp:
        try:
            lines = measure(args, Path(tmp), progress)
        except Exception as exc:  # a benchmark reports what broke; it does not fail the build
            traceback.print_exc()
            log = Path(tmp) / "honk.log"
            if log.exists():
                print(f"---- honk.log (tail) ----\n{log.read_text(errors='replace')[-6000:]}")
            late = isinstance(exc, TimeoutError)
            why = f"did not finish within --timeout {args.timeout:g} s" if late else repr(exc)
            print(f"ERROR: the benchmark could not finish: {why}")
            return 0
    print("\n".join(lines))
    print(f"  whole run: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
