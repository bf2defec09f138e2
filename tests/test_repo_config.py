"""The `.github/honk.yml` schema: what owners may write, and the sentence they get when wrong."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from honk_app.models import Outcome, Target
from honk_app.repo_config import ConfigError, RepoConfig, matches_glob, parse_config
from honk_app.report.comment import RunView, tracking_comment

SOURCE = ".github/honk.yml"


def parse_ok(text: str | None) -> RepoConfig:
    result = parse_config(text, source=SOURCE)
    assert isinstance(result, RepoConfig), result
    return result


def parse_error(text: str) -> str:
    result = parse_config(text, source=SOURCE)
    assert isinstance(result, ConfigError), result
    assert result.source == SOURCE
    return result.message


DEFAULTS = {
    "setup": None,
    "test": None,
    "protected_paths": [".github/workflows/**"],
    "max_turns": 40,
    "max_cost_usd": 2.00,
    "timeout_minutes": 30,
    "model": "claude-sonnet-4-5",
    "agent": None,
    "instructions": None,
    "draft": "auto",
    "fix_attempts": 2,
    "max_changed_files": 50,
    "max_changed_lines": 2000,
    "setup_network": False,
    "allowed_commands": [],
    "allow_web": False,
}


@pytest.mark.parametrize("text", [None, "", "   \n", "# only a comment\n", "---\n"])
def test_no_file_or_an_empty_file_gives_the_defaults(text: str | None) -> None:
    assert parse_ok(text).model_dump() == DEFAULTS


def test_every_key_can_be_set() -> None:
    config = parse_ok(
        """
