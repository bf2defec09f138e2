"""The egress proxy's pure decisions: the allow-list, the address vetting, reading a request."""

from __future__ import annotations

import ipaddress

import pytest

from honk_app.workspace.egress_rules import (
    DEFAULT_EGRESS_ALLOW,
    FORWARDER,
    SANDBOX_FORWARDER,
    SANDBOX_SOCKET,
    AllowRule,
    Refused,
    check_target,
    forbidden_reason,
    normalize_host,
    parse_allow_list,
    parse_head,
    refusal_response,
    sandbox_egress,
    vet_addresses,
)

# ---- the allow-list -----------------------------------------------------------------------------


def test_unset_means_the_common_registries_and_empty_means_nothing() -> None:
    defaults = parse_allow_list(None)
    assert [str(rule) for rule in defaults] == list(DEFAULT_EGRESS_ALLOW)
    assert {"pypi.org", "files.pythonhosted.org", "registry.npmjs.org"} <= set(map(str, defaults))
    assert "github.com" not in map(str, defaults)
    assert parse_allow_list("") == () == parse_allow_list(" , ")


def test_entries_add_to_the_defaults_only_when_default_is_named() -> None:
    rules = parse_allow_list("default, pypi.internal.example:8443 *.Corp.Example pypi.org")
    assert rules[: len(DEFAULT_EGRESS_ALLOW)] == parse_allow_list(None)
    assert rules[len(DEFAULT_EGRESS_ALLOW) :] == (
        AllowRule("pypi.internal.example", port=8443),
        AllowRule("corp.example", wildcard=True),
    )
    assert parse_allow_list("pypi.internal.example:8443") == (
        AllowRule("pypi.internal.example", port=8443),
    )
    assert [str(r) for r in parse_allow_list("10.1.2.3,[FD00::1]:8443")] == [
        "10.1.2.3",
        "[fd00::1]:8443",
    ]


@pytest.mark.parametrize(
    "entry",
    [
        "https://pypi.org",
        "pypi.org/simple",
        "user@pypi.org",
        "pypi.org.",
        "pypi.org:0",
        "pypi.org:99999",
        "pypi.org:https",
        "*.1.2.3.4",
        "*.",
        "fd00::1",
        "a..b",
        "exa_mple.com",
        "127.1",
        "[pypi.org]:443",
    ],
)
def test_malformed_entries_fail_loudly(entry: str) -> None:
    with pytest.raises(ValueError, match=r"give a host|not a|IPv6|port|malformed"):
        parse_allow_list(entry)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PyPI.Org", "pypi.org"),
        ("pypi.org.", None),  # no trailing-dot tricks
        ("127.1", None),  # resolvers read these as IPv4
        ("2130706433", None),
        ("0x7f000001", None),
        ("fe80::1%eth0", None),
        ("a" * 64 + ".com", None),
        ("-x.com", None),
        ("::FFFF:127.0.0.1", "::ffff:7f00:1"),
        ("10.0.0.5", "10.0.0.5"),
    ],
)
def test_host_names_are_normalized_strictly(text: str, expected: str | None) -> None:
    assert normalize_host(text) == expected


RULES = parse_allow_list("default, *.example.com, pypi.internal.example:8443, 93.184.216.34")


@pytest.mark.parametrize(
    ("host", "port", "refused"),
    [
        ("pypi.org", 443, None),
        ("pypi.org", 80, None),
        ("pypi.org", 8080, "port 8080 not allowed"),
        ("evil.example", 443, "host not on the egress allow-list"),
        ("pypi.org.evil.example", 443, "not on the egress allow-list"),
        ("a.b.example.com", 443, None),
        ("example.com", 443, "not on the egress allow-list"),  # *.x does not name x itself
        ("notexample.com", 443, "not on the egress allow-list"),
        ("pypi.internal.example", 8443, None),
        ("pypi.internal.example", 443, "port 443 not allowed"),
        ("10.0.0.5", 443, "IP address not on the egress allow-list"),
        ("93.184.216.34", 443, None),  # named as such (still vetted after this)
    ],
)
def test_the_allow_list_decides_by_exact_host_suffix_and_port(
    host: str, port: int, refused: str | None
) -> None:
    reason = check_target(RULES, host, port)
    assert reason == refused or (refused is not None and reason and refused in reason)


# ---- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "metadata"),
        ("168.63.129.16", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "CGNAT"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.5", "private"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64
        ("2002:7f00:1::", "loopback"),  # 6to4
        ("::127.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address judged, nothing bound
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),
        ("255.255.255.255", "private"),
        ("fec0::1", "site-local"),
        ("192.0.0.192", "not a public"),
        ("198.18.0.1", "private"),
        ("2001:db8::1", "private"),
        ("93.184.216.34", None),  # a decision only: nothing here connects anywhere
        ("::ffff:93.184.216.34", None),
        ("2606:4700::1", None),
    ],
)
def test_only_public_addresses_are_reachable(address: str, why: str | None) -> None:
    reason = forbidden_reason(ipaddress.ip_address(address))
    assert reason == why or (why is not None and reason and why in reason)


