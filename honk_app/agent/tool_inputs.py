"""Pure: what every path and command the model sends must be before the OS is asked about it.

The OS refuses some strings outright, and not politely: a NUL byte makes Python raise ValueError,
a lone surrogate (valid in JSON, not in UTF-8) UnicodeEncodeError, a name over NAME_MAX or a path
over PATH_MAX fails with ENAMETOOLONG, a command over MAX_ARG_STRLEN with E2BIG. Each would end the
whole agent session as if Honk had failed; checked here, each is one tool error the model can act
on, and the session goes on.
"""

from __future__ import annotations

import re
from typing import Any

from honk_app.agent.editor_files import ToolInputError

MAX_PATH_BYTES = 4095  # PATH_MAX, less its terminating NUL
MAX_NAME_BYTES = 255  # NAME_MAX: one component of a path
MAX_COMMAND_BYTES = 128 * 1024 - 1  # MAX_ARG_STRLEN: `bash -c` gets the command as one argument
# C0 and C1 controls and DEL: legal in a Linux file name, but a newline or an escape in a name
# Honk commits, lists in a comment or shows in a log is a trap, never something a task needs.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def shown(text: str, limit: int = 200) -> str:
    """`text` quoted for an error message: controls and surrogates escaped, long text cut."""
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolInputError(
            f"{what} is not valid Unicode: it holds a lone surrogate (\\ud800-\\udfff), which no "
            "UTF-8 text can; write it without one."
        ) from None


def check_path(raw: Any) -> str:
    """`raw` if the editor may hand it to the OS; ToolInputError saying why not otherwise."""
    if not isinstance(raw, str) or not raw.strip():
        raise ToolInputError("path is required.")
    if "\0" in raw:
        raise ToolInputError(f"The path {shown(raw)} contains a NUL byte, which no path can hold.")
    size = len(_utf8(raw, f"The path {shown(raw)}"))
    if _CONTROL.search(raw):
        raise ToolInputError(
            f"The path {shown(raw)} contains a control character (such as a newline or an "
            "escape); the editor does not open such names."
        )
    if size > MAX_PATH_BYTES:
        raise ToolInputError(
            f"The path {shown(raw, 60)} is {size:,} bytes long, over the {MAX_PATH_BYTES:,} "
            "bytes a path may have."
        )
    longest = max(raw.split("/"), key=lambda part: len(part.encode("utf-8")))
    if len(longest.encode("utf-8")) > MAX_NAME_BYTES:
        raise ToolInputError(
            f"The path {shown(raw, 60)} has a name of {len(longest.encode('utf-8')):,} bytes, "
            f"over the {MAX_NAME_BYTES} bytes a file name may have."
        )
    return raw


def check_command(raw: Any) -> str:
    """`raw` if bash can be given it as one argument; ToolInputError saying why not otherwise."""
    if not isinstance(raw, str) or not raw.strip():
        raise ToolInputError("bash needs a command (a non-empty string).")
    if "\0" in raw:
        raise ToolInputError(
            "The command contains a NUL byte, which no program can be given in its arguments; "
            "write it as printf '\\0' instead."
        )
    size = len(_utf8(raw, "The command"))
    if size > MAX_COMMAND_BYTES:
        raise ToolInputError(
            f"The command is {size:,} bytes long, over the {MAX_COMMAND_BYTES:,} bytes bash can "
            "be given; write the script to a file with the editor, then run that file."
        )
    return raw
