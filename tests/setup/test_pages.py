"""Setup's pure half: the manifest from app.yml, the pages, and the App's `.env` values."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from honk_app.safety.secret_scan import find_secrets
from honk_app.settings import load_settings, normalise_private_key
from honk_app.setup.env_file import write_env
from honk_app.setup.pages import (
    KEY_PATH,
    SETUP_LINK_LOG,
    ConvertedApp,
    KeyStep,
    SetupError,
    check_anthropic_key,
    env_lines_for,
    load_manifest,
    render_done_page,
    render_error_page,
    render_refused_page,
    render_setup_page,
)
from tests.fakes.github_auth import generate_private_key_pem

ROOT = Path(__file__).resolve().parents[2]
APP_YML = (ROOT / "app.yml").read_text(encoding="utf-8")
PUBLIC = "https://honk.example.com"
APP_KEYS = ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET")


@pytest.fixture(scope="module")
def pem() -> str:
    return generate_private_key_pem()


@pytest.fixture
def converted(pem: str) -> ConvertedApp:
    return ConvertedApp(
        id=424242,
        slug="honk-acme",
        name="Honk (acme)",
        html_url="https://github.com/apps/honk-acme",
        owner="acme",
        client_id="Iv1.a1b2c3d4e5f6a7b8",
        client_secret="c0ffee" * 6 + "beef",
        webhook_secret="w3bh00k-s3cret-" + "9" * 24,
        pem=pem,
    )


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[bool] = field(default_factory=list)  # one per submit button: enabled?


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(found.get("action", ""), found.get("method", "get").lower()))
        elif tag == "input" and self.forms and "name" in found:
            self.forms[-1].fields[found["name"]] = found.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append("disabled" not in found)
        elif tag == "a":
            self.links.append(found.get("href", ""))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def words(self) -> str:
        """The page's text as a reader sees it, tags and entities gone."""
        return " ".join("".join(self.text).split())


