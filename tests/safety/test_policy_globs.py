"""protected_paths compiled once: the same answers as `matches_glob`, for a whole list at once,
with the work bounded by the config's limits however many files or segments a change has."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from honk_app.repo_config import (
    MAX_PATTERN_CHARS,
    MAX_PROTECTED_PATHS,
    ConfigError,
    RepoConfig,
    matches_glob,
    parse_config,
)
from honk_app.safety import globs
from honk_app.safety.globs import GlobSet
from honk_app.safety.policy import FileChange, evaluate

PATTERNS = [
    ".github/workflows/**",
    "infra/",
    "**/*.lock",
    "secrets/*.key",
    "docs/?.md",
    "[!a]*/x[0-9].txt",
    "**/a/**/z",
    "./build/**/out/*",
    "/root.txt",
    "a**b/c",
    "**",
    "[]]x/*",
    "[a-",
    "",
]
PATHS = [
    ".github/workflows/ci.yml",
    ".github/workflows",
    ".github/workflowsx/ci.yml",
    "infra/main.tf",
    "infra",
    "pkg/yarn.lock",
    "yarn.lock",
    "secrets/deploy.key",
    "secrets/sub/deploy.key",
    "docs/a.md",
    "docs/ab.md",
    "b/x1.txt",
    "a/x1.txt",
    "/x1.txt",
    "q/a/r/s/z",
    "a/z",
    "build/out/o.bin",
    "build/1/2/out/o.bin",
    "root.txt",
    "./root.txt",
    "aXYZb/c",
    "a/b/c",
    "]x/y",
    "[a-",
    "",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_one_pattern_answers_as_matches_glob(pattern: str, path: str) -> None:
    expected = pattern if matches_glob(path, pattern) else None
    assert GlobSet([pattern]).first_match(path) == expected


@pytest.mark.parametrize("path", PATHS)
def test_the_first_matching_pattern_in_the_order_written_wins(path: str) -> None:
    expected = next((p for p in PATTERNS if matches_glob(path, p)), None)
    assert GlobSet(PATTERNS).first_match(path) == expected
    assert GlobSet(PATTERNS[::-1]).first_match(path) == next(
        (p for p in PATTERNS[::-1] if matches_glob(path, p)), None
    )


SEGMENT = st.sampled_from(["a", "b", "*", "?", "**", "[ab]", "[!a]", "a*", "*.py", "x.py", "["])
NAME = st.sampled_from(["a", "b", "ab", "x.py", "a.py", ".hidden", "[", "*"])


@given(
    st.lists(st.lists(SEGMENT, min_size=1, max_size=5).map("/".join), min_size=1, max_size=4),
    st.lists(NAME, min_size=1, max_size=6).map("/".join),
)
def test_any_patterns_answer_as_matches_glob(patterns: list[str], path: str) -> None:
    expected = next((p for p in patterns if matches_glob(path, p)), None)
    assert GlobSet(patterns).first_match(path) == expected


def test_a_deep_path_against_many_double_stars_is_walked_not_backtracked() -> None:
    """A regex for this pattern backtracks over every way to split 2,000 segments five ways;
    the segment walk looks at each segment once per pattern segment."""
    deep = "/".join(["a"] * 2000)
    pattern = "**/a/**/a/**/a/**/a/**/b"
    assert GlobSet([pattern]).first_match(deep) is None
    assert GlobSet([pattern]).first_match(deep + "/b") == pattern


def test_a_config_is_compiled_once_however_often_it_is_evaluated() -> None:
    globs.compiled.cache_clear()
    config = RepoConfig(protected_paths=[f"dir{i}/**" for i in range(MAX_PROTECTED_PATHS)])
    changes = [FileChange(f"src/f{i}.py", added=1) for i in range(2000)]
    changes.append(FileChange("dir199/x.txt", added=1))
    for _ in range(3):
        report = evaluate(changes, config)
    assert report.protected == ["dir199/x.txt"]
    info = globs.compiled.cache_info()
    assert (info.misses, info.hits) == (1, 2)


@pytest.mark.parametrize(
    ("yaml_text", "names"),
    [
        (
            "protected_paths: [" + ", ".join(f"p{i}" for i in range(MAX_PROTECTED_PATHS + 1)) + "]",
            "`protected_paths`",
        ),
        (f"protected_paths: [ok, {'x' * (MAX_PATTERN_CHARS + 1)}]", "`protected_paths[1]`"),
    ],
    ids=["too many patterns", "a pattern too long"],
)
def test_an_oversized_protected_paths_is_a_config_error(yaml_text: str, names: str) -> None:
    """One sentence naming the key and the limit (the wording is repo_config's)."""
    error = parse_config(yaml_text)
    assert isinstance(error, ConfigError)
    assert error.message.startswith(f"`.github/honk.yml`: {names} ")
    assert "200" in error.message and error.message.endswith(".")
    assert error.message.count(". ") == 0


def test_the_limits_themselves_are_accepted() -> None:
    patterns = ["p" * MAX_PATTERN_CHARS] + [f"p{i}" for i in range(MAX_PROTECTED_PATHS - 1)]
    config = parse_config("protected_paths: [" + ", ".join(patterns) + "]")
    assert isinstance(config, RepoConfig) and len(config.protected_paths) == MAX_PROTECTED_PATHS


@pytest.mark.parametrize("stars", [3, 7, 12])
def test_many_stars_in_one_segment_cannot_backtrack(stars: int) -> None:
    """`*a*a…*b` against a long name of `a`s: atomic groups keep each star to one try, so the
    match fails at once instead of trying every split (re would hold the GIL throughout)."""
    pattern = "*a" * stars + "*b"
    globs = GlobSet([pattern])
    assert globs.first_match("a" * 5_000) is None
    assert globs.first_match("a" * 5_000 + "b") == pattern
    assert globs.first_match("src/" + "a" * 5_000 + "b") is None  # a star never crosses `/`
