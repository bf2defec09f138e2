"""A run's ledger on plain values: what a request reserves, when it is admitted, waits or is
refused, how it is settled, and the guarantee that spend passes the budget by at most one
request's reservation whatever the agent does."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from honk_app.agent.ledger import (
    MAX_IN_FLIGHT,
    WEB_SEARCH_RESULT_TOKENS,
    Admitted,
    Ledger,
    Refused,
    RequestCost,
    Wait,
    input_estimate,
    reservation_usd,
)
from honk_app.agent.pricing import MOST_EXPENSIVE, WEB_SEARCH_USD
from honk_app.models import Usage

SONNET = "claude-sonnet-4-5"
MILLION = 1_000_000


@pytest.mark.parametrize(
    ("body_bytes", "tokens"), [(0, 0), (1, 1), (3, 1), (4, 2), (300_000, 100_000)]
)
def test_the_input_estimate_is_a_token_for_every_three_bytes(body_bytes: int, tokens: int) -> None:
    assert input_estimate(body_bytes) == tokens


@pytest.mark.parametrize(
    ("request_cost", "expected"),
    [
        # Claude Code's usual request: 40 KB of prompt, 32,000 output tokens
        (RequestCost(SONNET, 32_000, 40_200), (13_400 * 3 + 32_000 * 15) / MILLION),
        # a long run's 500 KB context still leaves most of a $2 budget usable
        (RequestCost(SONNET, 32_000, 1_500_000), (500_000 * 3 + 32_000 * 15) / MILLION),
        # a model Honk has no price for is priced as the most expensive one it knows
        (
            RequestCost("claude-unknown-9", 1_000, 3_000),
            (1_000 * MOST_EXPENSIVE.input + 1_000 * MOST_EXPENSIVE.output) / MILLION,
        ),
        # server tools: the prompt is read once per use and once more, plus results and fees
        (
            RequestCost(SONNET, 1_000, 3_000, web_searches=2, web_fetches=1, fetch_tokens=5_000),
            ((1_000 * 4 + 2 * WEB_SEARCH_RESULT_TOKENS + 5_000) * 3 + 1_000 * 15) / MILLION
            + 2 * WEB_SEARCH_USD,
        ),
    ],
)
def test_a_reservation_is_the_worst_case_at_the_models_price(
    request_cost: RequestCost, expected: float
) -> None:
    assert reservation_usd(request_cost) == pytest.approx(expected)


def test_a_reservation_covers_what_a_request_can_cost_at_three_bytes_a_token() -> None:
    """The realistic worst: a 30 KB prompt of 10,000 tokens, all written to the cache, and every
    output token; the estimate prices input at the full price and cache writes cost 1.25x, so the
    input side may run up to a quarter over, and the output side covers that."""
    request = RequestCost(SONNET, 8_000, 30_000)
    worst = (10_000 * 3.75 + 8_000 * 15) / MILLION
    assert worst <= reservation_usd(request) * 1.5


# ---- admission -------------------------------------------------------------------------------


def test_a_request_that_fits_is_admitted_and_holds_its_reservation_until_settled() -> None:
    ledger = Ledger(1.0)
    admitted = ledger.admit(0.4)
    assert isinstance(admitted, Admitted)
    assert ledger.left_usd == pytest.approx(0.6) and ledger.snapshot().reserved_usd == 0.4
    ledger.settle(admitted.ticket, 0.1, Usage(input_tokens=10, output_tokens=5))
    meter = ledger.snapshot()
    assert meter.spent_usd == pytest.approx(0.1) and meter.reserved_usd == 0
    assert meter.usage == Usage(input_tokens=10, output_tokens=5) and meter.requests == 1
    assert not meter.exhausted


@pytest.mark.parametrize(
    ("open_reservations", "spent", "asked", "expected"),
    [
        ([], 0.0, 1.0, Admitted),  # exactly the budget fits
        ([], 0.0, 1.01, Refused),  # more than the budget can ever hold
        ([], 0.7, 0.31, Refused),  # more than is left once settled spend is counted
        ([0.5], 0.0, 0.6, Wait),  # fits once the open request settles (it may cost less)
        ([0.5], 0.4, 0.7, Refused),  # would not fit even with nothing open
        ([0.1] * MAX_IN_FLIGHT, 0.0, 0.1, Wait),  # room, but two are in flight already
        ([0.1], 0.0, 0.1, Admitted),  # a second in flight is fine
    ],
)
def test_a_request_is_admitted_made_to_wait_or_refused(
    open_reservations: list[float], spent: float, asked: float, expected: type
) -> None:
    ledger = Ledger(1.0)
    if spent:
        first = ledger.admit(spent)
        assert isinstance(first, Admitted)
        ledger.settle(first.ticket, spent, Usage())
    for reservation in open_reservations:
        assert isinstance(ledger.admit(reservation), Admitted)
    decision = ledger.admit(asked)
    assert isinstance(decision, expected)
    assert ledger.snapshot().refused == (1 if expected is Refused else 0)


def test_a_refusal_is_one_sentence_with_the_figures() -> None:
    ledger = Ledger(2.0)
    admitted = ledger.admit(1.5)
    assert isinstance(admitted, Admitted)
    ledger.settle(admitted.ticket, 1.69, Usage())
    refused = ledger.admit(0.52)
    assert isinstance(refused, Refused)
    assert refused.message == (
        "Honk's budget of $2.00 for this run cannot cover this request, which may cost up to "
        "$0.52 while $0.31 is left, so the run must stop here."
    )
    assert ledger.snapshot().exhausted  # nothing more should be attempted


@pytest.mark.parametrize(
    ("how", "spent"),
    [
        ("settle", 0.05),  # the usage arrived: the real cost
        ("charge", 0.4),  # it never did (a dropped stream): the reservation
        ("charge_seen", 0.45),  # ... or what was seen, if that is more
        ("release", 0.0),  # the API refused it before any work
        ("charge_open", 0.4),  # the run ended with it in flight
    ],
)
def test_each_way_a_request_ends_frees_its_reservation_once(how: str, spent: float) -> None:
    ledger = Ledger(1.0)
    admitted = ledger.admit(0.4)
    assert isinstance(admitted, Admitted)
    for _ in range(2):  # a second call changes nothing
        if how == "settle":
            ledger.settle(admitted.ticket, 0.05, Usage(output_tokens=3))
        elif how == "charge":
            ledger.charge(admitted.ticket)
        elif how == "charge_seen":
            ledger.charge(admitted.ticket, seen_usd=0.45)
        elif how == "release":
            ledger.release(admitted.ticket)
        else:
            ledger.charge_open()
    meter = ledger.snapshot()
    assert meter.spent_usd == pytest.approx(spent) and meter.reserved_usd == 0
    assert ledger.in_flight == 0 and meter.requests == (0 if how == "release" else 1)


def test_server_tool_fees_and_searches_are_kept() -> None:
    ledger = Ledger(1.0)
    admitted = ledger.admit(0.2)
    assert isinstance(admitted, Admitted)
    ledger.settle(admitted.ticket, 0.03, Usage(), web_searches=3)
    assert ledger.snapshot().web_searches == 3


# ---- the guarantee ---------------------------------------------------------------------------

# An agent's requests, in any order: each has a reservation, a cost (up to 1.5 times it, the
# documented worst for the input estimate, or anything less), and how it ends.
_requests = st.lists(
    st.tuples(
        st.floats(min_value=0.001, max_value=1.0),
        st.floats(min_value=0.0, max_value=1.5),
        st.sampled_from(["settle", "charge", "release"]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    requests=_requests,
    budget=st.floats(min_value=0.01, max_value=5.0),
    finish_order=st.randoms(use_true_random=False),
)
def test_spend_passes_the_budget_by_at_most_one_reservation_whatever_the_agent_does(
    requests: list[tuple[float, float, str]], budget: float, finish_order: random.Random
) -> None:
    ledger = Ledger(budget)
    open_: list[tuple[Admitted, float, str]] = []
    largest = 0.0
    pending = list(requests)
    while pending or open_:
        if pending and (not open_ or finish_order.random() < 0.6):
            reservation, factor, how = pending[0]
            decision = ledger.admit(reservation)
            if isinstance(decision, Admitted):
                pending.pop(0)
                largest = max(largest, reservation)
                open_.append((decision, reservation * factor, how))
                continue
            if isinstance(decision, Refused):
                pending.pop(0)
                continue
            assert open_, "a request waits only while another is open"
        admitted, cost, how = open_.pop(finish_order.randrange(len(open_)))
        if how == "settle":
            ledger.settle(admitted.ticket, cost, Usage())
        elif how == "charge":
            ledger.charge(admitted.ticket)
        else:
            ledger.release(admitted.ticket)
        assert ledger.in_flight <= MAX_IN_FLIGHT
    assert ledger.spent_usd <= budget + largest + 1e-9