def parse_page(page: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(page)
    return parser


def manifest_form(page: str) -> Form:
    (form,) = [f for f in parse_page(page).forms if f.method == "post"]
    return form


# ---- the manifest ---------------------------------------------------------------------------
def test_manifest_points_github_at_this_server_and_keeps_the_app_definition() -> None:
    manifest = load_manifest(APP_YML, public_url=PUBLIC + "/", webhook_path="/api/github/webhooks")
    assert manifest["hook_attributes"] == {
        "url": "https://honk.example.com/api/github/webhooks",
        "active": True,
    }
    assert manifest["redirect_url"] == "https://honk.example.com/setup/callback"
    assert manifest["name"] == "Honk"
    assert manifest["public"] is False
    assert manifest["default_permissions"]["contents"] == "write"
    assert "issue_comment" in manifest["default_events"]
    assert manifest["url"].startswith("https://")


def test_manifest_accepts_a_webhook_path_without_leading_slash() -> None:
    manifest = load_manifest(APP_YML, public_url=PUBLIC, webhook_path="hooks")
    assert manifest["hook_attributes"]["url"] == "https://honk.example.com/hooks"


@pytest.mark.parametrize(
    ("text", "public_url", "expected"),
    [
        ("name: [unclosed\n", PUBLIC, "not valid YAML near line"),
        ("- a list\n", PUBLIC, "must be a mapping"),
        ("url: https://x.test\n", PUBLIC, "needs a `name`"),
        ("name: Honk\n", PUBLIC, "needs a `url`"),
        ("name: Honk\nurl: https://x.test\ndefualt_events: []\n", PUBLIC, "defualt_events"),
        (
            "name: H\nurl: https://x.test\ndefault_permissions: {issues: all}\n",
            PUBLIC,
            "read or write",
        ),
        ("name: H\nurl: https://x.test\ndefault_events: issues\n", PUBLIC, "list of event"),
        ("name: H\nurl: https://x.test\npublic: maybe\n", PUBLIC, "true or false"),
        (APP_YML, "ftp://honk.example.com", "not an http(s) URL"),
        (APP_YML, "honk.example.com", "not an http(s) URL"),
    ],
)
def test_a_broken_manifest_or_public_url_is_one_readable_sentence(
    text: str, public_url: str, expected: str
) -> None:
    with pytest.raises(SetupError) as caught:
        load_manifest(text, public_url=public_url, webhook_path="/api/github/webhooks")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


# ---- the pages ------------------------------------------------------------------------------
def test_setup_page_posts_the_exact_manifest_to_github_with_the_state() -> None:
    manifest = load_manifest(APP_YML, public_url=PUBLIC, webhook_path="/api/github/webhooks")
    manifest["description"] = "Quotes \" and ' and <b>tags</b> & ampersands"
    page = render_setup_page(manifest, github_url="https://github.com", state="s-1_x")
    form = manifest_form(page)
    assert form.action == "https://github.com/settings/apps/new?state=s-1_x"
    assert json.loads(form.fields["manifest"]) == manifest
    assert "<b>tags</b>" not in page
    assert "https://honk.example.com/api/github/webhooks" in page
    assert "GitHub cannot reach" not in page


def test_setup_page_for_an_organization_posts_to_the_organization() -> None:
    manifest = load_manifest(APP_YML, public_url=PUBLIC, webhook_path="/api/github/webhooks")
    page = render_setup_page(manifest, github_url="https://ghe.test/", state="abc", org="acme-1")
    assert (
        manifest_form(page).action
        == "https://ghe.test/organizations/acme-1/settings/apps/new?state=abc"
    )
    with pytest.raises(SetupError, match="organization name"):
        render_setup_page(manifest, github_url="https://ghe.test", state="abc", org="../evil")


@pytest.mark.parametrize(
    ("public_url", "github_url", "button_enabled"),
    [
        ("http://127.0.0.1:3000", "https://github.com", False),
        ("http://localhost:3000", "https://github.com", False),
        ("http://10.1.2.3", "https://github.com", False),
        # an Enterprise Server on the same network may reach a private address
        ("http://10.1.2.3", "https://ghe.internal.example", True),
    ],
)
def test_setup_page_explains_how_to_continue_when_github_cannot_reach_honk(
    public_url: str, github_url: str, button_enabled: bool
) -> None:
    manifest = load_manifest(APP_YML, public_url=public_url, webhook_path="/api/github/webhooks")
    page = render_setup_page(manifest, github_url=github_url, state="abc")
    words = parse_page(page).words
    assert "GitHub cannot reach" in words
    assert "cloudflared tunnel --url http://localhost:" in words
    assert "ngrok http" in words
    assert "HONK_PUBLIC_URL=https://" in words
    assert "restart Honk" in words
    assert manifest_form(page).buttons == [button_enabled]


def test_setup_page_offers_the_button_when_github_can_reach_honk() -> None:
    manifest = load_manifest(APP_YML, public_url=PUBLIC, webhook_path="/api/github/webhooks")
    page = render_setup_page(manifest, github_url="https://github.com", state="abc")
    assert manifest_form(page).buttons == [True]
    assert "tunnel" not in page


def test_done_page_links_to_installing_the_app_and_shows_no_secret(converted: ConvertedApp) -> None:
    page = render_done_page(converted, env_path=Path("/srv/honk/.env"))
    assert "https://github.com/apps/honk-acme/installations/new" in parse_page(page).links
    assert "webhooks" in page
    assert "/srv/honk/.env" in page
    for secret in (converted.pem, converted.webhook_secret, converted.client_secret):
        assert secret not in page
    assert find_secrets(page) == []


@pytest.mark.parametrize(
    ("step", "has_form", "expected"),
    [
        (KeyStep(False, form_key="k-1"), True, "runs fail without it"),
        (KeyStep(False, form_key="k-1", problem="Paste the key."), True, "Paste the key."),
        (KeyStep(False), False, "Add it to /srv/honk/.env as ANTHROPIC_API_KEY=sk-ant-"),
        (KeyStep(True, form_key="k-1"), False, "Anthropic API key: set"),
    ],
)
def test_done_page_asks_for_the_anthropic_key_until_it_is_set(
    converted: ConvertedApp, step: KeyStep, has_form: bool, expected: str
) -> None:
    page = parse_page(render_done_page(converted, env_path=Path("/srv/honk/.env"), key=step))
    assert expected in page.words
    forms = [f for f in page.forms if f.action == KEY_PATH]
    if has_form:
        (form,) = forms
        assert form.method == "post"
        assert form.fields == {"form_key": "k-1", "anthropic_api_key": ""}
        assert "console.anthropic.com" in " ".join(page.links)
    else:
        assert forms == []


@pytest.mark.parametrize(
    ("pasted", "key", "refused"),
    [
        ("sk-ant-api03-abc_DEF-123", "sk-ant-api03-abc_DEF-123", False),
        ("  sk-ant-api03-abc\n", "sk-ant-api03-abc", False),
        ("ANTHROPIC_API_KEY=sk-ant-x", "sk-ant-x", False),
        ("'sk-ant-x'", "sk-ant-x", False),
        ("", "", True),
        ("sk-ant x", "sk-ant x", True),
        ("sk-${HOME}", "sk-${HOME}", True),
        ("sk-\x00", "sk-\x00", True),
        ("k" * 301, "k" * 301, True),
    ],
)
def test_a_pasted_anthropic_key_is_trimmed_or_refused_in_one_sentence(
    pasted: str, key: str, refused: bool
) -> None:
    got, problem = check_anthropic_key(pasted)
    assert got == key
    assert (problem is not None) == refused
    if problem is not None:
        assert problem.endswith(".") and "\n" not in problem
        assert not key or key[:20] not in problem  # the key is not shown back


def test_the_refusal_page_quotes_the_log_line_and_does_not_loop_back() -> None:
    page = parse_page(render_refused_page())
    assert SETUP_LINK_LOG % ("http://localhost:3000", "…") in page.words
    assert "works once" in page.words
    assert page.links == []


def test_other_error_pages_lead_back_to_the_setup_page() -> None:
    assert parse_page(render_error_page("It broke.")).links == ["/"]
    assert parse_page(render_error_page("Restart Honk.", back=False)).links == []


def test_converted_app_repr_hides_its_credentials(converted: ConvertedApp) -> None:
    shown = repr(converted)
    assert "honk-acme" in shown
    assert converted.webhook_secret not in shown
    assert converted.client_secret not in shown
    assert "PRIVATE KEY" not in shown


# ---- .env text ------------------------------------------------------------------------------
def test_env_values_put_the_pem_on_one_line_that_settings_turn_back_into_the_pem(
    converted: ConvertedApp, pem: str
) -> None:
    values = env_lines_for(converted)
    assert values == {
        "APP_ID": "424242",
        "PRIVATE_KEY": values["PRIVATE_KEY"],
        "WEBHOOK_SECRET": converted.webhook_secret,
        "GITHUB_CLIENT_ID": converted.client_id,
        "GITHUB_CLIENT_SECRET": converted.client_secret,
    }
    assert "\n" not in values["PRIVATE_KEY"]
    assert values["PRIVATE_KEY"].startswith("-----BEGIN RSA PRIVATE KEY-----\\n")
    assert normalise_private_key(values["PRIVATE_KEY"]) == pem


# ---- writing the file (the .env text itself: test_env_file.py) ---------------------------
def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_env_creates_a_private_file_that_settings_read(
    tmp_path: Path, converted: ConvertedApp, pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in (*APP_KEYS, "PRIVATE_KEY_PATH"):
        monkeypatch.delenv(key, raising=False)
    old_umask = os.umask(0)
    try:
        env = tmp_path / ".env"
        write_env(env, env_lines_for(converted))
    finally:
        os.umask(old_umask)
    assert file_mode(env) == 0o600
    settings = load_settings(env)
    assert settings.APP_ID == "424242"
    assert settings.private_key_pem() == pem
    assert settings.WEBHOOK_SECRET is not None
    assert settings.WEBHOOK_SECRET.get_secret_value() == converted.webhook_secret
    assert settings.problems() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]
