"""Pure: a run's money, reserved before each model request and settled after, for both agents.

Checking the spend before a request and charging it after lets parallel requests all pass the
check (40 of them spent $96 of a $2 budget). So a request first reserves its worst case against what
is left (budget - settled spend - open reservations), and its real cost replaces the reservation
once the response reports its usage. A request that cannot fit even when nothing else is open is
refused with one sentence the agent sees; one that would fit once an open request settles waits, as
does a third request while `MAX_IN_FLIGHT` are open. A request whose usage never arrives (a dropped
stream, an upstream failure mid-way) is charged its reservation.

The worst case of a request (`reservation_usd`) is `max_tokens` of output (the API never writes
more), the fees and result tokens of every server-side tool use it may make (the proxy enforces
`max_uses`), and an input estimate: one token per `BYTES_PER_TOKEN` (3) bytes of the request body,
at the model's full input price. Why that estimate: Claude's tokenizer averages about 3.5 bytes of
English or code per token and JSON escaping adds bytes, so a third of the body is more tokens than
the prompt holds; and in a real run most of the prompt is read from the cache at a tenth of the
input price, so the input part usually reserves several times what is spent. The strict bound (one
token per byte, written to the cache at 1.25x the price) would reserve about $1.90 for a 500 KB
Sonnet context and leave a $2 budget unusable after a few turns; this reserves $0.50 for it.

The guarantee, whatever the agent sends and however many requests at once: a request is admitted
only if settled + open + its own reservation fit in the budget, so spend passes the budget only by
what the (at most two) requests in flight at the last admission cost beyond their reservations.
Output and server tools cannot exceed theirs; the input part can, by at most half a reservation,
only for a prompt denser than 2.5 bytes per token written to the cache in full (1.25 / 2.5 = 1.5
times the estimate). So spend never exceeds the budget by more than one request's reservation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from honk_app.agent.pricing import fees_usd, price_for
from honk_app.models import Usage

BYTES_PER_TOKEN = 3
MAX_IN_FLIGHT = 2
# What one server-side web search may add to the prompt (its results), for the reservation only.
WEB_SEARCH_RESULT_TOKENS = 10_000
# A 1.15-megapixel image (the API scales larger ones down to it) costs about 1,600 tokens,
# whatever its size in bytes.
IMAGE_TOKENS = 1_600


@dataclass(frozen=True)
class RequestCost:
    """What bounds the cost of one request, read from it before it is sent."""

    model: str
    max_tokens: int
    body_bytes: int
    web_searches: int = 0  # the most server-side web searches it may make (max_uses)
    web_fetches: int = 0  # the most server-side web fetches it may make (max_uses)
    fetch_tokens: int = 0  # the most tokens one fetch may add (max_content_tokens)
    images: int = 0  # image blocks, each billed by its pixels, not its bytes


def input_estimate(body_bytes: int) -> int:
    """The tokens a request body of this size is assumed to hold at most (see the docstring)."""
    return math.ceil(max(0, body_bytes) / BYTES_PER_TOKEN)


def reservation_usd(request: RequestCost) -> float:
    """The worst case of one request. With server tools the model samples once per use and once
    more, each time reading the whole prompt again, so the prompt counts that many times."""
    prompt = input_estimate(request.body_bytes) + request.images * IMAGE_TOKENS
    samplings = 1 + request.web_searches + request.web_fetches
    results = (
        request.web_searches * WEB_SEARCH_RESULT_TOKENS + request.web_fetches * request.fetch_tokens
    )
    price = price_for(request.model, prompt + results)
    tokens_usd = (prompt * samplings + results) * price.input + request.max_tokens * price.output
    return tokens_usd / 1_000_000 + fees_usd(request.web_searches)


def refusal_message(budget_usd: float, left_usd: float, reservation: float) -> str:
    """What the agent reads when a request does not fit (one sentence, no secret)."""
    return (
        f"Honk's budget of ${budget_usd:.2f} for this run cannot cover this request, which may "
        f"cost up to ${reservation:.2f} while ${max(0.0, left_usd):.2f} is left, so the run must "
        "stop here."
    )


@dataclass
class Meter:
    """A run's spend as Honk counted it: the real measure, whatever the agent reports."""

    budget_usd: float
    spent_usd: float = 0.0  # settled, including reservations charged for lost responses
    usage: Usage = field(default_factory=Usage)
    requests: int = 0  # metered requests settled or charged
    refused: int = 0  # requests refused because they did not fit in the budget
    reserved_usd: float = 0.0  # held by requests still in flight
    web_searches: int = 0

    @property
    def exhausted(self) -> bool:
        """Nothing more should be attempted: the budget is spent, or a request did not fit."""
        return self.spent_usd >= self.budget_usd or self.refused > 0

    def snapshot(self) -> Meter:
        return replace(self, usage=replace(self.usage))


@dataclass(frozen=True)
class Admitted:
    ticket: int
    reservation: float


@dataclass(frozen=True)
class Wait:
    """Try again once an open request settles."""


@dataclass(frozen=True)
class Refused:
    message: str


Admission = Admitted | Wait | Refused


class Ledger:
    """One run's budget. Not thread-safe: callers serialise access (the proxy holds a lock)."""

    def __init__(self, budget_usd: float, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.meter = Meter(budget_usd=budget_usd)
        self.max_in_flight = max(1, max_in_flight)
        self._open: dict[int, float] = {}
        self._next = 0

    @property
    def budget_usd(self) -> float:
        return self.meter.budget_usd

    @property
    def spent_usd(self) -> float:
        return self.meter.spent_usd

    @property
    def in_flight(self) -> int:
        return len(self._open)

    @property
    def left_usd(self) -> float:
        return self.meter.budget_usd - self.meter.spent_usd - sum(self._open.values())

    def admit(self, reservation: float) -> Admission:
        """Reserve `reservation` if it fits now; Wait if it could once open requests settle."""
        room = self.meter.budget_usd - self.meter.spent_usd
        if reservation > room:  # not even with nothing else open
            self.meter.refused += 1
            return Refused(refusal_message(self.meter.budget_usd, self.left_usd, reservation))
        if len(self._open) >= self.max_in_flight or reservation > self.left_usd:
            return Wait()
        self._next += 1
        self._open[self._next] = reservation
        self._sync()
        return Admitted(self._next, reservation)

    def settle(self, ticket: int, cost_usd: float, usage: Usage, *, web_searches: int = 0) -> None:
        """The response reported its usage: its real cost replaces the reservation."""
        if self._open.pop(ticket, None) is None:
            return
        self.meter.spent_usd += max(0.0, cost_usd)
        self.meter.usage.add(usage)
        self.meter.web_searches += max(0, web_searches)
        self.meter.requests += 1
        self._sync()

    def charge(self, ticket: int, *, seen_usd: float = 0.0) -> None:
        """The usage never arrived (a dropped stream): charge the reservation, or what was seen
        if that is more."""
        reservation = self._open.pop(ticket, None)
        if reservation is None:
            return
        self.meter.spent_usd += max(reservation, seen_usd)
        self.meter.requests += 1
        self._sync()

    def charge_open(self) -> None:
        """The run is over: whatever is still in flight is charged its reservation."""
        for ticket in list(self._open):
            self.charge(ticket)

    def release(self, ticket: int) -> None:
        """The API refused the request before any work (an error status): nothing to pay."""
        self._open.pop(ticket, None)
        self._sync()

    def snapshot(self) -> Meter:
        return self.meter.snapshot()

    def _sync(self) -> None:
        self.meter.reserved_usd = sum(self._open.values())
