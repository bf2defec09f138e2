"""Pure: what a diff may not do before Honk pushes it.

Honk reads the `git diff` of the agent's work, leaves protected paths out (the caller restores
them and diffs again), and refuses to push a change that is too large, adds something that looks
like a credential or changes a submodule pointer. Only added lines are scanned: deleting a leaked
key must never be blocked. Binary files are named, so a reviewer knows what no diff shows.

The agent decides how large the diff is, so Honk reads at most a few megabytes of it (the caller
cuts it and says so) and `inspect_diff` counts lines instead of keeping them: a change whose diff
was cut, or whose inspection ran out of time, is not pushed, since it was not fully scanned for
credentials. Its totals then come from `git diff --shortstat`. Parsing is in safety/diff_parse.py,
protected path matching in safety/globs.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from honk_app.repo_config import RepoConfig
from honk_app.safety.diff_parse import (
    FileChange,
    FileStatus,
    InspectionStopped,
    SecretHit,
    parse_unified_diff,
)
from honk_app.safety.globs import compiled

__all__ = [
    "Annotation",
    "DiffTotals",
    "FileChange",
    "FileStatus",
    "InspectionStopped",
    "PolicyReport",
    "SecretHit",
    "evaluate",
    "inspect_diff",
    "parse_unified_diff",
]

AnnotationLevel = Literal["notice", "warning", "failure"]

MAX_LISTED = 10  # paths or secrets named in one finding; the rest are counted


@dataclass(frozen=True)
class DiffTotals:
    """What `git diff --shortstat` says of the whole change, however large its diff."""

    files: int
    added: int
    removed: int


@dataclass(frozen=True)
class Annotation:
    """A check run annotation, independent of GitHub's field names (report.py maps them)."""

    path: str
    line: int
    level: AnnotationLevel
    title: str
    message: str


@dataclass
class PolicyReport:
    """The verdict on one diff, with the numbers behind it."""

    protected: list[str]  # paths under protected_paths: restore them and diff again
    files_changed: int
    lines_changed: int  # added plus removed
    max_changed_files: int
    max_changed_lines: int
    secrets: list[SecretHit]
    protected_patterns: dict[str, str] = field(default_factory=dict)  # path → the glob it matched
    binary: list[str] = field(default_factory=list)  # binary files added or changed
    submodules: list[str] = field(default_factory=list)  # gitlinks added, changed or removed
    secrets_found: int = 0  # every hit, `secrets` keeps the first MAX_SECRET_HITS
    uninspected: str = ""  # why part of the change went unscanned (one sentence), if it did
    server_secret: bool = False  # the diff holds a secret of this Honk server, verbatim

    @property
    def too_many_files(self) -> bool:
        return self.files_changed > self.max_changed_files

    @property
    def too_many_lines(self) -> bool:
        return self.lines_changed > self.max_changed_lines

    @property
    def blocks_push(self) -> bool:
        """Size, secrets and submodule pointers block the push; protected paths (left out
        instead) and binary files (named for the reviewer) do not."""
        return (
            self.too_many_files
            or self.too_many_lines
            or bool(self.secrets or self.submodules or self.uninspected)
        )

    @property
    def empty(self) -> bool:
        """Nothing changed (and nothing went unread)."""
        return self.files_changed == 0 and not self.uninspected

    def findings(self, *, include_protected: bool = True) -> list[str]:
        """One sentence per problem, for the tracking comment, the pull request and the check.

        `include_protected=False` leaves out the note on protected paths, which never blocks.
        """
        found: list[str] = [self.uninspected] if self.uninspected else []
        if self.protected and include_protected:
            named = _listing([f"`{p}`" for p in self.protected])
            patterns = sorted(set(self.protected_patterns.values()))
            via = f" (matched by {_listing([f'`{g}`' for g in patterns])})" if patterns else ""
            found.append(
                f"Honk does not change protected paths{via}, so it left out its changes to {named}."
            )
        if self.too_many_files:
            found.append(
                f"The change touches {self.files_changed:,} files, more than the limit of "
                f"{self.max_changed_files:,} (`max_changed_files`)."
            )
        if self.too_many_lines:
            found.append(
                f"The change adds or removes {self.lines_changed:,} lines, more than the limit "
                f"of {self.max_changed_lines:,} (`max_changed_lines`)."
            )
        for hit in self.secrets[:MAX_LISTED]:
            found.append(
                f"`{hit.path}` line {hit.line} adds what looks like a {hit.kind} "
                f"(`{hit.preview}`); Honk does not push credentials."
            )
        total = max(self.secrets_found, len(self.secrets))
        if total > MAX_LISTED:
            found.append(f"{total - MAX_LISTED:,} more lines look like credentials.")
        if self.submodules:
            named = _listing([f"`{p}`" for p in self.submodules])
            found.append(
                f"The change adds or moves submodule pointers ({named}); Honk does not push "
                "commits of other repositories."
            )
        if self.binary:
            one = len(self.binary) == 1
            named = _listing([f"`{p}`" for p in self.binary])
            found.append(
                f"The change adds or changes {'a binary file' if one else 'binary files'}, "
                f"{named}: no diff can show {'its' if one else 'their'} content, so check "
                f"{'it' if one else 'them'} by hand."
            )
        return found

    def annotations(self) -> list[Annotation]:
        """Line-level notes for the check run; secrets appear only as their redacted preview."""
        notes = [
            Annotation(
                path=hit.path,
                line=hit.line,
                level="failure",
                title=f"Possible {hit.kind}",
                message=(
                    f"This line adds what looks like a {hit.kind} ({hit.preview}). Honk does not "
                    "push credentials: remove it and load the value from a secret store."
                ),
            )
            for hit in self.secrets
        ]
        for path in self.protected:
            pattern = self.protected_patterns.get(path, "?")
            message = (
                f"`{path}` matches the protected path `{pattern}` in `.github/honk.yml`; "
                "Honk left its changes to this file out."
            )
            notes.append(Annotation(path, 1, "warning", "Protected path", message))
        for path in self.binary:
            message = f"`{path}` is a binary file: no diff can show its content, check it by hand."
            notes.append(Annotation(path, 1, "warning", "Binary file", message))
        for path in self.submodules:
            message = f"`{path}` is a submodule pointer; Honk does not push one."
            notes.append(Annotation(path, 1, "failure", "Submodule", message))
        return notes


