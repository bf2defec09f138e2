"""Attacks on the sandbox, end to end through one `honk serve`: one issue per attack class.

Each case scripts the built-in agent to attack, then checks what the run's own record (its audit
trail: every tool result the agent was shown) says was refused, that nothing leaked or ran, and
that Honk still answers and finished the run's tracking comment.

Every hostile command is bounded on its own as well (a depth-bounded fork bomb, a connection to a
private address only from a network namespace with no route), so a sandbox that failed would fail
the test, never the machine.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import needs
from tests.e2e_repo import FILES, HONK_YML, bash, create, edit, run_finished
from tests.fakes import anthropic as fa
from tests.fixtures import payloads
from tests.harness import REPO, World, world

# Tight limits for the attacks (honk_app/settings.py reads them at start).
TIGHT_ENV = {
    "HONK_SANDBOX_MAX_PROCS": "64",
    "HONK_SANDBOX_MAX_MEMORY_MB": "256",
    "HONK_SANDBOX_MAX_FILE_MB": "10",
    "HONK_SANDBOX_MAX_DISK_MB": "64",
}
# A 1.5 GB (sparse) file needs a file-size limit above it; nothing else is raised.
ROOMY_ENV = {"HONK_SANDBOX_MAX_FILE_MB": "2048"}
SECRET = "planted-secret-" + uuid.uuid4().hex
OTHER_SECRET = "other-runs-secret-" + uuid.uuid4().hex
# The bounded fork bomb of tests/workspace/test_sandbox_limits.py: every process stays alive (so
# it cannot end on its own before the limit) and it stops at depth 9 (at most 1023 processes).
FORK_BOMB = (
    "f(){ if [ $1 -lt 9 ]; then f $(($1+1)) & f $(($1+1)) & fi; exec -a {m} sleep 30; }; f 0"
)
STILL_HERE = "rm -f big; echo still here"
WORKING_HEADLINES = ("🪿 Honk is", "⏳ Waiting for")
FINAL_HEADLINES = ("✅", "🟡", "⏹️", "❌", "➖", "⛔", "🔒", "⚠️")


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from serving(tmp_path_factory, "attacks-tight", TIGHT_ENV)


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from serving(tmp_path_factory, "attacks-roomy", ROOMY_ENV)


def serving(factory: pytest.TempPathFactory, name: str, env: dict[str, str]) -> Iterator[World]:
    needs.require_bwrap()  # the network cases rely on bubblewrap's empty network namespace
    with world(factory.mktemp(name)) as running:
        running.extra_env.update(env)
        running.add_repo(FILES, honk_yml=HONK_YML)
        running.start_honk()
        yield running


@dataclass
class Run:
    number: int
    run_id: str
    results: list[str]  # every tool result the agent was shown, from the run's audit trail
    comment: str

    @property
    def seen(self) -> str:
        return "\n".join(self.results)


def run(w: World, title: str, script: list[Any]) -> Run:
    """Open an issue, label it, wait for the run and its tracking comment to finish; check that
    Honk still serves."""
    number = w.github.add_issue(REPO, title=title, body="Please do this.", user="mona")
    w.script = list(script)
    response = w.deliver("issues", w.point(payloads.labeled("honk"), number))
    assert response.status_code == 202, response.text
    w.wait(lambda: run_finished(w.store_rows(number)), what=f"run on #{number}", timeout=240)
    comment = w.wait(lambda: final_comment(w, number), what=f"#{number}'s final comment")
    assert w.honk is not None and w.honk.poll() is None, "honk serve exited"
    ping = httpx.get(f"http://127.0.0.1:{w.port}/ping", timeout=5)
    assert ping.status_code == 200, ping.text
    (row,) = w.store_rows(number)
    trail = w.audit_trail(row["run_id"])
    results = [str(record["result"]) for kind, record in trail if kind == "tool_call"]
    return Run(number=number, run_id=row["run_id"], results=results, comment=comment)


def final_comment(w: World, number: int) -> str | None:
    comment = w.tracking_comment(number)
    if comment is None or any(h in comment for h in WORKING_HEADLINES):
        return None
    return comment if any(h in comment for h in FINAL_HEADLINES) else None


def python(source: str) -> str:
    return f"python3 - <<'EOF'\n{source}\nEOF"


def connect(host: str, port: int, *, only_without_routes: bool = False) -> str:
    """A script that tries one TCP connection and prints how it went. `only_without_routes`:
    connect only where the network namespace has no IPv4 route at all (bubblewrap's fresh one),
    so a sandbox that shared the host's network sends nothing to `host`."""
    guard = (
        "routes = open('/proc/net/route').read().splitlines()[1:]\n"
        "if routes:\n    print('HAS-ROUTES: not connecting')\n    raise SystemExit(3)\n"
        if only_without_routes
        else ""
    )
    return python(
        "import socket\n"
        + guard
        + "try:\n"
        + f"    socket.create_connection(({host!r}, {port}), 2)\n"
        + "    print('CONNECTED')\n"
        + "except OSError as exc:\n"
        + f"    print('REFUSED {host}:', exc)\n"
    )


@dataclass
class Probe:
    """One bash command of the agent's and what its result must (and must not) say."""

    command: Callable[[World], str]
    expect: tuple[str, ...]
    never: tuple[str, ...] = ()
    setup: Callable[[World], None] | None = None


def plant_secrets(w: World) -> None:
    root = w.tmp / "workspaces"
    (w.tmp / "secret.txt").write_text(SECRET + "\n")  # the workspace root's parent
    other = root / "other-run-0000"
    other.mkdir(parents=True, exist_ok=True)
    (other / "secret.txt").write_text(OTHER_SECRET + "\n")


PROBES: dict[str, Probe] = {
    "secret-files-and-other-runs": Probe(
        setup=plant_secrets,
        command=lambda w: (
            f"grep -rs planted- {w.tmp} | head -3; "
            f"cat {w.tmp}/secret.txt; cat {w.tmp}/workspaces/other-run-0000/secret.txt; "
            f"ls {w.tmp}/workspaces/other-run-0000; ls /work /root"
        ),
        expect=(
            "secret.txt: No such file or directory",
            "other-run-0000/secret.txt: No such file or directory",
            "'/work': No such file or directory",
            "'/root': No such file or directory",
        ),
        never=(SECRET, OTHER_SECRET, "[exit code 0]"),
    ),
    "honks-own-port": Probe(
        command=lambda w: connect("127.0.0.1", w.port),
        expect=("REFUSED 127.0.0.1:", "Connection refused"),
        never=("CONNECTED",),
    ),
    "a-private-address": Probe(
        command=lambda w: connect("10.0.0.1", 80, only_without_routes=True),
        expect=("REFUSED 10.0.0.1:", "Network is unreachable"),
        never=("CONNECTED", "HAS-ROUTES"),
    ),
    "fork-bomb": Probe(
        command=lambda w: FORK_BOMB.replace("{m}", f"honk-bomb-{uuid.uuid4().hex[:12]}"),
        expect=("The command was stopped: it started more than 64 processes at once.",),
    ),
    "memory-hog": Probe(
        command=lambda w: "python3 -c 'b = bytearray(1 << 30)'",
        expect=("The command was stopped: it used more than 256 MB of memory.",),
    ),
    "a-2-gb-file": Probe(
        command=lambda w: "head -c 2G /dev/zero > big",
        expect=("The command was stopped: it tried to write a file larger than 10 MB.",),
    ),
}


@pytest.mark.parametrize("name", list(PROBES))
def test_an_attack_from_bash_is_refused_and_honk_goes_on(tight: World, name: str) -> None:
    probe = PROBES[name]
    if probe.setup is not None:
        probe.setup(tight)
    done = run(
        tight,
        f"attack: {name}",
        [bash(probe.command(tight)), bash(STILL_HERE), fa.text("Tried it.")],
    )
    assert len(done.results) == 2, done.results
    attack, after = done.results
    for wanted in probe.expect:
        assert wanted in attack, (wanted, attack)
    for unwanted in probe.never:
        assert unwanted not in attack, (unwanted, attack)
    assert SECRET not in done.seen and OTHER_SECRET not in done.seen
    assert after.startswith("still here")  # the run went on after the attack
    assert "➖" in done.comment  # nothing changed, and the comment says the run finished


def plant_nested_repository(marker: Path) -> str:
    """Bash that plants a nested repository at `sub` whose config (filters, textconv, fsmonitor,
    hooks) and attributes run a script touching `marker`, and declares it a submodule."""
    return "\n".join(
        [
            "set -e",
            "git init -q sub",
            "echo hello > sub/a.txt",
            "git -C sub add a.txt",
            "git -C sub -c user.name=a -c user.email=a@example.com commit -qm one",
            f"printf '#!/bin/sh\\ntouch {marker}\\ncat\\n' > sub/run.sh",
            "chmod +x sub/run.sh",
            "for key in filter.x.clean filter.x.smudge diff.x.textconv core.fsmonitor; do",
            '  git -C sub config "$key" "$PWD/sub/run.sh"',
            "done",
            'git -C sub config core.hooksPath "$PWD/sub"',
            "cp sub/run.sh sub/post-index-change",
            "echo '* filter=x diff=x' > sub/.gitattributes",
            "echo '* filter=x diff=x' > .gitattributes",
            "echo changed > sub/a.txt",
            "printf '[submodule \"sub\"]\\n\\tpath = sub\\n\\turl = ./sub\\n' > .gitmodules",
            "echo planted",
        ]
    )


def test_the_planted_repository_runs_its_command_under_plain_git(tmp_path: Path) -> None:
    """The control: plain git (`add -A`, then `status`) on the same plant does run it."""
    marker = tmp_path / "control-marker"
    top = tmp_path / "top"
    top.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GIT_CONFIG_GLOBAL": "/dev/null"}
    script = "git init -q . && " + f"( {plant_nested_repository(marker)} ) && "
    script += "git add -A 2>/dev/null; git status >/dev/null 2>&1; true"
    subprocess.run(["bash", "-c", script], cwd=top, env=env, check=True, capture_output=True)
    assert marker.exists()


def test_a_nested_repository_planted_for_honks_git_never_runs(tight: World) -> None:
    marker = tight.tmp / f"marker-{uuid.uuid4().hex[:12]}"  # writable by Honk's git, not by bash
    plant = plant_nested_repository(marker)
    first = run(
        tight,
        "nested repository",
        [bash(plant), edit("a - b", "a + b"), fa.text("Fixed add (and planted a repo).")],
    )
    assert first.results[0].startswith("planted"), first.results[0]
    assert not marker.exists()
    (pull,) = [p for p in tight.pulls() if p.head_ref.startswith(f"honk/{first.number}-")]
    pushed = tree(tight, pull.head_ref)
    assert "calc.py" in pushed  # the real change went out...
    assert not [e for e in pushed if e == "sub" or e.startswith("sub/")]  # ...the repository not
    assert "Left out" in (tight.tracking_comment(first.number) or "")  # and it says so
    second = run(
        tight,
        "after the nested repository",
        [bash("git status --short; ls -a"), edit("a - b", "a + b"), fa.text("Fixed add.")],
    )
    assert not marker.exists(), "a command planted in the work tree ran outside the sandbox"
    assert "sub" not in second.results[0].split()  # a fresh workspace: nothing left behind


def tree(w: World, branch: str) -> list[str]:
    """Every path on `branch` of the fake GitHub's repository (a gitlink included)."""
    out = subprocess.run(
        [
            "git",
            "--git-dir",
            str(w.git_root / f"{REPO}.git"),
            "ls-tree",
            "-r",
            "--name-only",
            branch,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_a_token_in_a_file_marked_minus_diff_still_blocks_the_push(tight: World) -> None:
    token = "ghp_" + ("a1B2c3D4e5F6" * 3)
    assert len(token) == 40
    done = run(
        tight,
        "add a token",
        [
            create(".gitattributes", "*.py -diff\n"),
            create("token_holder.py", f'TOKEN = "{token}"\n'),
            fa.text("Added the token."),
        ],
    )
    assert "⛔ Nothing pushed" in done.comment, done.comment
    assert token not in done.comment
    assert not any(b.startswith(f"honk/{done.number}-") for b in tight.branches())
    assert not [p for p in tight.pulls() if p.head_ref.startswith(f"honk/{done.number}-")]


def vm_hwm_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            assert unit == "kB"
            return int(value) * 1024
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def test_viewing_a_huge_sparse_file_keeps_honk_small(roomy: World) -> None:
    done = run(
        roomy,
        "look at the big file",
        [
            bash(
                "printf 'hello sparse\\n' > big.txt && truncate -s 1500M big.txt && ls -s big.txt"
            ),
            fa.tool_use("str_replace_based_edit_tool", {"command": "view", "path": "big.txt"}),
            bash("rm big.txt; echo removed"),
            fa.text("Looked at it."),
        ],
    )
    assert len(done.results) == 3, done.results
    assert "[exit code 0]" in done.results[0], done.results[0]
    assert "hello sparse" in done.results[1] and "showing the first" in done.results[1]
    assert roomy.honk is not None
    peak = vm_hwm_bytes(roomy.honk.pid)
    assert peak < 500 * 1024 * 1024, f"honk serve peaked at {peak / 2**20:.0f} MiB"
    assert done.results[2].startswith("removed")


def test_setup_network_reaches_only_the_proxy_and_the_report_lists_what_it_refused(
    tight: World,
) -> None:
    """With `setup_network: true` the setup command's requests go through Honk's egress proxy:
    Honk's own port and a private address are refused there (never connected to: literal
    addresses are refused unless listed), a direct connection finds no route to the host, and
    the tracking comment lists each refusal."""
    fetches = [
        python(
            "import urllib.request\n"
            "try:\n"
            f"    urllib.request.urlopen('{url}', timeout=10)\n"
            "except Exception as e:\n"
            "    print(type(e).__name__)"
        )
        for url in (f"http://127.0.0.1:{tight.port}/ping", "http://10.0.0.1/", "http://evil.test/")
    ]
    setup = json.dumps("\n".join([*fetches, connect("127.0.0.1", tight.port), "true"]))
    tight.github.set_file(
        REPO, ".github/honk.yml", f"{HONK_YML}setup_network: true\nsetup: {setup}\n"
    )
    try:
        done = run(tight, "setup with network", [edit("a - b", "a + b"), fa.text("Fixed add.")])
    finally:
        tight.github.set_file(REPO, ".github/honk.yml", HONK_YML)
    assert "**Network requests refused** (`HONK_EGRESS_ALLOW`)" in done.comment
    for host in (f"127.0.0.1:{tight.port}", "10.0.0.1", "evil.test"):
        assert host in done.comment, host
