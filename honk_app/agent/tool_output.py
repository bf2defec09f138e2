"""What the tools show the model, within a cap: cut in the middle, lines numbered like `cat -n`.

A result is cut before it is held: rendering the whole of a large output only to cut it would cost
Honk memory in proportion to what the model asked for, so the rendering itself is bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

DEFAULT_RESULT_CAP = 30_000


def _cut_note(characters: int, lines: int) -> str:
    return (
        f"\n\n[... {characters} characters ({lines} lines) cut from the middle of this "
        "output ...]\n\n"
    )


def cut_middle(text: str, limit: int = DEFAULT_RESULT_CAP) -> str:
    """Keep the head and tail of `text` within `limit` characters, saying what was cut."""
    if len(text) <= limit:
        return text
    budget = max(limit - 120, 2)
    head_end, tail_start = budget // 2, len(text) - (budget - budget // 2)
    note = _cut_note(tail_start - head_end, text.count("\n", head_end, tail_start))
    return text[:head_end] + note + text[tail_start:]


def cut_middle_stream(pieces: Iterable[str], limit: int = DEFAULT_RESULT_CAP) -> str:
    """`cut_middle("".join(pieces), limit)`, holding about `limit` characters, never the whole.

    A view of many short lines would otherwise build a string several times the file's size only
    to cut most of it away.
    """
    budget = max(limit - 120, 2)
    head_room, tail_room = budget // 2, budget - budget // 2
    keep = max(limit - head_room, tail_room)  # the tail, or the rest if all fits in `limit`
    head: list[str] = []
    tail: deque[str] = deque()
    head_len = tail_len = total = dropped_lines = 0
    for piece in pieces:
        total += len(piece)
        if head_len < head_room:
            part = piece[: head_room - head_len]
            head.append(part)
            head_len += len(part)
            piece = piece[len(part) :]
        if piece:
            tail.append(piece)
            tail_len += len(piece)
            while len(tail) > 1 and tail_len - len(tail[0]) >= keep:
                gone = tail.popleft()
                tail_len -= len(gone)
                dropped_lines += gone.count("\n")
    rest = "".join(tail)
    if total <= limit:
        return "".join(head) + rest
    cut_at = len(rest) - tail_room
    note = _cut_note(total - head_room - tail_room, dropped_lines + rest.count("\n", 0, cut_at))
    return "".join(head) + note + rest[cut_at:]


def _numbered(content: str, first_line: int) -> Iterator[str]:
    """`cat -n` pieces, joined by newlines (none after the last), without splitting `content`."""
    end = len(content) - content.endswith("\n")
    pos, number = 0, first_line
    while content:
        newline = content.find("\n", pos, end)
        if newline == -1:
            yield f"{number:6}\t{content[pos:end]}"
            return
        yield f"{number:6}\t{content[pos:newline]}\n"
        pos, number = newline + 1, number + 1


def _numbered_backwards(content: str, last_line: int) -> Iterator[str]:
    """The pieces of `_numbered`, last first."""
    stop, number, newline_after = len(content) - content.endswith("\n"), last_line, ""
    while content:
        newline = content.rfind("\n", 0, stop)
        yield f"{number:6}\t{content[newline + 1 : stop]}{newline_after}"
        if newline == -1:
            return
        stop, number, newline_after = newline, number - 1, "\n"


def _take(pieces: Iterator[str], room: int) -> list[str]:
    taken, size = [], 0
    for piece in pieces:
        if size >= room:
            break
        taken.append(piece)
        size += len(piece)
    return taken


def _number_widths(first_line: int, count: int) -> int:
    """Characters the numbers of `count` lines from `first_line` take (6, or more from 10**6)."""
    total, bound, end = 6 * count, 10**6, first_line + count
    while bound < end:
        total += end - max(bound, first_line)
        bound *= 10
    return total


def number_lines(content: str, first_line: int = 1, limit: int | None = None) -> str:
    """`cat -n` style, which is what the editor tool's `view` shows the model.

    With `limit`, the same as `cut_middle(number_lines(content, first_line), limit)`, but only the
    head and tail that are kept are rendered: 256 KiB of empty lines would otherwise make 2 MB of
    numbered lines, and a quarter-million strings, only to cut them away.
    """
    lines = content.count("\n", 0, len(content) - content.endswith("\n")) + 1 if content else 0
    total = _number_widths(first_line, lines) + lines + len(content) - content.endswith("\n")
    if limit is None or total <= limit:
        return "".join(_numbered(content, first_line))
    budget = max(limit - 120, 2)
    head_room, tail_room = budget // 2, budget - budget // 2
    head = "".join(_take(_numbered(content, first_line), head_room))[:head_room]
    backwards = _take(_numbered_backwards(content, first_line + lines - 1), tail_room)
    tail = "".join(reversed(backwards))[-tail_room:]
    removed_lines = lines - 1 - head.count("\n") - tail.count("\n")
    return head + _cut_note(total - head_room - tail_room, removed_lines) + tail
