"""Setup mode: states, the code exchange, and the whole flow against the fake GitHub.

The manifest, the pages and the App's `.env` values are tested in test_setup_pages.py.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from dotenv import dotenv_values
from starlette.applications import Starlette

from honk_app.safety.secret_scan import find_secrets
from honk_app.settings import Settings, load_settings, normalise_private_key
from honk_app.setup import flow as setup_flow
from honk_app.setup.flow import SetupFlow, convert_code, new_state
from honk_app.setup.pages import SetupError
from tests.fakes.github import FakeGitHub
from tests.fakes.loopback import free_port
from tests.setup.test_pages import (
    APP_KEYS,
    APP_YML,
    ROOT,
    Form,
    file_mode,
    manifest_form,
    parse_page,
)


# ---- states ---------------------------------------------------------------------------------
def test_states_are_unguessable_and_distinct() -> None:
    states = {new_state() for _ in range(50)}
    assert len(states) == 50
    assert all(len(s) >= 43 for s in states)


# ---- the whole flow, driven like a browser against the fake GitHub ---------------------------
HONK = "http://honk.test"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Harness:
    github: FakeGitHub
    flow: SetupFlow
    honk: httpx.AsyncClient  # the browser talking to Honk (in process)
    browser: httpx.AsyncClient  # the browser talking to GitHub (real HTTP on loopback)
    env_path: Path
    configured: list[dict[str, str]]
    clock: Clock

    async def open_setup_page(self, query: str = "") -> Form:
        page = await self.honk.get("/" + query)
        assert page.status_code == 200, page.text
        return manifest_form(page.text)

    async def confirm_on_github(self, form: Form) -> str:
        """What GitHub does when the user clicks "Create": the redirect back to Honk."""
        answer = await self.browser.post(form.action, data=form.fields)
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    async def register(self) -> httpx.Response:
        return await self.honk.get(await self.confirm_on_github(await self.open_setup_page()))


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def make_settings(github_url: str, **extra: Any) -> Settings:
    values = {"GITHUB_URL": github_url, "GITHUB_API_URL": github_url, **extra}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def _harness(
    github: FakeGitHub,
    env_path: Path,
    *,
    settings: Settings | None = None,
    on_configured: Any = None,
    base_url: str = HONK,
    **flow_options: Any,
) -> AsyncIterator[Harness]:
    configured: list[dict[str, str]] = []

    async def record(values: dict[str, str]) -> None:
        configured.append(values)

    clock = Clock()
    flow = SetupFlow(
        settings=settings or make_settings(github.url, HONK_PUBLIC_URL=HONK),
        app_yml_text=APP_YML,
        env_path=env_path,
        on_configured=on_configured or record,
        clock=clock,
        **flow_options,
    )
    transport = httpx.ASGITransport(app=Starlette(routes=flow.routes))
    async with (
        httpx.AsyncClient(transport=transport, base_url=base_url) as honk,
        httpx.AsyncClient(timeout=10) as browser,
    ):
        yield Harness(github, flow, honk, browser, env_path, configured, clock)


@pytest.fixture
async def harness(github: FakeGitHub, tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in _harness(github, tmp_path / ".env"):
        yield h


@pytest.fixture(autouse=True)
def _no_app_settings_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (*APP_KEYS, "PRIVATE_KEY_PATH", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(key, raising=False)


async def test_the_browser_flow_registers_the_app_saves_it_and_switches_to_webhooks(
    harness: Harness,
) -> None:
    harness.env_path.write_text("# my settings\nPORT=8080\nLOG_LEVEL=debug\n", encoding="utf-8")
    done = await harness.register()

    assert done.status_code == 200, done.text
    record = harness.github.manifests[-1]
    assert record.manifest["hook_attributes"]["url"] == f"{HONK}/api/github/webhooks"
    assert record.manifest["redirect_url"] == f"{HONK}/setup/callback"
    assert record.manifest["default_permissions"]["pull_requests"] == "write"
    assert record.converted_app_id is not None
    app = harness.github.apps[record.converted_app_id]
    assert f"{harness.github.url}/apps/{app.slug}/installations/new" in parse_page(done.text).links
    assert "webhooks" in done.text
    assert find_secrets(done.text) == []

    assert file_mode(harness.env_path) == 0o600
    text = harness.env_path.read_text(encoding="utf-8")
    assert text.startswith("# my settings\nPORT=8080\nLOG_LEVEL=debug\n")
    settings = load_settings(harness.env_path)
    assert str(app.id) == settings.APP_ID
    assert settings.private_key_pem() == app.private_key_pem
    assert settings.WEBHOOK_SECRET is not None
    assert settings.WEBHOOK_SECRET.get_secret_value() == app.webhook_secret
    assert settings.PORT == 8080
    assert settings.problems() == []

    assert harness.configured == [
        {k: v for k, v in dotenv_values(harness.env_path).items() if k in APP_KEYS}
    ]
    assert normalise_private_key(harness.configured[0]["PRIVATE_KEY"]) == app.private_key_pem

    again = await harness.honk.get("/")  # no second registration once Honk is configured
    assert again.status_code == 200
    assert [f for f in parse_page(again.text).forms if "manifest" in f.fields] == []


async def test_a_replayed_callback_is_refused_and_changes_nothing(harness: Harness) -> None:
    form = await harness.open_setup_page()
    back = await harness.confirm_on_github(form)
    assert (await harness.honk.get(back)).status_code == 200
    before = harness.env_path.read_bytes()

    replay = await harness.honk.get(back)

    assert replay.status_code == 400
    assert "already used" in replay.text
    assert harness.env_path.read_bytes() == before
    assert len(harness.configured) == 1


async def test_a_wrong_state_is_refused_without_touching_github_or_env(harness: Harness) -> None:
    back = await harness.confirm_on_github(await harness.open_setup_page())
    parts = urlsplit(back)
    code = parse_qs(parts.query)["code"][0]

    for query in (f"code={code}&state=forged", f"code={code}", "state=" + new_state()):
        refused = await harness.honk.get(f"/setup/callback?{query}")
        assert refused.status_code == 400
        assert "changed nothing" in refused.text

    assert not harness.env_path.exists()
    assert harness.configured == []
    assert harness.github.manifests[-1].converted_app_id is None  # the code was never exchanged
    assert (await harness.honk.get(back)).status_code == 200  # the real state still works


async def test_an_expired_state_is_refused(harness: Harness) -> None:
    back = await harness.confirm_on_github(await harness.open_setup_page())
    harness.clock.now += setup_flow.STATE_TTL_S + 1

    refused = await harness.honk.get(back)

    assert refused.status_code == 400
    assert not harness.env_path.exists()
    assert harness.github.manifests[-1].converted_app_id is None


async def test_only_the_newest_states_stay_valid(github: FakeGitHub, tmp_path: Path) -> None:
    async for h in _harness(github, tmp_path / ".env", max_states=2):
        oldest = await h.open_setup_page()
        await h.open_setup_page()
        await h.open_setup_page()
        refused = await h.honk.get(await h.confirm_on_github(oldest))
        assert refused.status_code == 400


async def test_a_code_github_rejects_gives_a_readable_page(harness: Harness) -> None:
    form = await harness.open_setup_page()
    state = parse_qs(urlsplit(form.action).query)["state"][0]

    rejected = await harness.honk.get(f"/setup/callback?code=0badc0de0badc0de&state={state}")

    assert rejected.status_code == 400
    assert "GitHub did not accept the code" in rejected.text
    assert not harness.env_path.exists()
    assert harness.configured == []


async def test_convert_code_refuses_a_used_code(github: FakeGitHub, harness: Harness) -> None:
    back = await harness.confirm_on_github(await harness.open_setup_page())
    code = parse_qs(urlsplit(back).query)["code"][0]
    async with httpx.AsyncClient() as http:
        app = await convert_code(github.url, code, http=http)
        assert app.id == harness.github.manifests[-1].converted_app_id
        with pytest.raises(SetupError, match="already used"):
            await convert_code(github.url, code, http=http)
        with pytest.raises(SetupError, match="malformed"):
            await convert_code(github.url, "../../user", http=http)


async def test_github_out_of_reach_is_a_readable_error(github: FakeGitHub, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(github.url, HONK_PUBLIC_URL=HONK, GITHUB_API_URL=nowhere)
    async for h in _harness(github, tmp_path / ".env", settings=settings):
        failed = await h.register()
        assert failed.status_code == 502
        assert "could not reach GitHub" in failed.text
        assert not h.env_path.exists()


async def test_a_failed_switch_keeps_the_saved_credentials_and_says_restart(
    github: FakeGitHub, tmp_path: Path
) -> None:
    async def broken(values: dict[str, str]) -> None:
        raise RuntimeError(f"boom {values['WEBHOOK_SECRET']}")

    async for h in _harness(github, tmp_path / ".env", on_configured=broken):
        failed = await h.register()
        assert failed.status_code == 500
        assert "Restart Honk" in failed.text
        assert "boom" not in failed.text
        assert load_settings(h.env_path).problems() == []
        assert (await h.honk.get("/")).status_code == 500  # no second App on a second click


async def test_an_unwritable_env_is_a_readable_error(github: FakeGitHub, tmp_path: Path) -> None:
    async for h in _harness(github, tmp_path / "missing-dir" / ".env"):
        failed = await h.register()
        assert failed.status_code == 500
        assert "could not save its credentials" in failed.text
        assert h.configured == []


async def test_the_public_url_comes_from_the_browser_when_not_configured(
    github: FakeGitHub, tmp_path: Path
) -> None:
    settings = make_settings(github.url)
    async for h in _harness(
        github, tmp_path / ".env", settings=settings, base_url="http://honk.test:8080"
    ):
        form = await h.open_setup_page()
        manifest = json.loads(form.fields["manifest"])
        assert manifest["hook_attributes"]["url"] == "http://honk.test:8080/api/github/webhooks"
        assert (await h.honk.get(await h.confirm_on_github(form))).status_code == 200


async def test_registering_under_an_organization(harness: Harness) -> None:
    bad = await harness.honk.get("/?org=../evil")
    assert bad.status_code == 400
    assert "not a GitHub organization name" in bad.text

    form = await harness.open_setup_page("?org=acme")
    assert form.action.startswith(f"{harness.github.url}/organizations/acme/settings/apps/new?")
    done = await harness.honk.get(await harness.confirm_on_github(form))
    assert done.status_code == 200
    assert harness.github.manifests[-1].organization == "acme"


def test_a_broken_app_yml_fails_at_startup(tmp_path: Path) -> None:
    async def nothing(values: dict[str, str]) -> None:
        return None

    with pytest.raises(SetupError, match="needs a `url`"):
        SetupFlow(
            settings=make_settings("https://github.com"),
            app_yml_text="name: Honk\n",
            env_path=tmp_path / ".env",
            on_configured=nothing,
        )


async def test_a_github_outage_keeps_the_link_valid_so_a_reload_finishes(harness: Harness) -> None:
    back = await harness.confirm_on_github(await harness.open_setup_page())
    harness.github.fail_next("POST", r"/app-manifests/[^/]+/conversions", 502)

    failed = await harness.honk.get(back)
    assert failed.status_code == 502
    assert "GitHub answered 502" in failed.text
    assert not harness.env_path.exists()

    reloaded = await harness.honk.get(back)
    assert reloaded.status_code == 200
    assert len(harness.configured) == 1


TOKEN = "t0k3n-from-the-log"


async def test_the_link_from_the_log_works_once_then_only_its_browser_gets_in(
    github: FakeGitHub, tmp_path: Path
) -> None:
    async for h in _harness(github, tmp_path / ".env", setup_token=TOKEN):
        for query in ("", "?token=guess"):
            refused = await h.honk.get("/" + query)
            assert refused.status_code == 403
            words = parse_page(refused.text).words
            assert "Setup mode: open http://localhost:3000/?token=… to register" in words
            assert parse_page(refused.text).links == []  # no "back" link that loops to itself

        traded = await h.honk.get(f"/?token={TOKEN}&org=acme")
        assert traded.status_code == 303
        assert traded.headers["location"] == "/?org=acme"  # the token leaves the address bar
        cookie = traded.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # http://honk.test: a Secure cookie would not come back

        page = await h.honk.get("/?org=acme")  # the browser now has the cookie
        assert page.status_code == 200
        assert TOKEN not in page.text
        form = manifest_form(page.text)
        assert "/organizations/acme/" in form.action

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=Starlette(routes=h.flow.routes)), base_url=HONK
        ) as stranger:
            spent = await stranger.get(f"/?token={TOKEN}")
            assert spent.status_code == 403
            assert "works once" in parse_page(spent.text).words

        again = await h.honk.get(f"/?token={TOKEN}")  # the same browser, the link clicked twice
        assert (again.status_code, again.headers["location"]) == (303, "/")
        assert (await h.honk.get(await h.confirm_on_github(form))).is_success


async def test_the_session_cookie_is_secure_when_honk_is_served_over_https(
    github: FakeGitHub, tmp_path: Path
) -> None:
    settings = make_settings(github.url, HONK_PUBLIC_URL="https://honk.example.com")
    async for h in _harness(github, tmp_path / ".env", settings=settings, setup_token=TOKEN):
        traded = await h.honk.get(f"/?token={TOKEN}")
        assert "secure" in traded.headers["set-cookie"].lower()


# ---- the Anthropic key, the done page's last step ---------------------------------------------
async def _key_form(h: Harness) -> Form:
    done = await h.register()
    assert done.status_code == 200, done.text
    (form,) = [f for f in parse_page(done.text).forms if f.action == "/setup/anthropic-key"]
    return form


async def test_the_done_page_saves_the_anthropic_key_to_env_and_hands_it_to_the_runs(
    github: FakeGitHub, tmp_path: Path
) -> None:
    handed: list[str | None] = []
    env_path = tmp_path / ".env"

    async def reload() -> None:
        key = load_settings(env_path).ANTHROPIC_API_KEY
        handed.append(key.get_secret_value() if key else None)

    async for h in _harness(github, env_path, setup_token=TOKEN, on_anthropic_key=reload):
        assert (await h.honk.get(f"/?token={TOKEN}")).status_code == 303
        form = await _key_form(h)
        app_values = dotenv_values(env_path)
        key = "sk-ant-api03-" + "Zq7" * 30

        saved = await h.honk.post(
            form.action, data={**form.fields, "anthropic_api_key": f" {key}\n"}
        )

        assert (saved.status_code, saved.headers["location"]) == (303, "/")
        assert handed == [key]
        assert file_mode(env_path) == 0o600
        assert dotenv_values(env_path) == {**app_values, "ANTHROPIC_API_KEY": key}
        assert "# Anthropic API key saved by Honk's setup page" in env_path.read_text()
        after = await h.honk.get("/")
        assert "Anthropic API key: set" in parse_page(after.text).words
        assert key not in after.text
        assert [f for f in parse_page(after.text).forms if f.method == "post"] == []


@pytest.mark.parametrize(
    ("cookie", "form_key", "key", "status", "words"),
    [
        (False, "right", "sk-ant-x", 403, "works once"),  # another browser (or a cross-site POST)
        (True, "wrong", "sk-ant-x", 403, "works once"),  # a form Honk did not show
        (True, "right", "sk ant x", 400, "That is not an API key"),
        (True, "right", "", 400, "Paste the key"),
    ],
)
async def test_a_key_post_from_elsewhere_or_with_a_bad_key_changes_nothing(
    github: FakeGitHub,
    tmp_path: Path,
    cookie: bool,
    form_key: str,
    key: str,
    status: int,
    words: str,
) -> None:
    handed: list[bool] = []

    async def reload() -> None:
        handed.append(True)

    async for h in _harness(github, tmp_path / ".env", setup_token=TOKEN, on_anthropic_key=reload):
        await h.honk.get(f"/?token={TOKEN}")
        form = await _key_form(h)
        before = h.env_path.read_bytes()
        if not cookie:
            h.honk.cookies.clear()
        fields = {**form.fields, "anthropic_api_key": key}
        if form_key != "right":
            fields["form_key"] = form_key

        refused = await h.honk.post(form.action, data=fields)

        assert refused.status_code == status
        assert words in parse_page(refused.text).words
        assert h.env_path.read_bytes() == before
        assert handed == []


async def test_the_key_form_waits_for_the_app_and_takes_only_a_small_form(
    harness: Harness,
) -> None:
    page = await harness.honk.get("/")
    assert "anthropic" not in page.text.lower()  # the key is the done page's step
    key_form = {"form_key": harness.flow.access.form_key, "anthropic_api_key": "sk-ant-x"}
    early = await harness.honk.post("/setup/anthropic-key", data=key_form)
    assert early.status_code == 409
    assert "Register the GitHub App first" in early.text
    for body, kind in ((b"{}", "application/json"), (b"a=" + b"x" * 9000, None)):
        headers = {"content-type": kind or "application/x-www-form-urlencoded"}
        odd = await harness.honk.post("/setup/anthropic-key", content=body, headers=headers)
        assert odd.status_code == 400
    assert not harness.env_path.exists()


async def test_a_failed_hand_over_of_the_key_says_restart(
    github: FakeGitHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-ant-api03-" + "k" * 40

    async def broken() -> None:
        raise RuntimeError(f"boom {key}")

    async for h in _harness(github, tmp_path / ".env", on_anthropic_key=broken):
        form = await _key_form(h)
        failed = await h.honk.post(form.action, data={**form.fields, "anthropic_api_key": key})
        assert failed.status_code == 500
        assert "Restart Honk" in failed.text
        assert key not in failed.text
        assert dotenv_values(h.env_path)["ANTHROPIC_API_KEY"] == key
        assert "boom" in caplog.text and key not in caplog.text


async def test_pages_are_not_cached_framed_or_scripted(harness: Harness) -> None:
    page = await harness.honk.get("/")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text


# ---- .env.example ---------------------------------------------------------------------------
EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")


def test_env_example_documents_every_setting_with_a_comment_and_placeholder() -> None:
    setting = re.compile(r"# ([A-Z][A-Z0-9_]*)=(\S.*)")
    lines = EXAMPLE.splitlines()
    documented = set()
    for above, line in itertools.pairwise(lines):
        if match := setting.fullmatch(line):
            documented.add(match[1])
            assert above.startswith("# ") and not setting.fullmatch(above), match[1]
    assert set(Settings.model_fields) <= documented
    for group in ("GitHub App", "Server", "Anthropic", "Runs", "Scale-out"):
        assert f"# ---- {group} " in EXAMPLE


def test_env_example_holds_no_secret_and_changes_nothing_when_copied(tmp_path: Path) -> None:
    assert find_secrets(EXAMPLE) == []
    copied = tmp_path / ".env"
    copied.write_text(EXAMPLE, encoding="utf-8")
    assert dotenv_values(copied) == {}
    assert load_settings(copied).needs_setup
