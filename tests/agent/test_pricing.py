"""What a run's tokens cost, per model."""

from __future__ import annotations

import pytest

from honk_app.agent.pricing import (
    MOST_EXPENSIVE,
    cost_usd,
    is_known,
    price_for,
    pricing_note,
)
from honk_app.models import Usage

MILLION = 1_000_000


def test_sonnet_prices_each_kind_of_token() -> None:
    assert cost_usd("claude-sonnet-4-5", Usage(input_tokens=MILLION)) == pytest.approx(3.00)
    assert cost_usd("claude-sonnet-4-5", Usage(output_tokens=MILLION)) == pytest.approx(15.00)
    write = Usage(cache_creation_input_tokens=MILLION)
    read = Usage(cache_read_input_tokens=MILLION)
    assert cost_usd("claude-sonnet-4-5", write) == pytest.approx(3.75)
    assert cost_usd("claude-sonnet-4-5", read) == pytest.approx(0.30)


def test_a_mixed_turn_adds_up() -> None:
    usage = Usage(
        input_tokens=2_000,
        output_tokens=500,
        cache_creation_input_tokens=10_000,
        cache_read_input_tokens=40_000,
    )
    expected = (2_000 * 3 + 500 * 15 + 10_000 * 3.75 + 40_000 * 0.30) / MILLION
    assert cost_usd("claude-sonnet-4-5", usage) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("model", "input_price", "output_price"),
    [
        ("claude-opus-4-1", 15.0, 75.0),
        ("claude-opus-4-5", 5.0, 25.0),
        ("claude-opus-4-5-20251101", 5.0, 25.0),
        ("claude-sonnet-4-20250514", 3.0, 15.0),
        ("claude-sonnet-4-5-20250929", 3.0, 15.0),
        ("claude-sonnet-4-6", 3.0, 15.0),
        ("claude-haiku-4-5", 1.0, 5.0),
        ("claude-haiku-4-5-20251001", 1.0, 5.0),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", 3.0, 15.0),
        ("claude-sonnet-4-5@20250929", 3.0, 15.0),
        ("claude-opus-4-6[1m]", 5.0, 25.0),
    ],
)
def test_dated_and_provider_ids_find_their_model(
    model: str, input_price: float, output_price: float
) -> None:
    price = price_for(model)
    assert (price.input, price.output) == (input_price, output_price)
    assert price.cache_write == pytest.approx(input_price * 1.25)
    assert is_known(model) and pricing_note(model) is None


def test_a_dated_id_does_not_borrow_a_shorter_models_price() -> None:
    """`claude-opus-4-5-…` must not fall back to `claude-opus-4` (three times the price)."""
    assert price_for("claude-opus-4-5-20251101") != price_for("claude-opus-4-20250514")


def test_an_unknown_model_costs_the_most_and_says_so() -> None:
    usage = Usage(input_tokens=MILLION, output_tokens=MILLION)
    assert not is_known("claude-next-9")
    assert cost_usd("claude-next-9", usage) == pytest.approx(
        MOST_EXPENSIVE.input + MOST_EXPENSIVE.output
    )
    assert cost_usd("claude-next-9", usage) >= cost_usd("claude-opus-4-1", usage)
    note = pricing_note("claude-next-9")
    assert note is not None and "claude-next-9" in note and "highest known price" in note


def test_prompt_length_bands_price_a_long_request_higher() -> None:
    short = Usage(input_tokens=50_000)
    long = Usage(input_tokens=150_000)
    per_token_short = cost_usd("claude-haiku-5-5", short) / 50_000
    per_token_long = cost_usd("claude-haiku-5-5", long) / 150_000
    assert per_token_long > per_token_short
