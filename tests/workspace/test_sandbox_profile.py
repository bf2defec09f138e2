"""What a sandboxed command sees of the host, with real bubblewrap: only the allow-list.

Secrets are planted where an operator might keep them (next to the workspace, in another run's
workspace, in the operator's home, in a data dir outside any of those, in /etc) and nothing of
them must be readable; what a toolchain needs must still work."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from honk_app.workspace import confine
from honk_app.workspace.sandbox import Sandbox, bwrap_binary
from tests import needs

SECRET = "planted-secret-" + uuid.uuid4().hex
THIS_FILE = Path(__file__).resolve()


@dataclass
class Host:
    """A host laid out as in production, with secrets planted around the run's workspace."""

    repo: Path
    git_dir: Path
    scratch: Path
    planted: dict[str, Path]


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    needs.require_bwrap()
    runs = tmp_path / "workspaces"
    run = runs / "run-a"
    repo, git_dir = run / "repo", run / "git"
    for path in (repo, git_dir, runs / "run-b" / "repo"):
        path.mkdir(parents=True)
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
    # outside the test's tmp dir: where an operator may really keep Honk's files
    data_dir = Path("/var/tmp") / f"honk-data-{uuid.uuid4().hex}"
    home_file = Path.home() / f".honk-planted-{uuid.uuid4().hex}"
    planted = {
        "beside the workspace": run / "secret.txt",
        "above the workspaces": runs / "secret.txt",
        "another run's workspace": runs / "run-b" / "repo" / "secret.txt",
        "Honk's data dir": data_dir / "honk.sqlite",
        "Honk's .env": data_dir / ".env",
        "the operator's home": home_file,
    }
    data_dir.mkdir()
    try:
        for path in planted.values():
            path.write_text(f"{SECRET}\n")
        yield Host(repo, git_dir, run / "scratch", planted)
    finally:
        home_file.unlink(missing_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)


def sandbox(host: Host) -> Sandbox:
    return Sandbox(host.repo, temp_dir=host.scratch, readonly_paths=[host.git_dir], mode="bwrap")


PLANTED = [
    "beside the workspace",
    "above the workspaces",
    "another run's workspace",
    "Honk's data dir",
    "Honk's .env",
    "the operator's home",
]


@pytest.mark.parametrize("where", PLANTED)
async def test_a_secret_planted_outside_the_allow_list_is_invisible(host: Host, where: str) -> None:
    path = host.planted[where]
    async with sandbox(host) as box:
        read = await box.run(f"cat {path}")
        listed = await box.run(f"ls -a {path.parent}")
    assert read.exit_code != 0 and SECRET not in read.output
    assert path.name not in listed.output


# Paths of the host that were visible before the allow-list (everything minus a deny-list).
HOST_PATHS: dict[str, Callable[[], str]] = {
    "Honk's source under /work": lambda: str(THIS_FILE),
    "the operator's home": lambda: str(Path.home()),
    "/etc/shadow": lambda: "/etc/shadow",
    "/etc/ssl/private": lambda: "/etc/ssl/private",
    "/run": lambda: "/run",
    "/sys": lambda: "/sys",
    "/var": lambda: "/var",
    "/opt": lambda: "/opt",
}


@pytest.mark.parametrize("name", HOST_PATHS)
async def test_the_rest_of_the_host_is_not_there(host: Host, name: str) -> None:
    path = HOST_PATHS[name]()
    async with sandbox(host) as box:
        result = await box.run(f"test -e {path} && echo PRESENT")
    assert "PRESENT" not in result.output


# (what, command, what the output must hold): a toolchain still works.
WORKS = [
    ("env", "/usr/bin/env", "HOME="),
    ("python3", "python3 -c 'print(6 * 7)'", "42"),
    ("the user database", "id -un", ""),
    ("git", "git --version", "git version"),
    ("the workspace is writable", "echo ok > made && cat made", "ok"),
    ("HOME, TMPDIR and /tmp", "echo a > $HOME/a && echo b > $TMPDIR/b && echo c > /tmp/c", ""),
    ("the run's git dir is readable", "cat ../git/HEAD", "refs/heads/main"),
    ("no capabilities", "grep CapEff /proc/self/status", "0000000000000000"),
]


@pytest.mark.parametrize(("what", "command", "expected"), WORKS, ids=[w[0] for w in WORKS])
async def test_what_a_toolchain_needs_works(
    host: Host, what: str, command: str, expected: str
) -> None:
    async with sandbox(host) as box:
        result = await box.run(command)
    assert result.ok, result.output
    assert expected in result.output


# (what, command): uid 0 in the sandbox is the host's uid 0 for file permissions when Honk runs
# as root, so everything outside the binds must be read-only.
REFUSED = [
    ("the root", "touch /planted"),
    ("/dev", "touch /dev/planted"),
    ("the host's sysctls", "echo honk > /proc/sys/kernel/hostname"),
    ("the run's git dir", "echo bad > ../git/HEAD"),
]


@pytest.mark.parametrize(("what", "command"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_nothing_outside_the_workspace_can_be_written(
    host: Host, what: str, command: str
) -> None:
    async with sandbox(host) as box:
        result = await box.run(command)
    assert result.exit_code != 0
    assert (host.git_dir / "HEAD").read_text() == "ref: refs/heads/main\n"


async def test_no_nested_user_namespaces(host: Host) -> None:
    # the wheel's bubblewrap (0.11) can refuse them, and is chosen over an older system one
    assert confine.features(bwrap_binary() or "bwrap").disable_userns
    async with sandbox(host) as box:
        result = await box.run("unshare --user true && echo NESTED")
    assert "NESTED" not in result.output


async def test_a_hidden_path_inside_an_allowed_one_is_masked(tmp_path: Path) -> None:
    needs.require_bwrap()
    toolchain = tmp_path / "toolchain"
    (toolchain / "bin").mkdir(parents=True)
    (toolchain / "bin" / "tool").write_text("the operator's toolchain\n")
    (toolchain / ".env").write_text(f"WEBHOOK_SECRET={SECRET}\n")
    (toolchain / "data").mkdir()
    (toolchain / "data" / "honk.sqlite").write_text(SECRET)
    box = Sandbox(
        tmp_path / "repo",
        mode="bwrap",
        readonly_paths=[toolchain],
        hidden_paths=[toolchain / ".env", toolchain / "data"],
    )
    (tmp_path / "repo").mkdir()
    async with box:
        result = await box.run(
            f"cat {toolchain}/bin/tool; cat {toolchain}/.env; ls {toolchain}/data"
        )
    assert "the operator's toolchain" in result.output
    assert SECRET not in result.output and "honk.sqlite" not in result.output
