"""What the egress proxy decides without I/O (the allow-list, which addresses are off limits, how
a proxy request is read) and what a sandbox adds to reach it (`sandbox_egress`). Pure, so every
rule is tested on its own; `egress.py` does the I/O.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_FORWARD_PORT = 3128  # inside the sandbox's own network namespace: never the host's
FORWARDER = Path(__file__).with_name("egress_forwarder.py")
# Inside the sandbox: its /tmp is a fresh tmpfs, so these paths are free and fixed.
SANDBOX_DIR = "/tmp/.honk-egress"  # noqa: S108
SANDBOX_SOCKET = f"{SANDBOX_DIR}/proxy.sock"
SANDBOX_FORWARDER = f"{SANDBOX_DIR}/forwarder.py"
# The registries the common package managers need and nothing else: pip, npm/yarn, go, cargo,
# bundler/gem, maven. Not github.com (a general host, not a registry: add it for git
# dependencies), not the distributions' mirrors (apt needs root, which a sandbox never has).
DEFAULT_EGRESS_ALLOW = (
    "pypi.org",
    "files.pythonhosted.org",
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "proxy.golang.org",
    "sum.golang.org",
    "crates.io",
    "index.crates.io",
    "static.crates.io",
    "rubygems.org",
    "index.rubygems.org",
    "repo.maven.apache.org",
    "repo1.maven.org",
)
DEFAULTS_KEYWORD = "default"  # in HONK_EGRESS_ALLOW: the list above, so entries add to it
DEFAULT_PORTS = (80, 443)
# Platform endpoints that are not in a private range (Azure's wire server, ECS task metadata).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "168.63.129.16", "100.100.100.200")
) | {ipaddress.ip_address("fd00:ec2::254")}
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: is_private misses it
SPECIAL_V4 = ipaddress.ip_network("192.0.0.0/24")  # IETF assignments, some stacks call it global
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PHRASES = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    502: "Bad Gateway",
}
FORWARDED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"}
)


class Refused(Exception):
    """A request the proxy answers itself, with `status` and a one-line `reason`."""

    def __init__(self, status: int, reason: str, host: str = "-") -> None:
        super().__init__(reason)
        self.status, self.reason, self.host = status, reason, host


# ---- hosts and the allow-list -------------------------------------------------------------------


def normalize_host(text: str) -> str | None:
    """Lower-case host name or canonical IP literal; None for anything else (a trailing dot, a
    zone id, a numeric last label as in `127.1` or `0x7f000001`, which resolvers read as IPs)."""
    text = text.lower()
    if not text or len(text) > 253 or "%" in text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    labels = text.split(".")
    if not all(_LABEL.match(label) for label in labels) or labels[-1][0].isdigit():
        return None
    return text


def format_host(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class AllowRule:
    host: str  # a normalized host or IP; for a wildcard, the suffix after "*."
    wildcard: bool = False
    port: int | None = None  # None: 80 and 443

    def names(self, host: str) -> bool:
        return host.endswith("." + self.host) if self.wildcard else host == self.host

    def allows(self, host: str, port: int) -> bool:
        return self.names(host) and port in ((self.port,) if self.port else DEFAULT_PORTS)

    def __str__(self) -> str:
        name = f"*.{self.host}" if self.wildcard else self.host
        return format_host(name, self.port) if self.port else name


def split_port(text: str) -> tuple[str, str | None]:
    """`host[:port]` or `[v6][:port]` into host and port text (None when there is no port)."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")) or ":" not in host:
            raise ValueError("a malformed [IPv6] address")
        return host, rest[1:] if rest else None
    if text.count(":") > 1:
        raise ValueError("an IPv6 address must be in brackets")
    host, colon, port = text.partition(":")
    return host, port if colon else None


def parse_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 0 < int(text) < 65536:
        raise ValueError(f"{text!r} is not a port")
    return int(text)


