"""Time to pull request: from a signed `issues.labeled` delivery to the pull request on GitHub.

A generated repository (5,000 files, 300 commits by default, built with `git fast-import`) sits
behind the fake GitHub's real git smart HTTP. A real `honk serve` runs against it with a scripted
model that answers at once: one `str_replace_based_edit_tool` edit, then "done". Each sample is
the time from the POST of the webhook to the moment the fake GitHub created the pull request:

- cold: a fresh HONK_DATA_DIR, so Honk has no mirror of the repository yet;
- warm: a second issue on the same server, so the mirror is there;
- baseline: a script doing what a person would, over the same HTTP with the same token auth:
  `git clone --depth 1`, one edit, one commit, a push of a new branch.

Targets: cold ≤ 1.5 x baseline, warm ≤ 0.5 x baseline (medians of `--runs`). Each queue polling
interval given (`--poll-interval`, Honk's default 1 s and the tests' 0.2 s unless told) is its own
column. Every request the fakes answer is timed, so the phases of a run are shown too.

    python bench/time_to_pr.py [--runs 3] [--poll-interval 1.0 --poll-interval 0.2] [--timeline]

Everything listens on 127.0.0.1 and lives in one temporary directory. A benchmark reports; it
always exits 0.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from honk_app.workspace.git import auth_env
from tests.fakes import anthropic as fa
from tests.fakes.git_http import repo_path
from tests.fixtures import payloads
from tests.harness import INSTALLATION_ID, REPO, SENDER, World

COLD_TARGET = 1.5
WARM_TARGET = 0.5
EDITOR = "str_replace_based_edit_tool"
STATUS_LINE = "Status: generated for the time-to-PR benchmark."
WAIT_S = 180.0
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
    "GIT_AUTHOR_NAME": "Bench Author",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench Author",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


# ---- the repository ---------------------------------------------------------------------------


def _module_text(rng: random.Random, index: int, functions: int = 4) -> str:
    """A plausible Python module (about 1.5 kB), different in every file."""
    parts = [
        f'"""Module {index}: part of a generated code base."""\n\n',
        f"THRESHOLD = {rng.randint(1, 999)}\n",
    ]
    for k in range(functions):
        a, b, c = rng.randint(2, 97), rng.randint(1, 500), rng.randint(1, 9)
        parts.append(
            f"\n\ndef compute_{index}_{k}(values, scale={c}):\n"
            f'    """Weigh values above THRESHOLD by {a}; subtract {b} for the rest."""\n'
            f"    total = 0\n"
            f"    for value in values:\n"
            f"        if value > THRESHOLD:\n"
            f"            total += value * {a} * scale\n"
            f"        else:\n"
            f"            total -= {b}\n"
            f"    return total\n"
        )
    return "".join(parts)


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n%s\n" % (len(raw), raw)


def generate_repository(bare: Path, n_files: int, n_commits: int) -> dict[str, str]:
    """A bare repository of `n_files` files over `n_commits` commits on `main`, written by one
    `git fast-import` stream and then packed as a hosting service would. Returns the files of
    the head commit (the fake GitHub's contents API serves them)."""
    rng = random.Random(20240917)
    files = {
        "README.md": f"# Generated\n\n{STATUS_LINE}\n",
        **{
            f"src/pkg{i // 100:02d}/mod{i:05d}.py": _module_text(rng, i) for i in range(n_files - 1)
        },
    }
    paths = sorted(files)
    stream = bytearray()
    stamp = 1_700_000_000
    for number in range(1, n_commits + 1):
        if number == 1:
            changed = {path: files[path] for path in paths}
            message = "Initial import"
        else:
            changed = {}
            for path in rng.sample(paths[1:], 3):
                text = re.sub(r"THRESHOLD = \d+", f"THRESHOLD = {rng.randint(1, 999)}", files[path])
                files[path] = text + f"\n\ndef patch_{number}():\n    return {number}\n"
                changed[path] = files[path]
            message = f"Change {number}: adjust thresholds"
        who = b"Fixture Author <fixture@example.com> %d +0000" % (stamp + number * 3600)
        stream += b"commit refs/heads/main\nmark :%d\n" % number
        stream += b"author %s\ncommitter %s\n" % (who, who)
        stream += _data(message)
        if number > 1:
            stream += b"from :%d\n" % (number - 1)
        for path, text in changed.items():
            stream += b"M 100644 inline %s\n" % path.encode() + _data(text)
        stream += b"\n"
    stream += b"done\n"
    bare.parent.mkdir(parents=True, exist_ok=True)
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    _git("--git-dir", str(bare), "fast-import", "--quiet", "--done", stdin=bytes(stream))
    _git("--git-dir", str(bare), "repack", "-a", "-d", "-f", "-q")
    return files


def _git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
         stdin: bytes | None = None) -> str:  # fmt: skip
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=stdin,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **GIT_ENV, **(env or {})},
        capture_output=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode(errors="replace")


