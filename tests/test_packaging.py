"""Honk installed as `pipx install` or a container would: a built wheel in a fresh venv.

The wheel is built offline from the files git would commit (no build isolation: the project
venv's setuptools), installed without dependencies into a new venv that sees the project venv's
packages through a `.pth` file, and `honk serve` from it must offer setup mode's manifest from
the app.yml inside the package: nothing beside a source tree is there to help.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from honk_app.setup.pages import load_manifest
from tests.fakes.loopback import free_port
from tests.setup.test_pages import manifest_form
from tests.waiting import running, setup_link, wait_for

ROOT = Path(__file__).resolve().parents[1]


def test_the_top_level_app_yml_is_the_one_the_package_ships() -> None:
    assert (ROOT / "app.yml").read_bytes() == (ROOT / "honk_app/setup/app.yml").read_bytes()


def _source_files() -> list[str]:
    """What a clone would hold: tracked files, and new ones not ignored (work in progress)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in _source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    offline = ["--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, "-w", str(out), str(source)],
        check=True,
        timeout=120,
    )
    (built,) = out.glob("honk_app-*.whl")
    return built


def test_the_wheel_holds_every_file_the_package_reads(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    package_files = [n for n in _source_files() if n.startswith("honk_app/")]
    assert "honk_app/setup/app.yml" in package_files
    assert [n for n in package_files if n not in names] == []
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=120,
    )
    # The dependencies from the project venv, after the venv's own site-packages: its honk_app
    # (the wheel's) comes first, and the editable install's finder is not loaded from here.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "project_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    yield venv


def test_honk_serve_from_the_wheel_offers_the_manifest_from_app_yml(
    installed: Path, tmp_path: Path
) -> None:
    where = subprocess.run(
        [str(installed / "bin/python"), "-c", "import honk_app; print(honk_app.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(installed))  # not the source tree

    port = free_port()
    log_path = tmp_path / "honk.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HONK_DATA_DIR": str(tmp_path / "data"),
    }
    argv = [str(installed / "bin/honk"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    # cwd is empty: no .env, no app.yml
    with running(argv, cwd=tmp_path, env=env, log_path=log_path):
        link = setup_link(log_path)
        with httpx.Client(follow_redirects=True, timeout=10) as browser:
            page = wait_for(lambda: _get(browser, link), "the setup page")
        assert page.status_code == 200, log_path.read_text()
        offered = json.loads(manifest_form(page.text).fields["manifest"])
        expected = load_manifest(
            (ROOT / "app.yml").read_text(encoding="utf-8"),
            public_url=f"http://127.0.0.1:{port}",
            webhook_path="/api/github/webhooks",
        )
        assert offered == expected
        assert "the app.yml shipped with Honk" in log_path.read_text()


def _get(client: httpx.Client, url: str) -> httpx.Response | None:
    try:
        return client.get(url)
    except httpx.TransportError:
        return None
