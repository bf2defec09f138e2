"""orjson on the webhook path, and the standard library for whatever orjson refuses."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from honk_app import json_codec


@pytest.mark.parametrize(
    "text",
    [
        '{"action": "created", "comment": {"id": 1, "body": "/honk go \\u00e9"}}',
        '{"body": "lone surrogate \\ud800 from a broken client"}',  # orjson refuses it
        '{"a": 1e999}',  # out of range: orjson refuses it
        "[1, 2.5, true, null]",
    ],
)
def test_loads_reads_what_the_standard_library_reads(text: str) -> None:
    assert json_codec.loads(text.encode()) == json.loads(text)


def test_loads_accepts_nan_as_the_standard_library_does() -> None:
    assert math.isnan(json_codec.loads(b'{"a": NaN}')["a"])


@pytest.mark.parametrize("data", [b'{"a": 1', b"", b"not json", b"\xff\xfe{"])
def test_loads_refuses_what_neither_reads(data: bytes) -> None:
    with pytest.raises(ValueError):  # UnicodeDecodeError is a ValueError too
        json_codec.loads(data)


@pytest.mark.parametrize(
    "value",
    [
        {"message": "accepted", "run_id": "honk-1", "command": "run"},
        {"text": "é ✓ 🪿", "nested": [1, None, False]},
    ],
)
def test_dumps_writes_compact_utf8_json(value: Any) -> None:
    written = json_codec.dumps(value)
    assert json.loads(written) == value
    assert written == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "value",
    [
        {"big": 2**70},  # orjson refuses integers over 64 bits
        {"body": "a lone surrogate \ud800 from a delivery"},  # and surrogates
    ],
)
def test_dumps_writes_what_orjson_refuses_with_the_standard_library(value: Any) -> None:
    assert json.loads(json_codec.dumps(value)) == value