# ---- timing every request the fakes answer ----------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request as the fake server saw it, on this process's monotonic clock."""

    service: str  # "github", "git" or "anthropic"
    method: str
    path: str
    status: int
    start: float
    end: float

    @property
    def label(self) -> str:
        return f"{self.service:9} {self.method:5} {self.status} {self.path}"


class Recorder:
    """Every request the fakes answered, timed from arrival to the last byte of the response."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.lock = threading.Lock()

    def between(self, start: float, end: float) -> list[Hit]:
        with self.lock:
            return sorted((h for h in self.hits if start <= h.start <= end), key=lambda h: h.start)


class Timed:
    """ASGI middleware feeding a Recorder; git smart HTTP is told apart from GitHub's REST API."""

    def __init__(self, app: ASGIApp, recorder: Recorder, service: str) -> None:
        self.app, self.recorder, self.service = app, recorder, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.monotonic(), 0
        query = scope.get("query_string", b"").decode()
        path = scope["path"] + (f"?{query}" if query else "")

        async def send_timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            kind = "git" if ".git/" in scope["path"] else self.service
            hit = Hit(kind, scope["method"], path, status, start, time.monotonic())
            with self.recorder.lock:
                self.recorder.hits.append(hit)


# ---- one Honk sample and its phases -----------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)
    timeline: list[tuple[float, float, str]] = field(default_factory=list)


def phases_of(hits: list[Hit], t0: float, t_pr: float) -> dict[str, float]:
    """Where the time between the delivery and the pull request went, by landmark requests."""
    api = [h for h in hits if h.service == "github"]
    fetch = [h for h in hits if h.service == "git" and "upload-pack" in h.path]
    push = [h for h in hits if h.service == "git" and "receive-pack" in h.path]
    model = [h for h in hits if h.service == "anthropic"]
    comment = next((h for h in api if h.method == "POST" and h.path.endswith("/comments")), None)
    after_comment = next((h for h in api if comment and h.start > comment.end), None)
    marks: list[tuple[str, float | None]] = [
        ("delivery -> intake's first GitHub request", api[0].start if api else None),
        ("intake: token, reaction, permission, tracking comment", comment.end if comment else None),
        (
            "runs queue pickup (idle until the next GitHub request)",
            after_comment.start if after_comment else None,
        ),
        ("configure, task, workspace comment, token", fetch[0].start if fetch else None),
        ("mirror fetch (git upload-pack)", fetch[-1].end if fetch else None),
        ("clone + checkout, AGENTS.md/CLAUDE.md, agent comment", model[0].start if model else None),
        ("agent: model turns and the edit", model[-1].end if model else None),
        ("diff, policy, commit, PR comment, token", push[0].start if push else None),
        ("push (git receive-pack)", push[-1].end if push else None),
        ("find + create the pull request", t_pr),
    ]
    phases: dict[str, float] = {}
    last = t0
    for name, mark in marks:
        if mark is None:
            continue
        phases[name] = max(0.0, mark - last)
        last = max(last, mark)
    return phases


def pull_created_at(hits: list[Hit]) -> float | None:
    created = [
        h for h in hits if h.method == "POST" and h.path.endswith("/pulls") and h.status == 201
    ]
    return created[0].end if created else None


