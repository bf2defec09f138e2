"""The documents a newcomer reads first say only what the code does: every link resolves inside
the repository, every setting, `make` target, `honk` command, `/honk` word and `honk.yml` key they
name exists, and the README stays short enough to read on a phone."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from honk_app.cli import build_parser
from honk_app.command_grammar import parse_command
from honk_app.models import Command
from honk_app.repo_config import RepoConfig, parse_config

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = (
    "README.md",
    "CONTRIBUTING.md",
    "CHANGELOG.md",
    "SECURITY.md",
    "docs/architecture.md",
    "bench/README.md",
)
README_MAX_LINES = 250

_LINK = re.compile(r"\]\(([^)\s]+)\)")
# Settings and the variables Honk sets or reads: `HONK_…`, the GitHub App's and Anthropic's.
_VARIABLE = re.compile(r"\b(?:HONK|ANTHROPIC|GITHUB|GHE|APP|PRIVATE|WEBHOOK)_[A-Z0-9_]*(?:\*|\b)")
_MAKE = re.compile(r"(?:`|^)make ((?:[a-z]+ ?)+)", re.MULTILINE)
_HONK_COMMAND = re.compile(r"`honk ([a-z][a-z -]*?)`")
_SLASH_WORD = re.compile(r"`/honk ([a-z]+)`")


def _text(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _known_variables() -> set[str]:
    """Every name `.env.example` documents or Honk's code and tests spell out."""
    sources = [_text(".env.example")]
    sources += [p.read_text(encoding="utf-8") for p in (ROOT / "honk_app").rglob("*.py")]
    sources += [p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py")]
    return {name for text in sources for name in _VARIABLE.findall(text)}


def _readme_yaml_block() -> str:
    match = re.search(r"```yaml\n(.*?)```", _text("README.md"), re.DOTALL)
    assert match, "README.md shows an example .github/honk.yml"
    return match.group(1)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_relative_link_resolves_inside_the_repository(document: str) -> None:
    base = (ROOT / document).parent
    broken = []
    for target in _LINK.findall(_text(document)):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        path = (base / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_setting_named_exists(document: str) -> None:
    known = _known_variables()
    unknown = {
        name
        for name in _VARIABLE.findall(_text(document))
        if not (
            name in known
            # `HONK_BUDGET_*` stands for a family of settings
            or (name.endswith(("_", "*")) and any(k.startswith(name.rstrip("*")) for k in known))
        )
    }
    assert unknown == set()


@pytest.mark.parametrize("document", ["README.md", "CONTRIBUTING.md"])
def test_every_make_target_named_exists(document: str) -> None:
    targets = set(re.findall(r"^([a-z]+):", _text("Makefile"), re.MULTILINE))
    named = {word for words in _MAKE.findall(_text(document)) for word in words.split()}
    assert named, f"{document} names make targets"
    assert named - targets == set()


@pytest.mark.parametrize("document", ["README.md", "docs/architecture.md", "CHANGELOG.md"])
def test_every_honk_command_named_is_accepted(document: str) -> None:
    parser = build_parser()
    commands = _HONK_COMMAND.findall(_text(document))
    for command in commands:
        try:
            args = parser.parse_args(command.split())
        except SystemExit:
            pytest.fail(f"`honk {command}` is not a command honk accepts")
        assert args.command == command.split()[0]


def test_every_slash_command_in_the_readme_is_one_honk_knows() -> None:
    words = set(_SLASH_WORD.findall(_text("README.md")))
    assert words >= {"stop", "retry", "status", "help"}
    for word in words:
        parsed = parse_command(f"/honk {word}", "honk")
        assert parsed is not None and parsed.command is not Command.RUN, word


def test_the_readme_honk_yml_example_is_valid_and_shows_every_key() -> None:
    text = _readme_yaml_block()
    assert isinstance(parse_config(text), RepoConfig)
    assert set(yaml.safe_load(text)) == set(RepoConfig.model_fields)


def test_the_readme_is_short_and_leads_to_the_rest() -> None:
    readme = _text("README.md")
    assert len(readme.splitlines()) <= README_MAX_LINES
    for target in ("docs/architecture.md", "CONTRIBUTING.md", "CHANGELOG.md", "LICENSE"):
        assert f"]({target})" in readme
    assert readme.index("make serve") < readme.index("## Your first hour")
    assert readme.index("## Your first hour") < readme.index("## How it works")


def test_the_license_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads(_text("pyproject.toml"))["project"]["license"]
    assert declared == "MIT"
    assert _text("LICENSE").startswith("MIT License\n")
