"""Bounded file access for the editor tool: one call holds at most a capped part of any file.

The model is treated as hostile. A 1.5 GB sparse file, a FIFO nobody writes to, a device, or a
directory of a million entries must each cost Honk a few megabytes at most and answer promptly,
with a short error the model can act on. Paths arrive already confined (`resolve_in_workspace` in
tools.py); here each is lstat-ed (a FIFO or device is refused before it is opened: opening one can
block or have effects), opened without following a final symlink and without blocking, and fstat-ed,
so what was checked is what is read.
"""

from __future__ import annotations

import codecs
import errno
import heapq
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

READ_CAP = 256 * 1024  # bytes of one file the editor holds at once
SCAN_CAP = 2 * 1024**3  # bytes view_range may stream past (only counting them) to reach its lines
LISTING_LIMIT = 1_000  # entries a directory view shows
LISTING_SCAN = 20_000  # directory entries a directory view reads, in all
CAP_TEXT = f"{READ_CAP // 1024} KiB"
_CHUNK = 1024 * 1024
_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_utf8 = codecs.getincrementaldecoder("utf-8")


class ToolInputError(Exception):
    """The model asked for something the tool refuses; the message is shown to the model."""


def human_size(size: int) -> str:
    """Decimal units, as `ls -h --si` prints them: 1500000000 is "1.5 GB"."""
    if size < 1000:
        return f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 999.5:
            return f"{value:.3g} {unit}"
    return f"{value:.0f} TB"


# ---- opening ---------------------------------------------------------------------------------


def _check_kind(mode: int, shown: str, *, allow_dir: bool) -> None:
    if stat.S_ISREG(mode) or (allow_dir and stat.S_ISDIR(mode)):
        return
    if stat.S_ISDIR(mode):
        raise ToolInputError(f"{shown} is a directory.")
    kind = (
        "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a symlink"
        if stat.S_ISLNK(mode)
        else "a special file"
    )
    raise ToolInputError(
        f"{shown} is {kind}, not a regular file; the editor only opens files and directories."
    )


def _refusal(exc: OSError, shown: str) -> Exception:
    """The short error for a failed open, or `exc` itself when it is nothing the model caused."""
    if exc.errno == errno.ENOENT:
        return ToolInputError(f"{shown} does not exist.")
    if exc.errno == errno.ELOOP:
        return ToolInputError(f"{shown} became a symlink while it was being opened; refused.")
    if exc.errno == errno.EISDIR:
        return ToolInputError(f"{shown} is a directory.")
    if exc.errno == errno.ENXIO:
        return ToolInputError(f"{shown} is a socket or FIFO, not a regular file; refused.")
    return exc


@contextmanager
def opened(
    path: Path, shown: str, *, write: bool = False, create: bool = False
) -> Iterator[tuple[int, os.stat_result]]:
    """`path` opened (read-write if `write`) with its fstat: a regular file, or a directory if not
    `write`. Anything else is refused without blocking."""
    try:
        _check_kind(os.lstat(path).st_mode, shown, allow_dir=not write)
    except FileNotFoundError:
        if not create:
            raise ToolInputError(f"{shown} does not exist.") from None
    flags = _FLAGS | (os.O_RDWR if write else os.O_RDONLY) | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        raise _refusal(exc, shown) from exc
    try:
        found = os.fstat(fd)
        _check_kind(found.st_mode, shown, allow_dir=not write)
        yield fd, found
    finally:
        os.close(fd)


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lines:
    """Lines of a file from the first asked for, as bytes with their newlines."""

    data: bytes
    total: int | None  # the file's line count, when the read reached its end
    cut: bool  # stopped at the cap before the range's end: `data` ends with whole lines if it can


def read_lines(
    fd: int, first: int, last: int | None, *, cap: int = READ_CAP, scan_cap: int = SCAN_CAP
) -> Lines:
    """Stream lines `first`..`last` (None: to the end), holding at most `cap` bytes of them.

    Lines before `first` are only counted, a chunk at a time, holes skipped, and at most
    `scan_cap` bytes are read to reach them: a terabyte costs a refusal, not a scan. From `first`
    on, reads ask for no more than the cap still allows (+1 byte, to know the range was cut).
    """
    buf = bytearray(_CHUNK)
    out = bytearray()
    line, scanned, ends_line = 1, 0, True
    while True:
        if last is not None and line > last:
            return Lines(bytes(out), None, cut=False)
        if line < first and scanned >= scan_cap:
            raise ToolInputError(
                f"line {first} is not within the first {human_size(scan_cap)} of the file, which "
                f"is as far as the editor reads; use bash (sed -n '{first},+49p' FILE) instead."
            )
        if line < first and _skip_hole(fd):
            ends_line = False  # a hole reads as NUL bytes: the line it is part of goes on
        want = min(_CHUNK, scan_cap - scanned) if line < first else min(_CHUNK, cap - len(out) + 1)
        size = os.readv(fd, [memoryview(buf)[:want]])
        if size == 0:
            return Lines(bytes(out), line - 1 if ends_line else line, cut=False)
        scanned += size
        ends_line = buf[size - 1] == 0x0A
        pos = 0
        while pos < size:
            if line < first:
                newlines = buf.count(b"\n", pos, size)
                if newlines < first - line:
                    line += newlines
                    break
                for _ in range(first - line):
                    pos = buf.find(b"\n", pos, size) + 1
                line = first
            elif last is not None and line > last:
                return Lines(bytes(out), None, cut=False)
            else:  # in the range: up to the end of line `last`, and one byte past the cap
                stop = min(size, pos + cap - len(out) + 1)
                newlines = buf.count(b"\n", pos, stop)
                if last is not None and line + newlines > last:
                    newlines, stop = last - line + 1, pos
                    for _ in range(newlines):
                        stop = buf.find(b"\n", stop, size) + 1
                if len(out) + stop - pos > cap:
                    out += buf[pos : pos + cap - len(out)]
                    whole = out.rfind(b"\n") + 1
                    return Lines(bytes(out[:whole] if whole else out), None, cut=True)
                out += buf[pos:stop]
                line, pos = line + newlines, stop