class Bench:
    """One fake GitHub with the generated repository, one fake Anthropic, `honk serve` restarts."""

    def __init__(self, tmp: Path, n_files: int, n_commits: int) -> None:
        self.tmp = tmp
        self.recorder = Recorder()
        self.world = World(tmp)
        self.world.github.app.add_middleware(Timed, recorder=self.recorder, service="github")
        self.world.anthropic.app.add_middleware(Timed, recorder=self.recorder, service="anthropic")
        self.files = generate_repository(repo_path(self.world.git_root, REPO), n_files, n_commits)
        self.world.github.add_repo(REPO, installation_id=INSTALLATION_ID, files=self.files)
        self.world.github.set_permission(REPO, SENDER, "write")
        self.rounds = 0
        self.data_dir = tmp / "data"

    @contextmanager
    def running(self) -> Iterator[Bench]:
        self.world.github.start()
        self.world.anthropic.start()
        try:
            yield self
        finally:
            self.world.stop_honk()
            self.world.anthropic.stop()
            self.world.github.stop()

    # -- baseline ---------------------------------------------------------------------------------

    def baseline(self) -> float:
        """clone --depth 1, edit, commit, push a new branch: the work a person's script does."""
        token = self.world.github.issue_token(INSTALLATION_ID)
        url = self.world.clone_url()
        auth = auth_env(token, url)
        self.rounds += 1
        work = self.tmp / f"baseline-{self.rounds}"
        started = time.monotonic()
        _git("clone", "--quiet", "--depth", "1", url, str(work), env=auth)
        readme = work / "README.md"
        readme.write_text(readme.read_text().replace(STATUS_LINE, "Status: edited by a script."))
        _git("commit", "--quiet", "-am", "Edit the status line", cwd=work)
        branch = f"HEAD:refs/heads/baseline-{self.rounds}"
        _git("push", "--quiet", "origin", branch, cwd=work, env=auth)
        elapsed = time.monotonic() - started
        shutil.rmtree(work, ignore_errors=True)
        return elapsed

    def checkout_floor(self) -> float:
        """A shared clone of Honk's mirror and a checkout of its head: the part of a run that any
        design writing the whole work tree pays (a reference, not a contender)."""
        mirrors = sorted(self.data_dir.glob("mirrors/*/*.git"))
        if not mirrors:
            return float("nan")
        work = self.tmp / f"floor-{self.rounds}"
        started = time.monotonic()
        _git("clone", "--quiet", "--shared", "--no-checkout", str(mirrors[0]), str(work))
        _git("checkout", "--quiet", "-B", "floor", "origin/main", cwd=work)
        elapsed = time.monotonic() - started
        shutil.rmtree(work, ignore_errors=True)
        return elapsed

    # -- Honk ------------------------------------------------------------------------------------

    def start_honk(self, poll_interval: float) -> None:
        """`honk serve` with a data directory of its own: no mirror yet."""
        self.rounds += 1
        tag = f"{poll_interval:g}-{self.rounds}"
        self.world.log_path = self.tmp / f"honk-{tag}.log"
        self.data_dir = self.tmp / f"data-{tag}"
        self.world.extra_env = {
            "HONK_DATA_DIR": str(self.data_dir),
            "HONK_WORKSPACE_DIR": str(self.tmp / f"workspaces-{tag}"),
            "HONK_POLL_INTERVAL_S": f"{poll_interval:g}",
        }
        self.world.start_honk()

    def honk_sample(self, label: str) -> Sample:
        """Label a new issue; time the delivery → pull request; wait for the run to finish."""
        w = self.world
        title = f"Update the status line ({label})"
        number = w.github.add_issue(REPO, title=title, body="Say it was edited.", user=SENDER)
        w.script = [
            fa.tool_use(
                EDITOR,
                {
                    "command": "str_replace",
                    "path": "README.md",
                    "old_str": STATUS_LINE,
                    "new_str": f"Status: edited by Honk ({label}).",
                },
            ),
            fa.text("Updated the status line in README.md."),
        ]
        payload = w.point(payloads.labeled("honk"), number)
        payload["issue"]["title"] = title
        started = time.monotonic()
        response = w.deliver("issues", payload)
        if response.status_code != 202:
            raise RuntimeError(f"honk answered the delivery with {response.status_code}")
        prefix = f"honk/{number}-"
        pull = w.wait(
            lambda: next((p for p in w.pulls() if p.head_ref.startswith(prefix)), None),
            what=f"the pull request for issue #{number}",
            timeout=WAIT_S,
        )
        seen = time.monotonic()
        w.wait(
            lambda: any(
                c.status == "completed" and c.head_sha == pull.head_sha for c in w.github.check_runs
            ),
            what=f"the run for issue #{number} to finish",
            timeout=WAIT_S,
        )
        hits = self.recorder.between(started, seen)
        created = pull_created_at(hits) or seen
        return Sample(
            seconds=created - started,
            phases=phases_of(hits, started, created),
            timeline=[
                (h.start - started, h.end - h.start, h.label) for h in hits if h.start <= created
            ],
        )


# ---- the report -------------------------------------------------------------------------------


@dataclass
class Column:
    poll_interval: float
    baseline: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    cold: list[Sample] = field(default_factory=list)
    warm: list[Sample] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f} {'PASS' if ratio <= target else 'MISS'} (<= {target:g})"


