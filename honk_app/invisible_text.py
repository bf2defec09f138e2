"""Pure: the characters that render as nothing, or reorder what is shown, but that code still reads.

Shared by the sanitizer (safety/sanitize.py) and the `/honk` grammar, which sits below it in the
layers: both must agree on what a reader of GitHub cannot see.
"""

from __future__ import annotations

import re

# Zero-width characters and marks, word joiners and invisible operators, the byte-order mark,
# bidirectional embeddings, overrides and isolates, the Arabic letter mark, the Mongolian vowel
# separator, the soft hyphen, variation selectors (used to smuggle bytes after a visible
# character) and Unicode tag characters (an invisible copy of ASCII).
INVISIBLE = re.compile(
    "["
    "\u00ad\u061c\u180e"
    "\u200b-\u200f"
    "\u202a-\u202e"
    "\u2060-\u2064"
    "\u2066-\u2069"
    "\ufe00-\ufe0f"
    "\ufeff"
    "\U000e0000-\U000e007f"
    "\U000e0100-\U000e01ef"
    "]"
)


def strip_invisible(text: str) -> str:
    """`text` as a reader sees it: without the characters that show as nothing."""
    return INVISIBLE.sub("", text)