def test_one_inward_address_among_public_ones_refuses_the_host() -> None:
    public, inward = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.5")
    assert vet_addresses("x.test", [public], forbidden_reason) is None
    reason = vet_addresses("x.test", [public, inward], forbidden_reason)
    assert reason == "x.test resolves to 10.0.0.5, a private address"


# ---- requests -----------------------------------------------------------------------------------


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_connect_names_host_and_port() -> None:
    target = parse_head(head("CONNECT PyPI.org:443 HTTP/1.1", "Host: pypi.org:443"))
    assert (target.host, target.port, target.forward_head) == ("pypi.org", 443, None)
    assert parse_head(head("CONNECT [2606:4700::1]:443 HTTP/1.1")).where == "[2606:4700::1]:443"


def test_plain_http_goes_upstream_in_origin_form_with_host_pinned_and_no_proxy_headers() -> None:
    target = parse_head(
        head(
            "POST http://Registry.test:8080/a/b?q=1 HTTP/1.1",
            "Host: evil.example",  # a CDN would route on this: replaced
            "Proxy-Authorization: Basic eDp5",
            "Connection: keep-alive, X-Secret",
            "X-Secret: 1",
            "Content-Length: 2",
            "Accept: */*",
        )
    )
    assert (target.host, target.port) == ("registry.test", 8080)
    assert target.forward_head == head(
        "POST /a/b?q=1 HTTP/1.1",
        "Host: registry.test:8080",
        "Content-Length: 2",
        "Accept: */*",
        "Connection: close",
    )
    bare = parse_head(head("GET http://pypi.org HTTP/1.0"))
    assert bare.forward_head == head("GET / HTTP/1.0", "Host: pypi.org", "Connection: close")
    fragment = parse_head(head("GET http://pypi.org#@evil.example/ HTTP/1.1"))
    assert fragment.host == "pypi.org"


@pytest.mark.parametrize(
    ("lines", "status", "why"),
    [
        (["GET /simple/ HTTP/1.1", "Host: pypi.org"], 400, "absolute"),
        (["GET https://pypi.org/ HTTP/1.1"], 400, "CONNECT for https"),
        (["TRACE http://pypi.org/ HTTP/1.1"], 405, "only CONNECT"),
        (["CONNECT pypi.org HTTP/1.1"], 400, "host:port"),
        (["CONNECT user:pw@pypi.org:443 HTTP/1.1"], 403, "user@host"),
        (["GET http://evil.example\\@pypi.org/ HTTP/1.1"], 403, "user@host"),
        (["CONNECT pypi.org.:443 HTTP/1.1"], 403, "not a plain host"),
        (["CONNECT 2130706433:443 HTTP/1.1"], 403, "not a plain host"),
        (["CONNECT fd00::1:443 HTTP/1.1"], 400, "brackets"),
        (["CONNECT pypi.org:443 HTTP/2.0"], 400, "HTTP/1.x"),
        (["GET http://pypi.org/\x01 HTTP/1.1"], 400, "control"),
        (["GET http://pypi.org/ HTTP/1.1", " folded"], 400, "malformed header"),
    ],
)
def test_anything_else_is_answered_by_the_proxy(lines: list[str], status: int, why: str) -> None:
    with pytest.raises(Refused) as caught:
        parse_head(head(*lines))
    assert caught.value.status == status and why in caught.value.reason


def test_a_refusal_is_one_printable_line() -> None:
    response = refusal_response(403, "evil\r\nX-Injected: 1 host")
    status, _, body = response.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert body == b"Honk egress proxy: evil??X-Injected: 1 host\n"


# ---- what the sandbox adds ----------------------------------------------------------------------


def test_the_sandbox_binds_the_socket_and_forwarder_and_starts_the_command_under_it() -> None:
    socket_path = FORWARDER.parent / "x.sock"
    plumbing = sandbox_egress(socket_path, port=4000)
    assert plumbing.bwrap_args == [
        "--ro-bind",
        str(socket_path),
        SANDBOX_SOCKET,
        "--ro-bind",
        str(FORWARDER),
        SANDBOX_FORWARDER,
    ]
    assert plumbing.argv_prefix[1:] == ["-I", "-S", SANDBOX_FORWARDER, "4000", SANDBOX_SOCKET, "--"]
    assert plumbing.env["HTTPS_PROXY"] == plumbing.env["http_proxy"] == "http://127.0.0.1:4000"
    assert plumbing.env["NO_PROXY"] == "" == plumbing.env["no_proxy"]
    assert FORWARDER.is_file()
