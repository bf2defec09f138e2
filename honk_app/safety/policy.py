"""Pure: what a diff may not do before Honk pushes it.

Honk reads the `git diff` of the agent's work, leaves protected paths out (the caller restores
them and diffs again), and refuses to push a change that is too large, adds something that looks
like a credential or changes a submodule pointer. Only added lines are scanned: deleting a leaked
key must never be blocked. Binary files are named, so a reviewer knows what no diff shows.

Feed `parse_unified_diff` the output of `git -c core.quotePath=true diff --text --no-color
--no-ext-diff --no-textconv --ignore-submodules=none --src-prefix=a/ --dst-prefix=b/ ...`: with
`--text`, a `-diff` or `binary` attribute cannot turn added lines into "Binary files differ" and
hide them from the scan; a line holding a NUL byte marks a binary file instead. (The `a/` and `b/`
prefixes are what the parser expects, whatever the repository's git config says.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from honk_app.repo_config import RepoConfig, matches_glob
from honk_app.safety.secret_scan import find_secrets

FileStatus = Literal["added", "modified", "deleted", "renamed"]
AnnotationLevel = Literal["notice", "warning", "failure"]

MAX_LISTED = 10  # paths or secrets named in one finding; the rest are counted

_GITLINK = "160000"  # the mode of a submodule entry
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


@dataclass
class FileChange:
    """One file in a diff. `old_path` is set for renames and copies (a copy counts as added)."""

    path: str
    status: FileStatus = "modified"
    old_path: str | None = None
    added_lines: list[tuple[int, str]] = field(default_factory=list)  # (line in new file, text)
    removed: int = 0
    binary: bool = False  # git said so, or a line holds a NUL byte (what git calls binary)
    submodule: bool = False  # a gitlink: a commit of another repository, not content

    @property
    def added(self) -> int:
        return len(self.added_lines)


@dataclass(frozen=True)
class SecretHit:
    """An added line that looks like it holds a credential. Never carries the value itself."""

    path: str
    line: int
    kind: str
    preview: str  # redacted by secret_scan: first four characters and the length


@dataclass(frozen=True)
class Annotation:
    """A check run annotation, independent of GitHub's field names (report.py maps them)."""

    path: str
    line: int
    level: AnnotationLevel
    title: str
    message: str


def parse_unified_diff(diff: str) -> list[FileChange]:
    """Split `git diff` output into files, tracking the new-file line number of each added line.

    Lines end at "\\n" only: git's own separator. (`str.splitlines` also splits at form feeds,
    U+2028 and the like, which file content may hold: the hunk would end early and the lines
    after it would go unscanned.)"""
    changes: list[FileChange] = []
    lines = iter(diff.split("\n"))
    current: FileChange | None = None
    for line in lines:
        if line.startswith("diff --git "):
            current = FileChange(path=_header_path(line[len("diff --git ") :]))
            changes.append(current)
        elif current is None:
            continue
        elif line.startswith("@@ "):
            _read_hunk(current, line, lines)
        else:
            _read_extended_header(current, line)
    return changes


def _read_extended_header(change: FileChange, line: str) -> None:
    if line.startswith(("new file mode ", "deleted file mode ", "old mode ", "new mode ")):
        change.submodule |= line.rsplit(" ", 1)[-1] == _GITLINK
    elif line.startswith("index ") and line.rsplit(" ", 1)[-1] == _GITLINK:
        change.submodule = True
    if line.startswith("new file mode"):
        change.status = "added"
    elif line.startswith("deleted file mode"):
        change.status = "deleted"
    elif line.startswith(("rename from ", "copy from ")):
        change.old_path = _unquote(line.split(" ", 2)[2])
    elif line.startswith("rename to "):
        change.status = "renamed"
        change.path = _unquote(line[len("rename to ") :])
    elif line.startswith("copy to "):
        change.status = "added"
        change.path = _unquote(line[len("copy to ") :])
    elif line.startswith(("Binary files ", "GIT binary patch")):
        change.binary = True
    elif line.startswith("--- ") and change.status == "deleted":
        change.path = _strip_prefix(_unquote(line[4:].rstrip("\t")), "a/") or change.path
    elif line.startswith("+++ "):
        name = _strip_prefix(_unquote(line[4:].rstrip("\t")), "b/")
        if name is not None:
            change.path = name


