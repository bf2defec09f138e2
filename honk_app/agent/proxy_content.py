"""Pure: what the proxy allows inside a request's messages, beyond its tools.

Content blocks can make Anthropic's servers reach out or cost far more than their bytes: an
image or document whose `source` is a URL is fetched by the API (a way out of a sandbox that has
no network), a file id points at storage Honk never vetted, and an image of a few hundred bytes is
billed as up to ~1,600 input tokens. So only inline sources pass (base64 data, text, content
blocks), each image reserves its worst case, and PDFs are refused: their page count, which sets
their price, cannot be known without parsing untrusted bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MAX_IMAGES = 100  # the API's own limit per request
INLINE_SOURCES = frozenset({"base64", "text", "content"})
_MAX_DEPTH = 16  # blocks nest in messages, tool results and search results; never this deep
_TOO_DEEP = "Honk's proxy refused the request: its content is nested too deeply to inspect."


def _blocks(value: Any) -> Iterator[dict[str, Any] | None]:
    """Every object in a message list or system prompt, nested ones included; None where the
    nesting is deeper than Honk inspects (the request is then refused, never passed unread)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_DEPTH:
            yield None
            return
        if isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            yield item
            if item.get("type") == "tool_use":  # the model's own arguments: the API reads none
                continue
            stack.extend(
                (child, depth + 1) for child in item.values() if isinstance(child, list | dict)
            )


def content_images(request: dict[str, Any]) -> int | str:
    """How many images the request carries, or the sentence that refuses it."""
    images = 0
    for block in _blocks([request.get("system"), request.get("messages")]):
        if block is None:
            return _TOO_DEEP
        source = block.get("source")
        if isinstance(source, dict) and block.get("type") in ("image", "document"):
            kind = source.get("type")
            if kind not in INLINE_SOURCES:
                return (
                    "Honk's proxy refused the request: only inline images and documents are "
                    f"allowed, not a `{kind}` source the API would fetch."
                )
            if block["type"] == "document" and source.get("media_type") == "application/pdf":
                return (
                    "Honk's proxy refused the request: PDF documents are not forwarded (their "
                    "cost cannot be bounded); extract the text with a command instead."
                )
            if block["type"] == "image":
                images += 1
    if images > MAX_IMAGES:
        return f"Honk's proxy refused the request: it carries more than {MAX_IMAGES} images."
    return images
