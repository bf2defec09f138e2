"""Hypothesis strategies the property tests share: any JSON value, and a payload with one field
anywhere in it replaced by one."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


def with_one_field_replaced(draw: st.DrawFn, payload: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `payload` with one field, at any depth, replaced by any JSON value."""
    payload = json.loads(json.dumps(payload))
    node: Any = payload
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        if isinstance(node[key], dict | list) and node[key] and draw(st.booleans()):
            node = node[key]
            continue
        node[key] = draw(json_values)
        break
    return payload
