"""How Claude Code is launched: its environment, the bubblewrap arguments, the launcher script run
for real, and reading the CLI's process tree from /proc."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

import honk_app.workspace.sandbox as sandbox_module
from honk_app.agent.base import AgentUnavailable
from honk_app.agent.claude_code_launch import (
    NO_CLI,
    ClaudeCodeSettings,
    ProcInfo,
    RunPaths,
    bwrap_problem,
    cli_environment,
    find_cli,
    grown_tree,
    launch_argv,
    launcher_script,
    parse_stat,
    process_tree,
    read_pid,
    web_egress,
)
from honk_app.agent.proxy_rules import ProxyGrant
from honk_app.models import Limits
from honk_app.workspace import confine
from honk_app.workspace.egress_rules import (
    FORWARDER,
    SANDBOX_FORWARDER,
    SANDBOX_SOCKET,
    sandbox_egress,
)
from honk_app.workspace.sandbox import Sandbox, bwrap_binary
from tests.needs import missing

REAL_KEY = "sk-ant-api03-" + "RealKeyOfHonk" * 4
PLANTED = {
    "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nMIIEplantedkey\n-----END RSA PRIVATE KEY-----",
    "WEBHOOK_SECRET": "whsec-planted-webhook-secret-4242",
    "ANTHROPIC_API_KEY": REAL_KEY,
    "HONK_DATABASE_URL": "postgresql://honk:planted-db-password@db.internal/honk",
    "GITHUB_TOKEN": "ghs_" + "PlantedInstallationToken0" * 2,
}


def require_bwrap() -> None:
    problem = bwrap_problem(bwrap_binary() or "bwrap")  # Claude Code's own probe: more telling
    if problem is not None:
        missing(problem, "install bubblewrap")


GRANT = ProxyGrant("run-1", "honk-proxy-" + "t" * 43, "http://127.0.0.1:4242", Path("/p/a.sock"))
PATHS = RunPaths.under(Path("/tmp/honk-claude-code-x"))


def test_the_cli_environment_is_built_from_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    env = cli_environment(ClaudeCodeSettings(max_retries=0), GRANT, PATHS, "0.2.187")
    rendered = repr(env)
    assert all(value not in rendered for value in PLANTED.values())
    assert env["ANTHROPIC_API_KEY"] == GRANT.token  # the proxy's, never the real key
    assert env["ANTHROPIC_BASE_URL"] == GRANT.base_url
    assert env["ANTHROPIC_UNIX_SOCKET"] == "/p/a.sock"  # the only way out of the sandbox
    assert env["HOME"] == str(PATHS.home) and env["CLAUDE_CONFIG_DIR"] == str(PATHS.config)
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"
    for switch in ("DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING", "DISABLE_AUTOUPDATER"):
        assert env[switch] == "1"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    bare = cli_environment(ClaudeCodeSettings(isolation="none"), GRANT, PATHS, "0.2.187")
    assert "ANTHROPIC_UNIX_SOCKET" not in bare


def test_the_sandbox_has_no_network_and_a_read_only_git_directory(tmp_path: Path) -> None:
    workspace = Path("/work/ws")
    (tmp_path / ".env").write_text("WEBHOOK_SECRET=x\n")
    hidden = (str(tmp_path / ".env"), str(tmp_path))
    argv = launch_argv(
        ClaudeCodeSettings(isolation="bwrap", hidden_paths=hidden),
        bwrap="/usr/bin/bwrap",
        cli=Path("/venv/claude_agent_sdk/_bundled/claude"),
        workspace=workspace,
        paths=PATHS,
        socket_path=Path("/p/a.sock"),
    )
    assert "--unshare-all" in argv and "--share-net" not in argv
    assert {"--die-with-parent", "--new-session"} <= set(argv)
    assert ("--cap-drop", "ALL") in itertools.pairwise(argv)
    assert "--setenv" not in argv  # values stay out of command lines, which anyone can read
    triples = [tuple(argv[i : i + 3]) for i in range(len(argv) - 2)]
    assert ("--bind", "/work/ws", "/work/ws") in triples
    git = ("--ro-bind-try", "/work/ws/.git", "/work/ws/.git")
    assert triples.index(git) > triples.index(("--bind", "/work/ws", "/work/ws"))
    assert ("--ro-bind-try", "/p/a.sock", "/p/a.sock") in triples
    bundled = "/venv/claude_agent_sdk/_bundled"
    assert ("--ro-bind-try", bundled, bundled) in triples  # the CLI's own directory
    # Honk's data dir and .env are not in the allow-list: nothing shows them, nothing masks them
    assert not [arg for arg in argv if arg.startswith(str(tmp_path))]
    assert "/etc" not in argv and ("--ro-bind", "/", "/") not in triples  # an allow-list
    assert str(PATHS.root) not in argv  # the launcher stays out of the agent's reach
    tail = argv[argv.index("--") + 1 :]
    assert tail[0].endswith("bash") and tail[1] == "-c" and "ulimit" in tail[2]
    assert tail[-2:] == ["honk-limits", "/venv/claude_agent_sdk/_bundled/claude"]
    assert "-t" not in tail[2].split()  # no CPU limit: the CLI lives as long as the run


EGRESS = Path("/run/honk-egress/run-1.sock")


@pytest.mark.parametrize(
    ("allow_web", "egress_socket", "isolation"),
    [
        (True, EGRESS, "bwrap"),
        (True, None, "bwrap"),  # no grant: no web at all
        (False, EGRESS, "bwrap"),  # the config did not allow it
        (True, EGRESS, "none"),  # no sandbox, nothing to bind
    ],
)
def test_the_web_is_reached_only_through_honks_egress_proxy(
    allow_web: bool, egress_socket: Path | None, isolation: str
) -> None:
    """Never the host's network; with `allow_web` and a run's egress socket, the same plumbing as
    the command sandbox: the socket and forwarder bound in, the forwarder wrapping the CLI, and
    HTTP(S)_PROXY set, while the Anthropic API stays on ANTHROPIC_UNIX_SOCKET."""
    settings = ClaudeCodeSettings(
        isolation=isolation,  # type: ignore[arg-type]
        allow_web=allow_web,
        egress_socket=egress_socket,
    )
    argv = launch_argv(
        settings,
        bwrap="/usr/bin/bwrap",
        cli=Path("/c/claude"),
        workspace=Path("/work/ws"),
        paths=PATHS,
        socket_path=Path("/p/a.sock"),
    )
    env = cli_environment(settings, GRANT, PATHS, "0.2.187")
    assert "--share-net" not in argv
    if not (allow_web and egress_socket is not None and isolation == "bwrap"):
        assert web_egress(settings) is None
        assert str(EGRESS) not in argv and SANDBOX_SOCKET not in argv
        assert not any("proxy" in name.lower() for name in env)
        return
    egress = sandbox_egress(EGRESS)
    triples = [tuple(argv[i : i + 3]) for i in range(len(argv) - 2)]
    assert ("--ro-bind", str(EGRESS), SANDBOX_SOCKET) in triples
    assert ("--ro-bind", str(FORWARDER), SANDBOX_FORWARDER) in triples
    # bound before `/` becomes read-only, as in the command sandbox
    last_remount = len(argv) - 1 - argv[::-1].index("--remount-ro")
    assert triples.index(("--ro-bind", str(EGRESS), SANDBOX_SOCKET)) < last_remount
    tail = argv[argv.index("--") + 1 :]
    assert tail[: len(egress.argv_prefix)] == egress.argv_prefix  # the forwarder wraps the CLI
    assert tail[-2:] == ["honk-limits", "/c/claude"]
    assert {k: env[k] for k in egress.env} == egress.env
    assert env["HTTPS_PROXY"].startswith("http://127.0.0.1:")
    assert env["ANTHROPIC_UNIX_SOCKET"] == str(GRANT.unix_socket)  # the API's own way out


def test_the_cli_gets_the_sandboxs_allow_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claude Code and `Sandbox` share one profile: the same system part, the same end."""
    monkeypatch.setattr(sandbox_module, "_bwrap_binary", "/usr/bin/bwrap")
    limits = Limits(max_memory_mb=512)
    settings = ClaudeCodeSettings(isolation="bwrap", read_only_paths=("/opt/node",), limits=limits)
    cli_argv = launch_argv(
        settings,
        bwrap="/usr/bin/bwrap",
        cli=Path("/opt/claude/claude"),
        workspace=tmp_path / "repo",
        paths=PATHS,
        socket_path=Path("/p/a.sock"),
    )
    box = Sandbox(tmp_path / "repo", temp_dir=tmp_path / "scratch", limits=limits)
    box_argv = box.argv("true", network=False)
    system = confine.system_args(
        network=False, found=confine.features("/usr/bin/bwrap"), tmpfs_bytes=512 * 1024 * 1024
    )

    def starts_with_system(argv: list[str]) -> bool:
        return argv[1 : 1 + len(system)] == system

    assert starts_with_system(cli_argv) and starts_with_system(box_argv)
    for argv in (cli_argv, box_argv):
        assert argv[argv.index("--chdir") - 2 : argv.index("--chdir")] == ["--remount-ro", "/"]
    triples = [tuple(cli_argv[i : i + 3]) for i in range(len(cli_argv) - 2)]
    assert ("--ro-bind-try", "/opt/node", "/opt/node") in triples  # the operator's toolchain
    assert ("--ro-bind-try", "/opt/claude", "/opt/claude") in triples  # the CLI itself


