"""Pure: the operator's budgets beyond one run, their windows, and what is left of them.

Three budgets, each optional (`HONK_BUDGET_*`): per repository per UTC day, per requester per UTC
day, per installation per UTC calendar month, because that is how people read a bill. A run counts
in the windows of the moment it started: it reserves its cost limit then, and settles to what it
cost when it ends. A run may start only while each budget has a useful amount left, and its cost
limit is lowered to what is left, so a window overshoots by at most one request of the agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Scope = Literal["repository", "person", "installation"]

# Less than this left counts as nothing left: a run with less could not pay for one request of a
# Sonnet-class model at its usual `max_tokens`, so it would only fail.
MIN_RUN_USD = 0.10


@dataclass(frozen=True)
class Limits:
    """What the operator set; None is unlimited."""

    repository_day_usd: float | None = None
    person_day_usd: float | None = None
    installation_month_usd: float | None = None

    @property
    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.repository_day_usd, self.person_day_usd, self.installation_month_usd)
        )


@dataclass(frozen=True)
class Window:
    """One UTC day or calendar month: its key in the ledger and when the next one begins."""

    key: str  # "2025-05-20" or "2025-05"
    resets_at: datetime


def day_window(now: datetime) -> Window:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(start.strftime("%Y-%m-%d"), start + timedelta(days=1))


def month_window(now: datetime) -> Window:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + timedelta(days=32)).replace(day=1)
    return Window(start.strftime("%Y-%m"), following)


@dataclass(frozen=True)
class Subjects:
    """Who and what a run is charged to. Keys are stable (ids where GitHub gives them), so a
    renamed account does not start afresh; names are for sentences."""

    repository_key: str
    repository_name: str
    person_key: str
    person_name: str
    installation_key: str


def subjects(
    full_name: str, repository_id: int, login: str, sender_id: int, installation_id: int
) -> Subjects:
    return Subjects(
        repository_key=f"repo:{repository_id}" if repository_id else f"repo:{full_name.lower()}",
        repository_name=full_name,
        person_key=f"user:{sender_id}" if sender_id else f"user:{login.lower()}",
        person_name=login,
        installation_key=f"installation:{installation_id}",
    )


@dataclass(frozen=True)
class Budget:
    """One configured budget as it applies to one run at one moment."""

    scope: Scope
    subject_key: str
    subject_name: str
    limit_usd: float
    window: Window

    @property
    def what(self) -> str:
        """For sentences: 'this repository today', 'mona today', 'this installation this month'."""
        if self.scope == "repository":
            return "this repository today"
        if self.scope == "person":
            return f"{self.subject_name} today"
        return "this installation this month"


def budgets_for(limits: Limits, who: Subjects, now: datetime) -> list[Budget]:
    """The budgets that apply to a run starting `now`, in the order sentences name them."""
    day, month = day_window(now), month_window(now)
    found: list[Budget] = []
    if limits.repository_day_usd is not None:
        found.append(
            Budget(
                "repository",
                who.repository_key,
                who.repository_name,
                limits.repository_day_usd,
                day,
            )
        )
    if limits.person_day_usd is not None:
        found.append(Budget("person", who.person_key, who.person_name, limits.person_day_usd, day))
    if limits.installation_month_usd is not None:
        found.append(
            Budget(
                "installation",
                who.installation_key,
                who.installation_key,
                limits.installation_month_usd,
                month,
            )
        )
    return found


def remaining(budget: Budget, spent_usd: float) -> float:
    return max(0.0, budget.limit_usd - spent_usd)


@dataclass(frozen=True)
class Decision:
    """What the budgets allow a run: its cost limit, or the budget that has nothing left."""

    cap_usd: float  # 0.0 when refused
    exhausted: Budget | None = None
    lowered_by: Budget | None = None
    left_usd: float = 0.0  # what the deciding budget had left

    @property
    def refused(self) -> bool:
        return self.exhausted is not None


def decide(config_cap_usd: float | None, spent: Sequence[tuple[Budget, float]]) -> Decision:
    """The run's cost limit: the repository's `max_cost_usd`, lowered to the least any budget
    has left. A budget with less than `MIN_RUN_USD` left refuses the run, unless the run's own
    limit is smaller still and fits. `config_cap_usd` None (at intake, before the repository's
    configuration is read) only asks whether anything useful is left."""
    wanted = config_cap_usd if config_cap_usd is not None else MIN_RUN_USD
    cap, lowered_by, left_then = wanted, None, 0.0
    for budget, used in spent:
        left = remaining(budget, used)
        if left < wanted and left < MIN_RUN_USD:
            return Decision(0.0, exhausted=budget, left_usd=left)
        if left < cap:
            cap, lowered_by, left_then = left, budget, left
    if config_cap_usd is None:
        return Decision(MIN_RUN_USD)
    return Decision(cap, lowered_by=lowered_by, left_usd=left_then)


# ---- sentences: composed here, passed through report/text.inline() by the steps ----------------


def _money(usd: float) -> str:
    return f"${usd:,.2f}"


def _reset(window: Window) -> str:
    return f"{window.resets_at:%Y-%m-%d %H:%M} UTC"


def refusal(decision: Decision) -> str:
    """One sentence for a trigger over a budget."""
    budget = decision.exhausted
    assert budget is not None
    return (
        f"Honk did not start this run: the budget for {budget.what} is used up "
        f"({_money(budget.limit_usd - decision.left_usd)} of {_money(budget.limit_usd)}); "
        f"it resets at {_reset(budget.window)}."
    )


def lowered_note(decision: Decision, config_cap_usd: float) -> str | None:
    """One sentence for the report when a budget lowered the run's cost limit."""
    budget = decision.lowered_by
    if budget is None:
        return None
    return (
        f"The budget for {budget.what} had {_money(decision.left_usd)} left, so this run's cost "
        f"limit was lowered from {_money(config_cap_usd)} to {_money(decision.cap_usd)}."
    )


def status_line(budget: Budget, spent_usd: float) -> str:
    """What `/honk status` shows for one budget."""
    return (
        f"Budget for {budget.what}: {_money(remaining(budget, spent_usd))} of "
        f"{_money(budget.limit_usd)} left; it resets at {_reset(budget.window)}."
    )