ROW_LABELS = (
    "baseline: clone --depth 1, commit, push",
    "honk cold (no mirror)",
    "honk warm (mirror present)",
    "cold / baseline",
    "warm / baseline",
    "reference: checkout from the mirror",
)


def _cells(c: Column) -> list[str]:
    base, floor = median(c.baseline), median(c.floor)
    cold, warm = median([s.seconds for s in c.cold]), median([s.seconds for s in c.warm])
    return [
        f"{base:.2f} s",
        f"{cold:.2f} s",
        f"{warm:.2f} s",
        verdict(cold / base, COLD_TARGET),
        verdict(warm / base, WARM_TARGET),
        f"{floor:.2f} s",
    ]


def render(columns: list[Column], runs: int) -> str:
    cells = [_cells(c) for c in columns]
    rows = [
        ["", *(f"poll {c.poll_interval:g} s" for c in columns)],
        *([label, *(cell[i] for cell in cells)] for i, label in enumerate(ROW_LABELS)),
    ]
    lines = [f"Time to pull request, median of {runs} run(s) per cell", _table(rows), ""]
    for c in columns:
        lines.append(f"Where Honk's time goes (poll {c.poll_interval:g} s, medians):")
        names = list(dict.fromkeys(n for s in [*c.cold, *c.warm] for n in s.phases))
        phase_rows = [["", "cold", "warm"]]
        for name in names:
            cold = median([s.phases.get(name, 0.0) for s in c.cold])
            warm = median([s.phases.get(name, 0.0) for s in c.warm])
            phase_rows.append([name, f"{cold:.3f} s", f"{warm:.3f} s"])
        lines += [_table(phase_rows), ""]
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
    )


def render_timeline(label: str, sample: Sample) -> str:
    lines = [f"Timeline of one {label} run ({sample.seconds:.2f} s): offset, duration, request"]
    lines += [f"  +{at:7.3f}  {took * 1000:7.1f} ms  {what}" for at, took, what in sample.timeline]
    return "\n".join(lines)


# ---- main ---------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, tmp: Path, progress: Callable[[str], None]) -> list[Column]:
    started = time.monotonic()
    bench = Bench(tmp, args.files, args.commits)
    took = time.monotonic() - started
    progress(f"generated {args.files:,} files x {args.commits} commits in {took:.1f} s")
    columns = [Column(interval) for interval in args.poll_interval]
    with bench.running():
        bench.baseline()  # warm the OS caches the same way for every contender
        for column in columns:
            for run in range(args.runs):
                column.baseline.append(bench.baseline())
                bench.start_honk(column.poll_interval)
                try:
                    column.cold.append(bench.honk_sample(f"cold {run + 1}"))
                    column.warm.append(bench.honk_sample(f"warm {run + 1}"))
                finally:
                    bench.world.stop_honk()
                column.floor.append(bench.checkout_floor())
                progress(
                    f"poll {column.poll_interval:g} s, run {run + 1}: baseline "
                    f"{column.baseline[-1]:.2f} s, cold {column.cold[-1].seconds:.2f} s, "
                    f"warm {column.warm[-1].seconds:.2f} s"
                )
    return columns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs per cell (the median is shown)")
    parser.add_argument(
        "--poll-interval",
        type=float,
        action="append",
        help="HONK_POLL_INTERVAL_S for a column (repeatable; default: 1.0 and 0.2)",
    )
    parser.add_argument("--files", type=int, default=5000, help="files in the repository")
    parser.add_argument("--commits", type=int, default=300, help="commits in its history")
    parser.add_argument("--timeline", action="store_true", help="every request of the last runs")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.files < 2 or args.commits < 1:
        parser.error("--runs and --commits must be at least 1, --files at least 2")
    args.poll_interval = args.poll_interval or [1.0, 0.2]

    def progress(line: str) -> None:
        print(f"  {line}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="honk-time-to-pr-") as tmp:
        try:
            columns = measure(args, Path(tmp), progress)
        except Exception as exc:  # a benchmark reports what broke; it does not fail the build
            traceback.print_exc()
            for log in sorted(Path(tmp).glob("honk-*.log"))[-1:]:
                print(f"---- {log.name} (tail) ----\n{log.read_text(errors='replace')[-6000:]}")
            print(f"ERROR: the benchmark could not finish: {exc}")
            return 0
    print(render(columns, args.runs))
    if args.timeline:
        last = columns[-1]
        print(render_timeline(f"cold (poll {last.poll_interval:g} s)", last.cold[-1]))
        print(render_timeline(f"warm (poll {last.poll_interval:g} s)", last.warm[-1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