def parse_rule(entry: str) -> AllowRule:
    """One HONK_EGRESS_ALLOW entry: `host`, `*.suffix`, either with `:port`, or an IP literal."""
    if any(c in entry for c in "/@?#") or "://" in entry:
        raise ValueError(f"{entry!r}: give a host name (and port), not a URL")
    try:
        name, port_text = split_port(entry.strip().lower())
        port = None if port_text is None else parse_port(port_text)
    except ValueError as exc:
        raise ValueError(f"{entry!r}: {exc}") from exc
    wildcard = name.startswith("*.")
    host = normalize_host(name[2:] if wildcard else name)
    if host is None or (wildcard and (":" in host or host.replace(".", "").isdigit())):
        raise ValueError(f"{entry!r} is not a host name, `*.domain` or an IP address")
    return AllowRule(host, wildcard, port)


def parse_allow_list(text: str | None) -> tuple[AllowRule, ...]:
    """HONK_EGRESS_ALLOW: comma- or space-separated entries; unset means the default registries,
    `default` names them in a list that adds to them, and an empty value allows nothing."""
    entries = (DEFAULTS_KEYWORD,) if text is None else text.replace(",", " ").split()
    rules: list[AllowRule] = []
    for entry in entries:
        found = parse_defaults() if entry.lower() == DEFAULTS_KEYWORD else [parse_rule(entry)]
        rules += [rule for rule in found if rule not in rules]
    return tuple(rules)


def parse_defaults() -> list[AllowRule]:
    return [parse_rule(entry) for entry in DEFAULT_EGRESS_ALLOW]


def check_target(rules: Sequence[AllowRule], host: str, port: int) -> str | None:
    """Why the allow-list refuses `host:port`, or None. An IP literal only as an exact entry."""
    where = format_host(host, port)
    literal = ":" in host or host.replace(".", "").isdigit()
    named = [rule for rule in rules if rule.names(host) and not (literal and rule.wildcard)]
    if not named:
        what = "IP address" if literal else "host"
        return f"{where}: {what} not on the egress allow-list (HONK_EGRESS_ALLOW)"
    if not any(rule.allows(host, port) for rule in named):
        return f"{where}: port {port} not allowed for this host (HONK_EGRESS_ALLOW)"
    return None


# ---- addresses ----------------------------------------------------------------------------------