setup: pip install -e .[dev]
test: pytest -q
protected_paths:
  - .github/**
  - secrets/
max_turns: 200
max_cost_usd: 7.5
timeout_minutes: 180
model: claude-opus-4-1
agent: claude-code
instructions: |
  Use the existing helpers in utils/.
  Keep changes small.
draft: always
fix_attempts: 0
max_changed_files: 10
max_changed_lines: 300
setup_network: true
allowed_commands: ["npm test", "make lint"]
allow_web: true
"""
    )
    assert config.model_dump() == {
        "setup": "pip install -e .[dev]",
        "test": "pytest -q",
        "protected_paths": [".github/**", "secrets/"],
        "max_turns": 200,
        "max_cost_usd": 7.5,
        "timeout_minutes": 180,
        "model": "claude-opus-4-1",
        "agent": "claude-code",
        "instructions": "Use the existing helpers in utils/.\nKeep changes small.\n",
        "draft": "always",
        "fix_attempts": 0,
        "max_changed_files": 10,
        "max_changed_lines": 300,
        "setup_network": True,
        "allowed_commands": ["npm test", "make lint"],
        "allow_web": True,
    }


def test_a_whole_dollar_amount_is_a_valid_cost() -> None:
    assert parse_ok("max_cost_usd: 5").max_cost_usd == 5.0


def test_protected_paths_can_be_emptied_on_purpose() -> None:
    assert parse_ok("protected_paths: []").protected_paths == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_turns: lots", "`max_turns` must be an integer, got 'lots'."),
        ("max_turns: 2.5", "`max_turns` must be an integer, got 2.5."),
        ("max_turns: true", "`max_turns` must be an integer, got true."),
        ("max_turns:", "`max_turns` must be an integer, got nothing."),
        ("max_turns: 0", "`max_turns` must be at least 1, got 0."),
        ("max_turns: 201", "`max_turns` must be at most 200, got 201."),
        ("max_cost_usd: 0", "`max_cost_usd` must be more than 0, got 0."),
        ("max_cost_usd: 100.5", "`max_cost_usd` must be at most 100, got 100.5."),
        ("max_cost_usd: cheap", "`max_cost_usd` must be a number, got 'cheap'."),
        ("timeout_minutes: 0", "`timeout_minutes` must be at least 1, got 0."),
        ("timeout_minutes: 181", "`timeout_minutes` must be at most 180, got 181."),
        ("fix_attempts: 6", "`fix_attempts` must be at most 5, got 6."),
        ("fix_attempts: -1", "`fix_attempts` must be at least 0, got -1."),
        ("max_changed_files: 0", "`max_changed_files` must be at least 1, got 0."),
        ("max_changed_lines: many", "`max_changed_lines` must be an integer, got 'many'."),
        ("setup: 42", "`setup` must be a string, got 42."),
        ("test: [pytest]", "`test` must be a string, got a list."),
        ('test: ""', "`test` must not be empty."),
        ("model: {name: x}", "`model` must be a string, got a mapping."),
        ('model: ""', "`model` must not be empty."),
        ("agent: gpt", "`agent` must be 'builtin' or 'claude-code', got 'gpt'."),
        ("draft: never", "`draft` must be 'auto' or 'always', got 'never'."),
        ("instructions: 3", "`instructions` must be a string, got 3."),
        ("setup_network: maybe", "`setup_network` must be true or false, got 'maybe'."),
        ("allow_web: 1", "`allow_web` must be true or false, got 1."),
        (
            "protected_paths: .github/**",
            "`protected_paths` must be a list of strings, got '.github/**'.",
        ),
        (
            "protected_paths: [docs/, 3]",
            "`protected_paths` must be a list of strings; item 2 is 3.",
        ),
        ('allowed_commands: [""]', "`allowed_commands` must not contain an empty string."),
        (
            "allowed_commands: npm test",
            "`allowed_commands` must be a list of strings, got 'npm test'.",
        ),
    ],
)
def test_a_wrong_value_is_one_sentence_naming_the_key(text: str, message: str) -> None:
    assert parse_error(text) == f"`.github/honk.yml`: {message}"


def test_an_unknown_key_suggests_the_closest_one() -> None:
    assert parse_error("max_turn: 3") == (
        "`.github/honk.yml`: unknown key `max_turn` (did you mean `max_turns`?)"
    )
    assert parse_error("alow_web: true") == (
        "`.github/honk.yml`: unknown key `alow_web` (did you mean `allow_web`?)"
    )


def test_an_unknown_key_with_nothing_close_gets_no_suggestion() -> None:
    assert parse_error("colour: blue") == "`.github/honk.yml`: unknown key `colour`."


def test_a_key_that_is_not_a_string_is_unknown() -> None:
    assert parse_error("1: 2") == "`.github/honk.yml`: unknown key `1`."


def test_several_problems_name_the_first_in_file_order_and_count_the_rest() -> None:
    message = parse_error("timeout_minutes: 0\nmax_turns: lots\nmodle: x\n")
    assert message == (
        "`.github/honk.yml`: `timeout_minutes` must be at least 1, got 0 (and 2 more problems)."
    )
    assert parse_error("max_turn: 1\nmax_turns: 0\n").endswith("(and 1 more problem).")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("max_turns: 3\ntest: [pytest\n", 3),
        ("max_turns: 3\nsetup: a: b\n", 2),
        ("max_turns: 3\n\t- x\n", 2),
    ],
)
def test_invalid_yaml_names_the_line(text: str, line: int) -> None:
    message = parse_error(text)
    assert message.startswith("`.github/honk.yml` is not valid YAML: ")
    assert f" at line {line}, column " in message
    assert message.endswith(".") and "\n" not in message


@pytest.mark.parametrize(
    ("text", "shape"),
    [("- pytest\n- ruff\n", "a list"), ("just words", "'just words'"), ("42", "42")],
)
def test_a_file_that_is_not_a_mapping_is_refused(text: str, shape: str) -> None:
    assert parse_error(text) == (
        f"`.github/honk.yml` must be a mapping of `key: value` lines, got {shape}."
    )


def test_a_huge_file_is_refused_without_parsing() -> None:
    message = parse_error("# x\n" * 20_000)
    assert message.startswith("`.github/honk.yml` is too large (80,000 characters")


def test_the_source_named_is_the_file_that_was_read() -> None:
    result = parse_config("max_turn: 1", source="acme/.github:.github/honk.yml")
    assert isinstance(result, ConfigError)
    assert result.source == "acme/.github:.github/honk.yml"
    assert result.message.startswith("`acme/.github:.github/honk.yml`: unknown key")


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    message = parse_error(f"max_turns: {'x' * 500}")
    assert len(message) < 120
    assert "…" in message


def test_the_parsed_config_cannot_be_changed_by_accident() -> None:
    config = parse_ok("max_turns: 3")
    with pytest.raises(ValueError):
        config.max_turns = 4  # type: ignore[misc]


# What a stranger with a pull request, or a careless owner, can put in the file: each is one
# sentence naming the file and the problem, never a crash that ends the run with "retry".
HOSTILE: dict[str, tuple[str, str]] = {
    "32k-deep flow list": ("[" * 32_000, "is not valid YAML: it is nested more than 8 levels deep"),
    "deep list under a key": (
        "protected_paths: " + "[" * 30_000,
        "is not valid YAML: it is nested more than 8 levels deep",
    ),
    "deep block sequence": ("- " * 20_000 + "x", "nested more than 8 levels deep"),
    "deep indented mapping": (
        "".join(" " * i + f"k{i}:\n" for i in range(300)),
        "nested more than 8 levels deep at line 8",
    ),
    "5,000-digit number": (
        "max_turns: " + "9" * 5_000,
        "is not valid YAML: a number longer than 100 characters at line 1, column 12",
    ),
    "a long sexagesimal number": ("max_turns: " + "1:" * 20_000 + "1", "a number longer than 100"),
    "5,000-digit key": ("? " + "9" * 5_000 + "\n: 1", "a number longer than 100 characters"),
    "an impossible date": ("max_turns: 2001-02-30", "a value that cannot be read"),
    "a python tag": (
        "setup: !!python/object/apply:os.system [id]",
        "could not determine a constructor for the tag",
    ),
    "a NUL character": ("max_turns: 3\x00", "special characters are not allowed (character 13)"),
    "a huge float": ("max_cost_usd: 1.0e+999", "`max_cost_usd` must be at most 100, got inf"),
    "not a number": ("max_cost_usd: .nan", "`max_cost_usd` must be at most 100, got nan"),
    "a recursive alias": ("a: &a [*a]", "unknown key `a`"),
    "too many protected paths": (
        "protected_paths: [" + ",".join(["x/"] * 300) + "]",
        "`protected_paths` has too many items (at most 200)",
    ),
    "6,000 unknown keys": (
        "\n".join(f"k{i}: 1" for i in range(6_000)),
        "unknown key `k0` (and 5999 more problems)",
    ),
}


@pytest.mark.parametrize(("text", "phrase"), HOSTILE.values(), ids=HOSTILE)
def test_a_hostile_file_is_one_sentence_naming_it(text: str, phrase: str) -> None:
    message = parse_error(text[:64_000])
    assert message.startswith("`.github/honk.yml`")
    assert phrase in message
    assert message.endswith(".") and "\n" not in message and len(message) < 200
    assert "retry" not in message and "recursion" not in message.lower()


KEYS_WITH_BACKTICKS: dict[str, tuple[str, str]] = {
    "a span inside": ("'x` **bold** `y': 2", "``x` **bold** `y``"),
    "only a backtick": ("'`': 1", "`` ` ``"),
    "a run of backticks": ("'a```b': 1", "````a```b````"),
    "a long key": (f"'{'k' * 500}': 1", f"`{'k' * 59}…`"),
}


@pytest.mark.parametrize(("text", "span"), KEYS_WITH_BACKTICKS.values(), ids=KEYS_WITH_BACKTICKS)
def test_a_key_with_backticks_stays_inside_its_code_span(text: str, span: str) -> None:
    message = parse_error(text)
    assert message == f"`.github/honk.yml`: unknown key {span}."
    view = RunView(
        run_id="r-1",
        target=Target("acme", "shop", 42),
        outcome=Outcome.CONFIG_ERROR,
        outcome_detail=message,
    )
    comment = tracking_comment(view)
    assert f"`.github/honk.yml`: unknown key {span}." in comment.splitlines()
    assert not re.search(r"(?<!`)\*\*bold\*\*(?!`)", comment.replace(span, ""))


yaml_pieces = st.sampled_from(
    ["max_turns:", "protected_paths:", " ", "\n", "  - ", "[", "]", "{", "}", ",", ": ", "&a ",
     "*a", "!!int ", "!!python/name:os.system", "? ", "'", '"', "`", "9" * 120, "1:2", "0x1F",
     "2001-02-30", ".nan", "-.inf", "~", "|", ">", "#", "\t", "\x00", "\u2028", "\ud800"]
)  # fmt: skip
yaml_texts = st.lists(st.one_of(yaml_pieces, st.text(max_size=8)), max_size=40).map("".join)


@hypothesis_settings(max_examples=400)
@given(text=st.one_of(yaml_texts, st.text()))
def test_parsing_any_text_gives_a_config_or_one_sentence(text: str) -> None:
    result = parse_config(text, source=SOURCE)
    if isinstance(result, ConfigError):
        assert result.message.startswith("`.github/honk.yml`")
        assert result.message.endswith((".", "?)")) and "\n" not in result.message
    else:
        assert isinstance(result, RepoConfig)


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        (".github/workflows/ci.yml", ".github/workflows/**", True),
        (".github/workflows/nested/x.yml", ".github/workflows/**", True),
        (".github/workflows", ".github/workflows/**", False),  # the directory itself is not in it
        (".github/dependabot.yml", ".github/workflows/**", False),
        ("docs/a/b.md", "docs/", True),
        ("docs.md", "docs/", False),
        ("src/deep/er/x.pem", "**/*.pem", True),
        ("x.pem", "**/*.pem", True),  # `**/` also matches no directory at all
        ("src/x.py", "src/**/*.py", True),
        ("src/a/b/x.py", "src/**/*.py", True),
        ("src/a/x.py", "src/*.py", False),  # `*` stays within one segment
        ("src/x.py", "src/*.py", True),
        ("a/x/b", "a/**/b", True),
        ("a/b", "a/**/b", True),
        ("a/x/y/c", "a/**/b", False),
        ("setup.py", "*.py", True),
        ("pkg/setup.py", "*.py", False),  # anchored at the root, like Actions path filters
        ("abc", "a?c", True),
        ("a/c", "a?c", False),
        ("file1.txt", "file[0-9].txt", True),
        ("fileX.txt", "file[0-9].txt", False),
        ("anything/at/all", "**", True),
        ("./.github/workflows/ci.yml", "/.github/workflows/**", True),
        ("Docs/x.md", "docs/", False),  # case-sensitive, like git
        ("", "**", False),
        ("x", "", False),
    ],
)
def test_glob_matching(path: str, pattern: str, expected: bool) -> None:
    assert matches_glob(path, pattern) is expected


def test_deep_paths_against_many_double_stars_stay_fast() -> None:
    path = "/".join(["a"] * 200) + "/z"
    assert matches_glob(path, "**/a/**/a/**/a/**/a/**/z")
    assert not matches_glob(path, "**/a/**/a/**/a/**/a/**/b")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("test: " + "x" * 4_001 + "\n", "test"),
        ("setup: " + "x" * 4_001 + "\n", "setup"),
        ("allowed_commands: [" + ", ".join(["npm test"] * 101) + "]\n", "allowed_commands"),
        ("allowed_commands: [" + "x" * 201 + "]\n", "allowed_commands"),
    ],
)
def test_every_list_and_command_in_the_config_is_bounded(text: str, words: str) -> None:
    found = parse_config(text, source="octo-org/hello-world/.github/honk.yml")
    assert isinstance(found, ConfigError)
    assert words in found.message and "\n" not in found.message