@pytest.mark.parametrize("isolation", ["none", "bwrap"])
def test_the_launcher_gives_the_cli_only_its_own_environment(
    isolation: str, tmp_path: Path
) -> None:
    """The launcher run for real, as the SDK runs it, with /usr/bin/env standing in for the CLI."""
    if isolation == "bwrap":
        require_bwrap()
    settings = ClaudeCodeSettings(isolation=isolation)  # type: ignore[arg-type]
    paths = RunPaths.under(tmp_path / "run")
    paths.home.mkdir(parents=True)
    paths.config.mkdir()
    sock = tmp_path / "a.sock"
    sock.touch()
    grant = ProxyGrant("run-1", "honk-proxy-" + "x" * 43, "http://127.0.0.1:9", sock)
    env = cli_environment(settings, grant, paths, "0.2.187")
    argv = launch_argv(
        settings,
        bwrap=bwrap_binary() or "",
        cli=Path("/usr/bin/env"),
        workspace=tmp_path,
        paths=paths,
        socket_path=sock,
    )
    assert grant.token not in " ".join(argv)
    paths.launcher.write_text(launcher_script(argv, list(env), paths.pid_file, sys.executable))
    paths.launcher.chmod(0o700)
    sdk_env = {**os.environ, **PLANTED, "CLAUDE_CODE_ENTRYPOINT": "sdk-py", **env}  # as the SDK
    done = subprocess.run(
        [str(paths.launcher)], env=sdk_env, capture_output=True, text=True, check=False
    )
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert {k: v for k, v in seen.items() if k != "PWD"} == env  # bubblewrap sets PWD
    assert all(value not in done.stdout for value in PLANTED.values())
    assert int(paths.pid_file.read_text()) > 0


