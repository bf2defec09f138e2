"""Pure: the `.github/honk.yml` schema, and errors a repository owner can act on.

The caller picks which file to read (the repository's own, else the owner's `.github` repository)
and passes its text here; this module never touches GitHub or the disk.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

CONFIG_PATH = ".github/honk.yml"
MAX_CONFIG_CHARS = 64_000  # a config file is a few lines; anything larger is a mistake
MAX_CONFIG_DEPTH = 8  # a valid config is a mapping of lists (two levels); deeper is a mistake
MAX_NUMBER_CHARS = 100  # longer numbers are refused before YAML converts them


# Commands are one line of shell each; a config has no use for more than this.
Command = Annotated[str, Field(min_length=1, max_length=4_000)]
MAX_ALLOWED_COMMANDS = 100
# protected_paths are matched against every changed file: bounded, whatever the file says
MAX_PROTECTED_PATHS = 200
MAX_PATTERN_CHARS = 200


class RepoConfig(BaseModel):
    """What a repository may tune about runs on it. Every key is optional."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    setup: Command | None = Field(default=None, description="Command run once before the tests.")
    test: Command | None = Field(
        default=None, description="Test command; without it nothing is verified."
    )
    protected_paths: list[Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_CHARS)]] = (
        Field(
            default_factory=lambda: [".github/workflows/**"],
            max_length=MAX_PROTECTED_PATHS,
            description="Globs (`**`, `*`, `?`, trailing `/`) Honk never changes.",
        )
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
    allowed_commands: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=MAX_ALLOWED_COMMANDS,
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
    """Parse a config file's text; no file (None) or an empty file gives the defaults.

    Never raises: whatever the file holds (deep nesting, a number of thousands of digits, an
    impossible date, a type no field takes), the owner gets one sentence naming the file and
    what to fix, never a crash that says to retry.
    """
    try:
        return _parse(text, source)
    except Exception:  # a YAML or pydantic failure nobody foresaw: still one sentence
        return ConfigError(
            f"{_code(source)} could not be read as a Honk configuration; check that it is a "
            "short YAML mapping of the documented keys.",
            source,
        )


def _parse(text: str | None, source: str) -> RepoConfig | ConfigError:
    if text is None or not text.strip():
        return RepoConfig()
    if len(text) > MAX_CONFIG_CHARS:
        return ConfigError(
            f"{_code(source)} is too large ({len(text):,} characters; the limit is "
            f"{MAX_CONFIG_CHARS:,}).",
            source,
        )
    try:
        data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader, bounded)
    except yaml.YAMLError as exc:
        return ConfigError(_yaml_problem(exc, source), source)
    except RecursionError:  # not reached through the loader's own bound, kept as a last guard
        return ConfigError(
            f"{_code(source)} is nested too deeply; a config file is a flat mapping.", source
        )
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        shape = _describe(data)
        return ConfigError(
            f"{_code(source)} must be a mapping of `key: value` lines, got {shape}.", source
        )
    bad_keys = [key for key in data if not isinstance(key, str)]
    errors: list[ErrorDetails] = []
    try:
        config = RepoConfig.model_validate({k: v for k, v in data.items() if isinstance(k, str)})
    except ValidationError as exc:
        errors = _in_file_order(exc.errors(include_url=False), list(data))
    else:
        if not bad_keys:
            return config
    # only the first problem is worded: a file of 20,000 unknown keys costs one suggestion
    first = f"unknown key {_code(str(bad_keys[0]))}" if bad_keys else _problem(errors[0])
    rest = len(bad_keys) + len(errors) - 1
    more = f" (and {rest} more problem{'s' if rest > 1 else ''})" if rest else ""
    sentence = f"{_code(source)}: {first}{more}"
    return ConfigError(sentence if sentence.endswith("?)") else sentence + ".", source)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing what would cost Honk more than a small config can need.

    Nesting is refused while the document is composed, before anything deep is built (a valid
    config is two levels deep; PyYAML's composer recurses, so 32k brackets would otherwise end
    in RecursionError). A number longer than `MAX_NUMBER_CHARS` is refused before conversion
    (thousands of digits exceed Python's int conversion limit; a long `1:2:3…` costs seconds),
    and a value that cannot be converted (an impossible date) becomes a YAML error with its line.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_CONFIG_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"it is nested more than {MAX_CONFIG_DEPTH} levels deep",
                    parent.start_mark if parent is not None else self.get_mark(),
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        number = isinstance(node, yaml.ScalarNode) and node.tag == _INT_TAG
        if number and len(node.value) > MAX_NUMBER_CHARS:
            raise yaml.constructor.ConstructorError(
                None, None, f"a number longer than {MAX_NUMBER_CHARS} characters", node.start_mark
            )
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, "a value that cannot be read (an impossible date?)", node.start_mark
            ) from exc


