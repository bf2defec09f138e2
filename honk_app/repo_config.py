"""Pure: the `.github/honk.yml` schema, and errors a repository owner can act on.

The caller picks which file to read (the repository's own, else the owner's `.github` repository)
and passes its text here; this module never touches GitHub or the disk.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

CONFIG_PATH = ".github/honk.yml"
MAX_CONFIG_CHARS = 64_000  # a config file is a few lines; anything larger is a mistake


NonEmpty = Annotated[str, Field(min_length=1)]


class RepoConfig(BaseModel):
    """What a repository may tune about runs on it. Every key is optional."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    setup: NonEmpty | None = Field(default=None, description="Command run once before the tests.")
    test: NonEmpty | None = Field(
        default=None, description="Test command; without it nothing is verified."
    )
    protected_paths: list[NonEmpty] = Field(
        default_factory=lambda: [".github/workflows/**"],
        description="Globs (`**`, `*`, `?`, trailing `/`) Honk never changes.",
    )
    max_turns: int = Field(default=40, ge=1, le=200)
    max_cost_usd: float = Field(default=2.00, gt=0, le=100)
    timeout_minutes: int = Field(default=30, ge=1, le=180)
    model: str = Field(default="claude-sonnet-4-5", min_length=1, max_length=200)
    agent: Literal["builtin", "claude-code"] | None = Field(
        default=None, description="None means the server default (HONK_AGENT, itself `builtin`)."
    )
    instructions: str | None = Field(default=None, max_length=20_000)
    draft: Literal["auto", "always"] = Field(
        default="auto", description="`auto`: ready for review only when the tests pass."
    )
    fix_attempts: int = Field(default=2, ge=0, le=5)
    max_changed_files: int = Field(default=50, ge=1, le=100_000)
    max_changed_lines: int = Field(default=2000, ge=1, le=10_000_000)
    setup_network: bool = Field(
        default=False, description="Let the setup command reach the network."
    )
    allowed_commands: list[NonEmpty] = Field(
        default_factory=list,
        description=(
            "Claude Code only: Bash command prefixes (e.g. `npm test`) the agent may run "
            "without asking, beyond the editing tools; every command still runs in the sandbox."
        ),
    )
    allow_web: bool = Field(
        default=False, description="Claude Code only: allow WebFetch and WebSearch."
    )


@dataclass(frozen=True)
class ConfigError:
    """A configuration file Honk cannot use; `message` is one sentence, shown to users as is."""

    message: str
    source: str


_FIELDS = tuple(RepoConfig.model_fields)

_KIND_BY_ERROR = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list of strings",
}
_BOUND_WORDS = {
    "greater_than_equal": "at least",
    "greater_than": "more than",
    "less_than_equal": "at most",
    "less_than": "less than",
}


def parse_config(text: str | None, *, source: str = CONFIG_PATH) -> RepoConfig | ConfigError:
    """Parse a config file's text; no file (None) or an empty file gives the defaults."""
    if text is None or not text.strip():
        return RepoConfig()
    if len(text) > MAX_CONFIG_CHARS:
        return ConfigError(
            f"`{source}` is too large ({len(text):,} characters; the limit is "
            f"{MAX_CONFIG_CHARS:,}).",
            source,
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return ConfigError(_yaml_problem(exc, source), source)
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        shape = _describe(data)
        return ConfigError(
            f"`{source}` must be a mapping of `key: value` lines, got {shape}.", source
        )
    bad_keys = [key for key in data if not isinstance(key, str)]
    problems = [f"unknown key `{key}`" for key in bad_keys]
    try:
        config = RepoConfig.model_validate({k: v for k, v in data.items() if isinstance(k, str)})
    except ValidationError as exc:
        problems += _ordered_problems(exc.errors(), list(data))
    else:
        if not problems:
            return config
    first, rest = problems[0], len(problems) - 1
    more = f" (and {rest} more problem{'s' if rest > 1 else ''})" if rest else ""
    sentence = f"`{source}`: {first}{more}"
    return ConfigError(sentence if sentence.endswith("?)") else sentence + ".", source)


def _yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "it could not be parsed"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"`{source}` is not valid YAML: {problem}{where}."


def _ordered_problems(errors: list[ErrorDetails], key_order: list[Any]) -> list[str]:
    """One phrase per error, in the order the keys appear in the file."""

    def position(error: ErrorDetails) -> int:
        key = error["loc"][0] if error["loc"] else None
        return key_order.index(key) if key in key_order else len(key_order)

    return [_problem(error) for error in sorted(errors, key=position)]


def _problem(error: ErrorDetails) -> str:
    loc = error["loc"]
    key = str(loc[0]) if loc else "?"
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(key, _FIELDS, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        return f"unknown key `{key}`{hint}"
    name = key + "".join(f"[{part}]" for part in loc[1:])
    if len(loc) > 1 and kind == "string_type":
        item = int(loc[1]) + 1 if isinstance(loc[1], int) else loc[1]
        return f"`{key}` must be a list of strings; item {item} is {_describe(value)}"
    if kind in _KIND_BY_ERROR:
        return f"`{name}` must be {_KIND_BY_ERROR[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        choices = ctx.get("expected", "one of the listed values")
        return f"`{name}` must be {choices}, got {_describe(value)}"
    if kind in _BOUND_WORDS:
        limit = next(iter(ctx.values()), "?")
        shown = f"{limit:g}" if isinstance(limit, float) else str(limit)
        return f"`{name}` must be {_BOUND_WORDS[kind]} {shown}, got {_describe(value)}"
    if kind == "string_too_short":
        return (
            f"`{key}` must not contain an empty string"
            if len(loc) > 1
            else f"`{key}` must not be empty"
        )
    if kind == "string_too_long":
        return f"`{name}` is too long (at most {ctx.get('max_length')} characters)"
    return f"`{name}` is not valid: {error['msg'].lower()}"


def _describe(value: Any) -> str:
    """A short, safe rendering of a value a user wrote (never the whole of a long one)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "…"


def matches_glob(path: str, pattern: str) -> bool:
    """Whether a repository path matches a glob anchored at the repository root.

    `**` spans any number of directories (including none), `*` and `?` stay within one path
    segment, `[abc]` is a character class, and a trailing `/` means "this directory and
    everything under it". Matching is case-sensitive, like git on Linux.
    """
    path = path.strip().removeprefix("./").lstrip("/")
    pattern = pattern.strip().removeprefix("./").lstrip("/")
    if not path or not pattern:
        return False
    if pattern.endswith("/"):
        pattern += "**"
    globs = pattern.split("/")
    if len(globs) > 1 and globs[-1] == "**":
        globs[-1:] = ["*", "**"]  # `dir/**` is what is inside `dir`, not `dir` itself
    return _match_segments(path.split("/"), globs)


def _match_segments(parts: list[str], globs: list[str]) -> bool:
    # reachable[i]: the first i path segments are matched by the globs seen so far
    reachable = [True] + [False] * len(parts)
    for glob in globs:
        if glob == "**":
            seen = False
            for i in range(len(reachable)):
                seen = seen or reachable[i]
                reachable[i] = seen
            continue
        segment_glob = glob.replace("**", "*")
        reachable = [False] + [
            reachable[i] and fnmatch.fnmatchcase(parts[i], segment_glob) for i in range(len(parts))
        ]
    return reachable[-1]