def forbidden_reason(address: IPAddress) -> str | None:
    """Why a sandbox may never connect to `address`, or None for a public address. Embedded IPv4
    (mapped, 6to4, NAT64) is judged as that IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            return None if inner is None else f"{inner} (embedded in {address})"
    checks: Iterable[tuple[bool, str]] = (
        (address in METADATA, "a cloud metadata address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in SHARED, "a shared (CGNAT) address"),
        (address.is_private, "a private address"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "site-local"),
        (address.is_reserved, "a reserved address"),
        (address in SPECIAL_V4 or not address.is_global, "not a public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


def vet_addresses(
    host: str, addresses: Sequence[IPAddress], policy: Callable[[IPAddress], str | None]
) -> str | None:
    """Refuse if ANY address is off limits: a name that also points inward is not trusted."""
    for address in addresses:
        reason = policy(address)
        if reason is not None:
            return f"{host} resolves to {address}, {reason}"
    return None


# ---- requests -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    host: str  # normalized
    port: int
    forward_head: bytes | None  # plain HTTP: the head to send upstream; None for CONNECT

    @property
    def where(self) -> str:
        return format_host(self.host, self.port)


def printable(text: str, limit: int = 120) -> str:
    """One short line of printable ASCII: hosts in reports and replies come from the sandbox."""
    clean = "".join(c if c.isascii() and c.isprintable() else "?" for c in text)
    return clean[:limit] + ("..." if len(clean) > limit else "")


def parse_authority(text: str, default_port: int | None) -> tuple[str, int]:
    if "@" in text:
        raise Refused(403, "credentials in the address (user@host) are not allowed", text)
    try:
        name, port_text = split_port(text)
        if port_text is None or port_text == "":
            if default_port is None:
                raise ValueError("CONNECT needs host:port")
            port = default_port
        else:
            port = parse_port(port_text)
    except ValueError as exc:
        raise Refused(400, f"{printable(text)}: {exc}", text) from exc
    host = normalize_host(name)
    if host is None:
        raise Refused(403, f"{printable(text)}: not a plain host name or IP address", text)
    return host, port


def parse_head(head: bytes) -> Target:
    """A request head (through the blank line): CONNECT host:port, or an absolute-form plain
    HTTP request, rewritten to origin form with Host pinned to the vetted authority (a Host of
    the client's choosing would let a shared CDN route it elsewhere) and Connection: close."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise Refused(400, "not an HTTP/1.x request line")
    method, target, version = parts
    if not target.isascii() or not target.isprintable():
        raise Refused(400, "control characters in the request target")
    if method == "CONNECT":
        host, port = parse_authority(target, None)
        return Target(host, port, None)
    if method not in FORWARDED_METHODS:
        raise Refused(405, f"{printable(method)}: only CONNECT and plain HTTP requests pass")
    if not target.lower().startswith("http://"):
        raise Refused(400, "only absolute http:// targets (use CONNECT for https)")
    rest = target[len("http://") :]
    cut = min([i for i in (rest.find(c) for c in "/?#") if i >= 0] or [len(rest)])
    host, port = parse_authority(rest[:cut], 80)
    path = rest[cut:] if rest[cut:].startswith("/") else "/" + rest[cut:]
    out = [f"{method} {path} {version}", f"Host: {host if port == 80 else format_host(host, port)}"]
    headers = [line for line in lines[1:] if line]
    dropped = set(HOP_BY_HOP) | {"host"}
    for line in headers:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or line[0] in " \t":
            raise Refused(400, "a malformed header line")
        if name.lower() == "connection":
            dropped |= {token.strip().lower() for token in value.split(",")}
    out += [line for line in headers if line.partition(":")[0].lower() not in dropped]
    out += ["Connection: close", "", ""]
    return Target(host, port, "\r\n".join(out).encode("latin-1"))


def refusal_response(status: int, reason: str) -> bytes:
    body = f"Honk egress proxy: {printable(reason, 300)}\n".encode()
    head = (
        f"HTTP/1.1 {status} {_PHRASES.get(status, 'Error')}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nX-Honk-Egress: refused\r\n\r\n"
    )
    return head.encode() + body


# ---- what a sandbox adds ----------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxEgress:
    """What a bwrap sandbox with `--unshare-net` (never `--share-net`) adds to reach the proxy."""

    bwrap_args: list[str]  # after the sandbox's own `--tmpfs /tmp`, before `--`
    argv_prefix: list[str]  # after `--`, before `bash -c COMMAND`
    env: dict[str, str]  # merged last into the command's environment


def forwarder_python() -> str:
    """The interpreter for the forwarder: the system's, which every sandbox shows read-only."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and Path(candidate).is_file():
            return candidate
    return sys.executable


def proxy_env(port: int) -> dict[str, str]:
    url = f"http://127.0.0.1:{port}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    return {**dict.fromkeys(names, url), "NO_PROXY": "", "no_proxy": ""}


def sandbox_egress(
    unix_socket: Path, *, port: int = DEFAULT_FORWARD_PORT, python: str | None = None
) -> SandboxEgress:
    """Bind the run's proxy socket and the forwarder into the sandbox, and start the command
    under the forwarder: it listens on 127.0.0.1:`port` in the sandbox's own network namespace
    before the command starts, relays to the socket, and exits with the command's status."""
    bwrap_args = ["--ro-bind", str(unix_socket), SANDBOX_SOCKET]
    bwrap_args += ["--ro-bind", str(FORWARDER), SANDBOX_FORWARDER]
    interpreter = python or forwarder_python()
    prefix = [interpreter, "-I", "-S", SANDBOX_FORWARDER, str(port), SANDBOX_SOCKET, "--"]
    return SandboxEgress(bwrap_args, prefix, proxy_env(port))