_INT_TAG = "tag:yaml.org,2002:int"


def _yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if isinstance(exc, yaml.reader.ReaderError):
        mark = None
        problem = f"{exc.reason} (character {exc.position + 1})"
    problem = " ".join(str(problem or "it could not be parsed").split())
    if len(problem) > 120:
        problem = problem[:119] + "…"
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{_code(source)} is not valid YAML: {problem}{where}."


def _in_file_order(errors: list[ErrorDetails], key_order: list[Any]) -> list[ErrorDetails]:
    """The errors sorted by where their key appears in the file."""
    positions: dict[str, int] = {}
    for place, key in enumerate(key_order):
        if isinstance(key, str):
            positions.setdefault(key, place)

    def position(error: ErrorDetails) -> int:
        key = error["loc"][0] if error["loc"] else None
        return positions.get(key, len(key_order)) if isinstance(key, str) else len(key_order)

    return sorted(errors, key=position)


def _problem(error: ErrorDetails) -> str:
    loc = error["loc"]
    key = str(loc[0]) if loc else "?"
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(key[:100], _FIELDS, n=1, cutoff=0.6)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        return f"unknown key {_code(key)}{hint}"
    name = _code(key + "".join(f"[{part}]" for part in loc[1:]))
    if len(loc) > 1 and kind == "string_type":
        item = int(loc[1]) + 1 if isinstance(loc[1], int) else loc[1]
        return f"{_code(key)} must be a list of strings; item {item} is {_describe(value)}"
    if kind in _KIND_BY_ERROR:
        return f"{name} must be {_KIND_BY_ERROR[kind]}, got {_describe(value)}"
    if kind == "literal_error":
        choices = ctx.get("expected", "one of the listed values")
        return f"{name} must be {choices}, got {_describe(value)}"
    if kind in _BOUND_WORDS:
        limit = next(iter(ctx.values()), "?")
        shown = f"{limit:g}" if isinstance(limit, float) else str(limit)
        return f"{name} must be {_BOUND_WORDS[kind]} {shown}, got {_describe(value)}"
    if kind == "string_too_short":
        return (
            f"{_code(key)} must not contain an empty string"
            if len(loc) > 1
            else f"{_code(key)} must not be empty"
        )
    if kind == "string_too_long":
        return f"{name} is too long (at most {ctx.get('max_length')} characters)"
    if kind == "too_long":
        return f"{name} has too many items (at most {ctx.get('max_length')})"
    return f"{name} is not valid: {_describe_text(str(error['msg']).lower(), 80)}"


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
    if isinstance(value, int) and value.bit_length() > 64:
        return "a number too long to show"
    if isinstance(value, str):
        return _describe_text(repr(value[:60]), 40)
    return _describe_text(str(value), 40)


def _describe_text(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "…"


def _code(text: str) -> str:
    """A name the user wrote, shortened, as a code span its own backticks cannot close.

    The same rule as `report.render.code_span`, which this module cannot import (it sits below
    `report` in the layers): the message is rendered later through `report.text.inline`, which
    keeps well-formed code spans as code.
    """
    text = " ".join(text.split())
    text = text if len(text) <= 60 else text[:59] + "…"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


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
