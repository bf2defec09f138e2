"""The filesystem a sandboxed process sees: an allow-list, shared by `Sandbox` and Claude Code.

Nothing of the host is visible unless listed here or bound by the caller: the system directories
a toolchain needs (read-only), a few files of /etc (never all of it: it holds keys and Honk's own
configuration), a fresh /proc whose /proc/sys is read-only, a minimal /dev, and size-capped
tmpfs at /tmp and /dev/shm. The caller adds its workspace (read-write), the run's git dir and the
operator's toolchains (read-only). The root itself is then made read-only, so nothing outside
those binds can be written, not even memory-backed files in the root's own tmpfs.

Honk may run as root, and then the sandbox runs as uid 0 too (in a user namespace, but uid 0 of
the host for file permissions): so every capability is dropped, /proc/sys is bound read-only
(otherwise uid 0 could write the host's sysctls) and nested user namespaces are refused where
bubblewrap can do that.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What toolchains read in /etc: users and groups, name resolution, TLS trust stores, the dynamic
# linker's cache, the time zone, alternatives' symlinks. Never /etc/ssl/private, /etc/shadow,
# /etc/honk or anything else an operator keeps there.
ETC_ENTRIES = (
    "passwd",
    "group",
    "hosts",
    "host.conf",
    "nsswitch.conf",
    "resolv.conf",
    "gai.conf",
    "services",
    "protocols",
    "localtime",
    "timezone",
    "os-release",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "pki/ca-trust",
    "pki/tls/certs",
    "pki/tls/cert.pem",
    "pki/tls/openssl.cnf",
    "crypto-policies",
)


@dataclass(frozen=True)
class Features:
    """Options of the bubblewrap at hand that not every version has."""

    size: bool = False  # --size for a tmpfs (bubblewrap >= 0.10)
    disable_userns: bool = False  # --disable-userns (bubblewrap >= 0.8)


@functools.cache
def offered(binary: str) -> Features:
    """What `binary --help` offers; nothing for a binary that cannot be run."""
    try:
        done = subprocess.run(
            [binary, "--help"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return Features()
    text = done.stdout + done.stderr
    return Features(size="--size" in text, disable_userns="--disable-userns" in text)


def probe(binary: str, found: Features) -> subprocess.CompletedProcess[str] | None:
    """`true` run in the profile (no paths of a caller's), or None if it could not start."""
    args = profile(network=False, found=found, tmpfs_bytes=None, readonly=[], writable=[])
    argv = [binary, *args, "--", shutil.which("true") or "/bin/true"]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


@functools.cache
def working_features(binary: str) -> Features | None:
    """The features with which `binary` builds the sandbox here, or None if it cannot (a
    container may forbid namespaces; a setuid bubblewrap refuses --disable-userns)."""
    for found in dict.fromkeys([offered(binary), Features()]):
        done = probe(binary, found)
        if done is not None and done.returncode == 0:
            return found
    return None


def features(binary: str) -> Features:
    """What to use with `binary` (nothing optional for one that does not work here)."""
    return working_features(binary) or Features()


def system_args(*, network: bool, found: Features, tmpfs_bytes: int | None) -> list[str]:
    """Namespaces, privileges and the system part of the allow-list (see the module docstring).
    `tmpfs_bytes` caps /tmp and /dev/shm, which live in memory, where bubblewrap can."""
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if network:
        args.append("--share-net")
    if found.disable_userns:
        args += ["--unshare-user", "--disable-userns"]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):  # merged /usr: /bin -> usr/bin
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for entry in ETC_ENTRIES:
        path = f"/etc/{entry}"
        args += ["--ro-bind-try", path, path]  # a symlink (resolv.conf into /run) is followed
    args += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev"]
    size = ["--size", str(tmpfs_bytes)] if found.size and tmpfs_bytes else []
    args += [*size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]  # noqa: S108 - fresh, private
    args += [*size, "--tmpfs", "/tmp"]  # noqa: S108 - a fresh, private tmpfs
    return args


def visible_roots(readonly: Iterable[Path], writable: Iterable[Path]) -> list[Path]:
    """Every host path the profile shows (for deciding which hidden paths need masking)."""
    system = [Path(p).resolve() for p in SYSTEM_DIRS if os.path.isdir(p)]
    etc = [Path("/etc", entry) for entry in ETC_ENTRIES]
    return [*system, *etc, *readonly, *writable]


def path_binds(
    *, readonly: Sequence[Path], writable: Sequence[Path], hidden: Sequence[Path] = ()
) -> list[str]:
    """Bind the caller's paths, shallowest first so a nested bind lands on top (the workspace's
    `.git` read-only inside the writable workspace); mask `hidden` paths only where they would
    otherwise be visible (Honk's data dir inside a toolchain directory the operator allowed)."""
    ops: list[tuple[int, int, list[str]]] = []
    for path in readonly:
        ops.append((len(path.parts), len(ops), ["--ro-bind-try", str(path), str(path)]))
    for path in writable:
        ops.append((len(path.parts), len(ops), ["--bind", str(path), str(path)]))
    roots = visible_roots(readonly, writable)
    for path in hidden:
        if not any(path.is_relative_to(root) for root in roots):
            continue  # not visible anyway
        if path.is_dir():
            ops.append((len(path.parts), len(ops), ["--tmpfs", str(path)]))
        elif path.exists():
            ops.append((len(path.parts), len(ops), ["--ro-bind", os.devnull, str(path)]))
    return [arg for _, _, op in sorted(ops) for arg in op]


def profile(
    *,
    network: bool,
    found: Features,
    tmpfs_bytes: int | None,
    readonly: Sequence[Path],
    writable: Sequence[Path],
    hidden: Sequence[Path] = (),
) -> list[str]:
    """The whole allow-list, ending with the root made read-only."""
    return [
        *system_args(network=network, found=found, tmpfs_bytes=tmpfs_bytes),
        *path_binds(readonly=readonly, writable=writable, hidden=hidden),
        "--remount-ro",
        "/",
    ]