def evaluate(
    changes: Sequence[FileChange],
    config: RepoConfig,
    *,
    totals: DiffTotals | None = None,
    uninspected: str = "",
) -> PolicyReport:
    """Apply the repository's limits to a parsed diff. `totals` (from `--shortstat`) replace
    the parsed counts when the diff was cut, and `uninspected` says why it was."""
    globs = compiled(tuple(config.protected_paths))
    protected: dict[str, str] = {}  # a rename lists each side that is protected on its own
    for change in changes:
        for name in filter(None, (change.old_path, change.path)):
            pattern = globs.first_match(name)
            if pattern is not None:
                protected.setdefault(name, pattern)
    files = len(changes)
    # a binary file's "lines" are arbitrary (it is named instead); its bytes are still scanned
    lines = sum(c.added + c.removed for c in changes if not c.binary)
    if totals is not None:
        files, lines = max(files, totals.files), max(lines, totals.added + totals.removed)
    return PolicyReport(
        protected=list(protected),
        files_changed=files,
        lines_changed=lines,
        max_changed_files=config.max_changed_files,
        max_changed_lines=config.max_changed_lines,
        secrets=[hit for change in changes for hit in change.secrets],
        protected_patterns=protected,
        binary=[c.path for c in changes if c.binary and c.status != "deleted"],
        submodules=[c.path for c in changes if c.submodule],
        secrets_found=sum(max(c.secrets_found, len(c.secrets)) for c in changes),
        uninspected=uninspected,
    )


def inspect_diff(
    diff: bytes,
    config: RepoConfig,
    *,
    complete: bool = True,
    totals: DiffTotals | None = None,
    known_secrets: Iterable[str] = (),
    should_stop: Callable[[], bool] | None = None,
) -> PolicyReport:
    """The verdict on the (possibly cut) bytes of a diff: what a worker thread runs.

    `complete=False` means git had more to say than was read: the report then blocks the push
    with one sentence, and counts from `totals`. Raises InspectionStopped when `should_stop`
    says so."""
    text = diff.decode("utf-8", "replace")
    changes = parse_unified_diff(text, should_stop=should_stop)
    uninspected = "" if complete else cut_sentence(len(diff))
    report = evaluate(changes, config, totals=totals, uninspected=uninspected)
    report.server_secret = any(secret in text for secret in known_secrets if secret)
    return report


def cut_sentence(read_bytes: int) -> str:
    """Why a change whose diff is larger than Honk reads is not pushed."""
    size = f"{read_bytes >> 20} MiB" if read_bytes >= 1 << 20 else f"{read_bytes >> 10} KiB"
    return (
        f"The change's diff is larger than the {size} Honk reads, so Honk could not check "
        "all of it for credentials and did not push it."
    )


def timeout_sentence(seconds: float) -> str:
    """Why a change Honk could not finish inspecting is not pushed."""
    return (
        f"Honk could not finish checking the change for credentials within {seconds:.0f} "
        "seconds, so it did not push it."
    )


def _listing(items: list[str]) -> str:
    """`a`, `b` and 3 more: readable on a phone however many there are."""
    shown, rest = items[:MAX_LISTED], len(items) - MAX_LISTED
    if rest > 0:
        return ", ".join(shown) + f" and {rest} more"
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " and " + shown[-1]