def _skip_hole(fd: int) -> bool:
    """Move past a hole of a sparse file, if one starts here: NUL bytes, so no newline to count.

    Reading a hole makes the kernel fill the page cache with zeros, seconds per gigabyte.
    """
    here = os.lseek(fd, 0, os.SEEK_CUR)
    try:
        data = os.lseek(fd, here, os.SEEK_DATA)
    except OSError as exc:  # ENXIO: nothing but a hole from here to the end
        if exc.errno != errno.ENXIO:
            return False
        data = os.lseek(fd, 0, os.SEEK_END)
    return data > here


def decode_text(
    data: bytes, shown: str, *, partial: bool = False, strict: bool = False
) -> tuple[str, int]:
    """`data` as text, with how many invalid UTF-8 sequences were replaced; refused if binary.

    A NUL byte means binary. Invalid UTF-8 is tolerated in small amounts when viewing (a Latin-1
    accent in a comment) and not at all when editing (`strict`), where writing U+FFFD back would
    corrupt the file. `partial`: `data` was cut, so a character split at its end is dropped.
    """
    if b"\0" in data:
        raise ToolInputError(
            f"{shown} is binary (it contains NUL bytes), not UTF-8 text; the editor cannot show it."
        )
    try:
        return _utf8("strict").decode(data, final=not partial), 0
    except UnicodeDecodeError:
        if strict:
            raise ToolInputError(
                f"{shown} is not valid UTF-8 text; editing it here would corrupt it, use bash."
            ) from None
    text = _utf8("replace").decode(data, final=not partial)
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    if bad > max(8, len(data) // 200):
        raise ToolInputError(
            f"{shown} is not UTF-8 text ({bad} invalid byte sequences in what was read); it looks "
            "binary, so the editor cannot show it."
        )
    return text, bad


def _read_upto(fd: int, limit: int) -> bytes:
    out = bytearray()
    while len(out) < limit and (chunk := os.read(fd, min(limit - len(out), _CHUNK))):
        out += chunk
    return bytes(out)


def read_for_edit(fd: int, found: os.stat_result, shown: str) -> str:
    """The whole text of a file to edit, refused when over the cap rather than held in memory."""
    data = _read_upto(fd, READ_CAP + 1) if found.st_size <= READ_CAP else b""
    if found.st_size > READ_CAP or len(data) > READ_CAP:
        raise ToolInputError(
            f"{shown} is {human_size(max(found.st_size, len(data)))}, over the {CAP_TEXT} the "
            "editor edits; use bash (sed -i, patch) on it instead."
        )
    return decode_text(data, shown, strict=True)[0]


def overwrite(fd: int, text: str) -> None:
    """Replace the file's content with `text` through the descriptor that was checked."""
    try:
        data = memoryview(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ToolInputError(f"The new text is not valid Unicode ({exc.reason}).") from None
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    while data:
        data = data[os.write(fd, data) :]


# ---- listing ---------------------------------------------------------------------------------


class _Listing:
    """Reads directory entries against one budget, keeping only the smallest names it needs."""

    def __init__(self, scan: int) -> None:
        self.budget = scan
        self.exhausted = False

    def children(self, dir_fd: int, room: int, share: int) -> list[tuple[str, bool, bool]]:
        """The `room` first visible entries by name among at most `share` read."""
        return heapq.nsmallest(room, self._visible(dir_fd, min(share, self.budget)))

    def _visible(self, dir_fd: int, allowed: int) -> Iterator[tuple[str, bool, bool]]:
        with os.scandir(dir_fd) as entries:
            for entry in entries:
                if allowed <= 0:
                    self.exhausted = True
                    return
                allowed -= 1
                self.budget -= 1
                if not entry.name.startswith("."):
                    yield entry.name, entry.is_dir(), entry.is_symlink()


def _printable(name: str) -> str:
    """A name that is not UTF-8 (surrogate escapes) would make the API request invalid."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def list_directory(
    fd: int, prefix: str, *, limit: int = LISTING_LIMIT, scan: int = LISTING_SCAN
) -> list[str]:
    """Up to two levels deep, hidden entries skipped, like the reference editor tool: at most
    `limit` entries shown and `scan` read, so a directory of a million files costs what one of
    `scan` does."""
    listing = _Listing(scan)
    entries: list[str] = []
    for name, is_dir, is_link in listing.children(fd, limit + 1, scan // 2):
        entries.append(f"{_printable(prefix + name)}{'/' if is_dir else ''}")
        if is_dir and not is_link and len(entries) <= limit:
            try:
                child = os.open(name, _FLAGS | os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            except OSError:
                continue  # unreadable or replaced meanwhile: listed, not expanded
            try:
                room = limit + 1 - len(entries)
                grandchildren = listing.children(child, room, listing.budget)
            finally:
                os.close(child)
            entries += [
                f"{prefix}{_printable(f'{name}/{g}')}{'/' if d else ''}"
                for g, d, _ in grandchildren
            ]
        if len(entries) > limit:
            entries = [*entries[:limit], f"[... stopped at {limit} entries ...]"]
            break
    if listing.exhausted:
        entries.append(
            f"[... stopped after reading {scan} directory entries; the names shown are the first "
            "in order among those read. Use bash (ls, find) to see the rest ...]"
        )
    return entries
