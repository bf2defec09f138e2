"""Pure: `git diff` output → one `FileChange` per file, holding counts, not lines.

Feed `parse_unified_diff` the output of `git -c core.quotePath=true diff --text --no-color
--no-ext-diff --no-textconv --ignore-submodules=none --src-prefix=a/ --dst-prefix=b/ ...`: with
`--text`, a `-diff` or `binary` attribute cannot turn added lines into "Binary files differ" and
hide them from the scan; a line holding a NUL byte marks a binary file instead. (The `a/` and `b/`
prefixes are what the parser expects, whatever the repository's git config says.)

A diff is as large as the agent makes it, so the parser keeps no line: it counts them and scans
the added ones for credentials as it goes, in blocks of about 64 KB (one regex pass per block,
however short the lines), keeping at most `MAX_SECRET_HITS` hits and a count of the rest. Lines
are read one at a time from the text, never split into a list. `should_stop` is polled every few
thousand lines so a caller running this in a thread can end it at its deadline.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from honk_app.safety.secret_scan import find_secrets

FileStatus = Literal["added", "modified", "deleted", "renamed"]

MAX_SECRET_HITS = 100  # kept per diff with their place; the rest are only counted
STOP_POLL_LINES = 4096  # lines between two calls of `should_stop`
_BLOCK_CHARS = 1 << 16  # added text scanned in one pass
_BLOCK_LINES = 4096

_GITLINK = "160000"  # the mode of a submodule entry
_HUNK = re.compile(r"^@@ -(\d{1,18})(?:,(\d{1,18}))? \+(\d{1,18})(?:,(\d{1,18}))? @@")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


class InspectionStopped(Exception):
    """`should_stop` said so: the caller's deadline passed before the diff was read."""


@dataclass(frozen=True)
class SecretHit:
    """An added line that looks like it holds a credential. Never carries the value itself."""

    path: str
    line: int
    kind: str
    preview: str  # redacted by secret_scan: first four characters and the length


@dataclass
class FileChange:
    """One file in a diff. `old_path` is set for renames and copies (a copy counts as added)."""

    path: str
    status: FileStatus = "modified"
    old_path: str | None = None
    added: int = 0
    removed: int = 0
    binary: bool = False  # git said so, or a line holds a NUL byte (what git calls binary)
    submodule: bool = False  # a gitlink: a commit of another repository, not content
    secrets: list[SecretHit] = field(default_factory=list)  # kept hits (MAX_SECRET_HITS a diff)
    secrets_found: int = 0  # every hit in this file, kept or not


class _Scanner:
    """Added lines waiting for their secret scan, as one block with their line numbers."""

    def __init__(self) -> None:
        self.kept = 0
        self._change: FileChange | None = None
        self._lines: list[str] = []
        self._numbers = array("q")
        self._chars = 0

    def add(self, change: FileChange, line_no: int, text: str) -> None:
        if change is not self._change:
            self.flush()
            self._change = change
        self._lines.append(text)
        self._numbers.append(line_no)
        self._chars += len(text) + 1
        if self._chars >= _BLOCK_CHARS or len(self._lines) >= _BLOCK_LINES:
            self.flush()

    def flush(self) -> None:
        change = self._change
        if change is None or not self._lines:
            return
        block = "\n".join(self._lines)
        index, position = 0, 0
        for finding in find_secrets(block):
            change.secrets_found += 1
            if self.kept >= MAX_SECRET_HITS:
                continue
            index += block.count("\n", position, finding.start)
            position = finding.start
            hit = SecretHit(change.path, self._numbers[index], finding.kind, finding.preview)
            change.secrets.append(hit)
            self.kept += 1
        self._lines.clear()
        self._numbers = array("q")
        self._chars = 0


def _lines(text: str, should_stop: Callable[[], bool] | None) -> Iterator[str]:
    """The lines of `text`, split at "\\n" only, one at a time."""
    start, count = 0, 0
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        yield text[start:end]
        start = end + 1
        count += 1
        if should_stop is not None and count % STOP_POLL_LINES == 0 and should_stop():
            raise InspectionStopped


def parse_unified_diff(
    diff: str, *, should_stop: Callable[[], bool] | None = None
) -> list[FileChange]:
    """Split `git diff` output into files, counting lines and scanning the added ones.

    Lines end at "\\n" only: git's own separator. (`str.splitlines` also splits at form feeds,
    U+2028 and the like, which file content may hold: the hunk would end early and the lines
    after it would go unscanned.)"""
    changes: list[FileChange] = []
    scanner = _Scanner()
    lines = _lines(diff, should_stop)
    current: FileChange | None = None
    for line in lines:
        if line.startswith("diff --git "):
            current = FileChange(path=_header_path(line[len("diff --git ") :]))
            changes.append(current)
        elif current is None:
            continue
        elif line.startswith("@@ "):
            _read_hunk(current, line, lines, scanner)
        else:
            _read_extended_header(current, line)
    scanner.flush()
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


def _read_hunk(change: FileChange, header: str, lines: Iterator[str], scanner: _Scanner) -> None:
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
        marker = line[:1]
        change.binary |= "\x00" in line
        if marker == "+":
            change.added += 1
            scanner.add(change, new_line, line[1:])
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
