"""Scale-out on a real PostgreSQL: `honk serve --no-worker` accepts, `honk worker`s run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e_repo import CALC, TEST, fix_add_in_any_order
from tests.fixtures import payloads
from tests.harness import REPO, SENDER, World, world
from tests.postgres import fresh_database


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with fresh_database() as url, world(tmp_path) as running:
        running.extra_env["HONK_DATABASE_URL"] = url
        running.add_repo(
            {"calc.py": CALC, "test_calc.py": TEST}, honk_yml="test: python3 -m unittest -q\n"
        )
        yield running


def test_web_process_enqueues_and_workers_share_the_runs(w: World) -> None:
    w.start_honk("--no-worker")
    first = w.github.add_issue(REPO, title="add() subtracts", user=SENDER)
    second = w.github.add_issue(REPO, title="add() still subtracts", user=SENDER)
    w.script = fix_add_in_any_order(2)  # the two runs go at once on two workers
    assert w.deliver("issues", w.point(payloads.labeled("honk"), first)).status_code == 202
    # nothing runs without a worker: the run waits in the shared queue
    w.wait(
        lambda: w.anthropic_requests_made() == 0 and len(w.github.reactions) == 0,
        what="nothing to happen yet",
        timeout=5,
    )
    w.start_worker("e2e-worker-1")
    w.start_worker("e2e-worker-2")
    assert w.deliver("issues", w.point(payloads.labeled("honk"), second)).status_code == 202
    for number in (first, second):
        w.wait(
            lambda n=number: any(p.head_ref.startswith(f"honk/{n}-") for p in w.pulls()),
            what=f"a pull request for #{number}",
            timeout=180,
        )
    assert len(w.pulls()) == 2
    assert all(c.conclusion == "success" for c in w.github.check_runs)


def test_serve_refuses_no_worker_with_sqlite(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "honk_app", "serve", "--no-worker"],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "APP_ID": "1",
            "WEBHOOK_SECRET": "x" * 20,
            "PRIVATE_KEY": "garbage",
            "HONK_DATA_DIR": str(tmp_path / "d"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "PRIVATE_KEY" in result.stderr