def _read_hunk(change: FileChange, header: str, lines: Iterator[str]) -> None:
    """Consume one hunk, counting lines so that content such as `--- x` is never a header."""
    match = _HUNK.match(header)
    if match is None:
        return
    old_left = int(match.group(2) if match.group(2) is not None else 1)
    new_left = int(match.group(4) if match.group(4) is not None else 1)
    new_line = int(match.group(3))
    while old_left > 0 or new_left > 0:
        line = next(lines, None)
        if line is None:
            return
        marker, text = line[:1], line[1:]
        change.binary |= "\x00" in text
        if marker == "+":
            change.added_lines.append((new_line, text))
            new_line += 1
            new_left -= 1
        elif marker == "-":
            change.removed += 1
            old_left -= 1
        elif marker == "\\":  # "\ No newline at end of file"
            continue
        else:  # context; an empty line is context whose leading space was stripped
            new_line += 1
            new_left -= 1
            old_left -= 1


def _header_path(rest: str) -> str:
    """The new path from `a/OLD b/NEW`; exact when both are the same, else a best guess.

    Renames, copies and the `---`/`+++` lines refine it, so the guess only stands for mode-only
    and binary changes, whose two names are always equal.
    """
    if rest.startswith('"'):
        end = _closing_quote(rest)
        new = rest[end + 1 :].strip()
        return _strip_prefix(_unquote(new), "b/") or _unquote(new)
    half = (len(rest) - 1) // 2
    old, new = rest[:half], rest[half + 1 :]
    if old.startswith("a/") and new.startswith("b/") and old[2:] == new[2:]:
        return new[2:]
    if new.startswith('"'):
        return _strip_prefix(_unquote(new), "b/") or new
    cut = rest.rfind(" b/")
    return rest[cut + 3 :] if cut >= 0 else rest


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    return len(text) - 1


def _strip_prefix(name: str, prefix: str) -> str | None:
    """`None` for /dev/null (the missing side of an added or deleted file)."""
    if name == "/dev/null":
        return None
    return name[len(prefix) :] if name.startswith(prefix) else name


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of unusual file names (octal escapes are UTF-8 bytes)."""
    if not (len(name) >= 2 and name.startswith('"') and name.endswith('"')):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out += char.encode()
            i += 1
        elif body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        elif re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out += body[i + 1].encode()
            i += 2
    return out.decode("utf-8", errors="replace")


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
        return self.too_many_files or self.too_many_lines or bool(self.secrets or self.submodules)

    def findings(self, *, include_protected: bool = True) -> list[str]:
        """One sentence per problem, for the tracking comment, the pull request and the check.

        `include_protected=False` leaves out the note on protected paths, which never blocks.
        """
        found: list[str] = []
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
        if len(self.secrets) > MAX_LISTED:
            found.append(f"{len(self.secrets) - MAX_LISTED} more lines look like credentials.")
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


def evaluate(changes: Sequence[FileChange], config: RepoConfig) -> PolicyReport:
    """Apply the repository's limits to a parsed diff."""
    protected: dict[str, str] = {}  # a rename lists each side that is protected on its own
    for change in changes:
        for name in filter(None, (change.old_path, change.path)):
            pattern = _matching_pattern(name, config.protected_paths)
            if pattern is not None:
                protected.setdefault(name, pattern)
    secrets = [
        SecretHit(change.path, line_no, finding.kind, finding.preview)
        for change in changes
        for line_no, text in change.added_lines
        for finding in find_secrets(text)
    ]
    return PolicyReport(
        protected=list(protected),
        files_changed=len(changes),
        # a binary file's "lines" are arbitrary (it is named instead); its bytes are still scanned
        lines_changed=sum(c.added + c.removed for c in changes if not c.binary),
        max_changed_files=config.max_changed_files,
        max_changed_lines=config.max_changed_lines,
        secrets=secrets,
        protected_patterns=protected,
        binary=[c.path for c in changes if c.binary and c.status != "deleted"],
        submodules=[c.path for c in changes if c.submodule],
    )


def _matching_pattern(path: str, patterns: Sequence[str]) -> str | None:
    return next((pattern for pattern in patterns if matches_glob(path, pattern)), None)


def _listing(items: list[str]) -> str:
    """`a`, `b` and 3 more: readable on a phone however many there are."""
    shown, rest = items[:MAX_LISTED], len(items) - MAX_LISTED
    if rest > 0:
        return ", ".join(shown) + f" and {rest} more"
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " and " + shown[-1]