def test_proc_stat_is_parsed_even_with_spaces_and_parentheses_in_the_name() -> None:
    fields = "S 10 20 30 0 -1 4194304 " + " ".join(["0"] * 12) + " 987654 0"
    info = parse_stat(f"4242 (tricky) name (x)) {fields}")
    assert info == ProcInfo(pid=4242, state="S", ppid=10, session=30, start=987654)
    own = parse_stat(Path(f"/proc/{os.getpid()}/stat").read_text())
    assert own.pid == os.getpid() and own.ppid == os.getppid()


def test_a_process_tree_holds_descendants_and_session_members() -> None:
    table = [
        ProcInfo(1, "S", 0, 1, 0),
        ProcInfo(100, "S", 1, 100, 5),  # the CLI, leading its session
        ProcInfo(101, "S", 100, 100, 6),
        ProcInfo(102, "S", 101, 102, 7),  # a grandchild in a session of its own
        ProcInfo(103, "S", 1, 100, 8),  # reparented to init, still in the CLI's session
        ProcInfo(200, "S", 1, 200, 9),
    ]
    assert {p.pid for p in process_tree(table, 100, session=True)} == {100, 101, 102, 103}
    assert {p.pid for p in process_tree(table, 100, session=False)} == {100, 101, 102}


def test_the_tree_of_a_child_is_remembered_and_a_stranger_is_ignored(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        tree = grown_tree([], child.pid, session=False)
        assert [p.pid for p in tree] == [child.pid]
        assert grown_tree(tree, 1, session=False) == tree  # not our child: nothing added
    finally:
        child.kill()
        child.wait()
    assert grown_tree(tree, child.pid, session=False) == tree  # gone: the tree is kept
    assert read_pid(tmp_path / "cli.pid") is None
    (tmp_path / "cli.pid").write_text("4242")
    assert read_pid(tmp_path / "cli.pid") == 4242


def test_the_cli_is_the_configured_one_or_unavailable(tmp_path: Path) -> None:
    cli = tmp_path / "claude"
    cli.write_text("#!/bin/sh\n")
    assert find_cli(ClaudeCodeSettings(cli_path=cli), sdk=None) == cli
    with pytest.raises(AgentUnavailable) as caught:
        find_cli(ClaudeCodeSettings(cli_path=tmp_path / "missing"), sdk=None)
    assert str(caught.value) == NO_CLI


def test_the_cli_and_its_commands_get_the_usual_umask_not_honks(tmp_path: Path) -> None:
    """Honk runs with umask 077 for its own data; the repository's commands expect 022."""
    launcher = tmp_path / "launcher"
    launcher.write_text(
        launcher_script(["/bin/sh", "-c", "umask"], [], tmp_path / "pid", sys.executable)
    )
    launcher.chmod(0o700)
    done = subprocess.run(
        [str(launcher)],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.umask(0o077),
    )
    assert done.stdout.strip() == "0022"
