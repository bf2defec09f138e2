"""A hostile diff: Honk's peak memory and longest event-loop stall during a run whose work tree
holds 120 MB of changes.

A real `honk serve` (started through bench/honk_heartbeat.py, which puts a heartbeat on each of
its event loops) runs against the fake GitHub and a scripted model whose one move is a bash
command leaving `--megabytes` of two-byte lines in the work tree, then "done". Honk must read a
capped part of that diff, judge it off the event loop and refuse to push it. Figures:

- **peak RSS** of the `honk serve` process (`VmHWM`), and its RSS before the delivery;
- **longest event-loop stall** between the delivery and the tracking comment's verdict, and
  from the moment the change is in the work tree (the model's second request) to the verdict:
  the part where Honk reads, parses and judges the diff (the first includes one-time imports
  of the first run in a process);
- the verdict the tracking comment shows.

Targets: peak RSS < 300 MiB, longest stall < 100 ms.

    python bench/hostile_diff.py [--megabytes 120]

Everything listens on 127.0.0.1 and lives in one temporary directory. A benchmark reports; it
always exits 0.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from honk_app.workspace.sandbox import bwrap_usable
from tests.e2e_repo import FILES, bash
from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, World

RSS_TARGET_MIB = 300
STALL_TARGET_MS = 100
WAIT_S = 900.0
HEARTBEAT = Path(__file__).resolve().with_name("honk_heartbeat.py")


class HeartbeatWorld(World):
    """The harness's world, with `honk` started through the heartbeat wrapper."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.stalls = tmp / "stalls.log"
        self.extra_env["HONK_BENCH_STALLS"] = str(self.stalls)
        self.model_calls: list[float] = []

    def _respond(self, request: dict[str, Any]) -> fa.Reply:
        self.model_calls.append(time.time())  # the second one comes after the change is written
        return super()._respond(request)

    def _spawn(self, args: list[str], executor_id: str) -> subprocess.Popen[bytes]:
        (self.tmp / "home").mkdir(exist_ok=True)
        log = self.log_path.open("ab")
        return subprocess.Popen(
            [sys.executable, str(HEARTBEAT), *args],
            cwd=self.tmp,
            env={**self.env(), "HONK_EXECUTOR_ID": executor_id},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def stalls_between(path: Path, start: float, end: float) -> list[tuple[float, str]]:
    """(seconds, loop) of every stall the heartbeat logged in [start, end] (unix time)."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        at, late, loop = line.split(" ", 2)
        if start <= float(at) <= end:
            found.append((float(late), loop))
    return found


def measure(tmp: Path, megabytes: int, progress: Callable[[str], None]) -> str:
    w = HeartbeatWorld(tmp)
    honk_yml = "max_changed_lines: 10000000\nmax_changed_files: 100000\n"
    w.add_repo(FILES, honk_yml=honk_yml)
    if not bwrap_usable():
        w.extra_env["HONK_SANDBOX"] = "off"
        progress("bubblewrap cannot run here: HONK_SANDBOX=off for this bench")
    size = megabytes * 1_000_000
    w.script = [bash(f"yes x | head -c {size} > big.txt"), fa.text("Left a big file.")]
    w.github.start()
    w.anthropic.start()
    try:
        w.start_honk()
        assert w.honk is not None
        pid = w.honk.pid
        before = status_kib(pid, "VmRSS")
        number = w.github.add_issue(REPO, title="Make it big", body="Please.", user=SENDER)
        payload = w.point(payloads.labeled("honk"), number)
        started, t0 = time.time(), time.monotonic()
        response = w.deliver("issues", payload)
        if response.status_code != 202:
            raise RuntimeError(f"honk answered the delivery with {response.status_code}")
        verdict = w.wait(
            lambda: next(
                (
                    line
                    for line in (w.tracking_comment(number) or "").splitlines()
                    if line.startswith(("⛔", "✅", "🟡", "❌", "➖", "⚠"))
                ),
                None,
            ),
            what="the run's verdict in the tracking comment",
            timeout=WAIT_S,
        )
        took, ended = time.monotonic() - t0, time.time()
        peak = status_kib(pid, "VmHWM")
        body = w.tracking_comment(number) or ""
        stalls = stalls_between(w.stalls, started, ended)
        written = w.model_calls[1] if len(w.model_calls) > 1 else started
        after = stalls_between(w.stalls, written, ended)
    finally:
        w.stop_honk()
        w.anthropic.stop()
        w.github.stop()
    worst, where = max(stalls, default=(0.0, "none"))
    worst_after, where_after = max(after, default=(0.0, "none"))
    peak_mib, worst_ms, after_ms = peak / 1024, worst * 1000, worst_after * 1000
    lines = [
        f"Hostile diff: {megabytes} MB of 2-byte lines left in the work tree",
        f"  run (delivery -> verdict)  {took:.1f} s",
        f"  verdict                    {verdict}",
        f"  RSS before the delivery    {before / 1024:.0f} MiB",
        f"  peak RSS (VmHWM)           {peak_mib:.0f} MiB  "
        f"{'PASS' if peak_mib < RSS_TARGET_MIB else 'MISS'} (< {RSS_TARGET_MIB} MiB)",
        f"  longest event-loop stall   {worst_ms:.0f} ms on {where}  "
        f"{'PASS' if worst_ms < STALL_TARGET_MS else 'MISS'} (< {STALL_TARGET_MS} ms)",
        f"  ... once the change is in  {after_ms:.0f} ms on {where_after}  "
        f"{'PASS' if after_ms < STALL_TARGET_MS else 'MISS'} (< {STALL_TARGET_MS} ms)",
        f"  stalls over 10 ms          {len(stalls)} ({len(after)} once the change is in)",
        f"  load average               {' '.join(Path('/proc/loadavg').read_text().split()[:3])}",
    ]
    detail = [ln for ln in body.splitlines() if "diff is larger" in ln]
    lines += [f"  finding                    {detail[0].lstrip('- ')}"] if detail else []
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--megabytes", type=int, default=120, help="size of the change left")
    args = parser.parse_args(argv)

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="honk-hostile-diff-") as tmp:
        try:
            print(measure(Path(tmp), args.megabytes, progress))
        except Exception as exc:  # a benchmark reports what broke; it does not fail the build
            traceback.print_exc()
            log = Path(tmp) / "honk.log"
            if log.exists():
                print(f"---- honk.log (tail) ----\n{log.read_text(errors='replace')[-6000:]}")
            print(f"ERROR: the benchmark could not finish: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
