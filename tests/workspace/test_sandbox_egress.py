"""A sandboxed command that asks for network gets only Honk's egress proxy, never the host's
network; what the proxy refused is what the run's report lists."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from honk_app.models import Outcome
from honk_app.report.comment import tracking_comment
from honk_app.runs.outcome import WorkResult
from honk_app.runs.views import final_view
from honk_app.runs.work import egress_refusals
from honk_app.workspace.egress import EgressProxy
from honk_app.workspace.egress_rules import parse_allow_list
from honk_app.workspace.sandbox import Sandbox
from tests import needs
from tests.runs.test_views import _trigger

FETCH = (
    'python3 -c "import urllib.request, urllib.error\n'
    "try:\n"
    "    urllib.request.urlopen('{url}', timeout=10)\n"
    "except urllib.error.HTTPError as e:\n"
    "    print('status', e.code)\n"
    "except OSError as e:\n"
    "    print('failed', type(e).__name__)\""
)


@pytest.fixture
def listener() -> Iterator[int]:
    """A port on the host's loopback, as Honk's own or a local database's would be."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


@pytest.fixture
def proxy() -> Iterator[EgressProxy]:
    with EgressProxy(parse_allow_list("pypi.org")) as running:
        yield running


async def test_network_goes_only_through_the_proxy_and_refusals_are_reported(
    tmp_path: Path, proxy: EgressProxy, listener: int
) -> None:
    needs.require_bwrap()
    grant = proxy.open_run("run-1")
    async with Sandbox(tmp_path, mode="bwrap", egress_socket=grant.unix_socket) as box:
        off_list = await box.run(FETCH.format(url="http://not-allowed.test/"), network=True)
        host = await box.run(FETCH.format(url=f"http://127.0.0.1:{listener}/"), network=True)
        direct = await box.run(
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {listener}), 2)\"",
            network=True,
        )
    report = proxy.close_run("run-1")
    assert "status 403" in off_list.output
    assert "status 403" in host.output  # a literal loopback address is refused by the proxy
    assert direct.exit_code != 0 and "ConnectionRefusedError" in direct.output  # own netns
    lines = egress_refusals(report)
    assert any(line.startswith("not-allowed.test") for line in lines)
    assert any(line.startswith("127.0.0.1") for line in lines)
    view = final_view(
        _trigger(), WorkResult(outcome=Outcome.NO_CHANGE.value, egress_refused=lines), None
    )
    body = tracking_comment(view)
    assert "**Network requests refused** (`HONK_EGRESS_ALLOW`)" in body
    assert "not-allowed.test" in body


async def test_asking_for_network_without_a_proxy_gets_none(tmp_path: Path, listener: int) -> None:
    needs.require_bwrap()
    async with Sandbox(tmp_path, mode="bwrap") as box:
        direct = await box.run(
            f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {listener}), 2)\"",
            network=True,
        )
    assert direct.exit_code != 0 and "ConnectionRefusedError" in direct.output
