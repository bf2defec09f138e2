"""Pure: what a turn costs, so a run can stop before it overspends.

Prices are USD per million tokens, from Anthropic's published price list. A 5-minute cache write
costs 1.25x the input price; a cache read costs a fraction of it (0.1x for most models). A model
this table does not know is priced as the most expensive one it knows, so a budget errs on the
side of stopping early, and `pricing_note` says so. Server-side tools add a fee per use on top of
their tokens (web search: $10 per 1,000 searches; web fetch: tokens only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from honk_app.models import Usage


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float  # 5-minute cache writes
    cache_read: float


def _standard(input_price: float, output_price: float, read_factor: float = 0.1) -> Price:
    return Price(input_price, output_price, input_price * 1.25, input_price * read_factor)


_OPUS_4 = _standard(15.0, 75.0)
_OPUS_4_5 = _standard(5.0, 25.0)
_SONNET_4 = _standard(3.0, 15.0)
_HAIKU_4_5 = _standard(1.0, 5.0)

PRICES: dict[str, Price] = {
    "claude-opus-4-0": _OPUS_4,
    "claude-opus-4": _OPUS_4,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4-5": _OPUS_4_5,
    "claude-opus-4-6": _OPUS_4_5,
    "claude-opus-4-7": _OPUS_4_5,
    "claude-opus-4-8": _OPUS_4_5,
    "claude-opus-5": _OPUS_4_5,
    "claude-opus-5-5": _standard(4.0, 20.0, read_factor=0.05),
    "claude-sonnet-4-0": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-5": _standard(2.0, 10.0),
    "claude-sonnet-5-5": _standard(2.0, 10.0, read_factor=0.05),
    "claude-haiku-4-5": _HAIKU_4_5,
}

# Haiku 5.5 is priced by prompt length: this band applies to a request over 100k prompt tokens.
_BANDED: dict[str, tuple[int, Price, Price]] = {
    "claude-haiku-5-5": (100_000, _standard(0.10, 0.50), _standard(0.50, 2.50)),
}

WEB_SEARCH_USD = 10.0 / 1_000  # per search, whatever the model

MOST_EXPENSIVE = max(PRICES.values(), key=lambda p: (p.output, p.input))

# provider prefix (Bedrock `us.anthropic.`), the model, then an optional date (`-20250929` or
# `@20250929`), Bedrock version (`-v1:0`) and long-context marker (`[1m]`)
_MODEL_ID = re.compile(
    r"^(?:[a-z0-9-]+\.)*?(?:anthropic\.)?(?P<name>claude-[a-z]+(?:-\d+)+?)"
    r"(?:[-@]\d{8})?(?:-v\d+(?::\d+)?)?(?:\[1m\])?$"
)


def _canonical(model: str) -> str | None:
    lowered = model.strip().lower()
    if lowered in PRICES or lowered in _BANDED:
        return lowered
    match = _MODEL_ID.match(lowered)
    if match is None:
        return None
    name = match.group("name")
    return name if name in PRICES or name in _BANDED else None


def is_known(model: str) -> bool:
    return _canonical(model) is not None


def price_for(model: str, prompt_tokens: int = 0) -> Price:
    """The price of one request; `prompt_tokens` picks the band for prompt-length pricing."""
    name = _canonical(model)
    if name is None:
        return MOST_EXPENSIVE
    if name in _BANDED:
        threshold, low, high = _BANDED[name]
        return high if prompt_tokens > threshold else low
    return PRICES[name]


def pricing_note(model: str) -> str | None:
    """A sentence for the run report when the cost is an estimate from a fallback price."""
    if is_known(model):
        return None
    return (
        f"Honk has no price for the model {model!r}; costs are estimated at the highest known "
        f"price (${MOST_EXPENSIVE.input:g} input / ${MOST_EXPENSIVE.output:g} output per million "
        "tokens)."
    )


def cost_usd(model: str, usage: Usage) -> float:
    """Cost of `usage`. Pass one request's usage when the model has prompt-length bands."""
    price = price_for(model, usage.total_input)
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_creation_input_tokens * price.cache_write
        + usage.cache_read_input_tokens * price.cache_read
    ) / 1_000_000


def fees_usd(web_searches: int) -> float:
    """The per-use fees of server-side tools, which no token count includes."""
    return max(0, web_searches) * WEB_SEARCH_USD
