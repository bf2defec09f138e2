"""The operator's budgets, pure: windows, what is left, the run's cost limit and the sentences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from honk_app.runs import budgets
from honk_app.runs.budgets import MIN_RUN_USD, Budget, Limits, day_window, month_window

NOW = datetime(2025, 5, 20, 9, 30, tzinfo=UTC)
WHO = budgets.subjects("octo-org/hello-world", 700100200, "mona", 5550001, 31337)


@pytest.mark.parametrize(
    ("now", "day", "day_resets", "month", "month_resets"),
    [
        (NOW, "2025-05-20", "2025-05-21 00:00", "2025-05", "2025-06-01 00:00"),
        (
            datetime(2025, 5, 20, 23, 59, 59, tzinfo=UTC),
            "2025-05-20",
            "2025-05-21 00:00",
            "2025-05",
            "2025-06-01 00:00",
        ),
        (
            datetime(2025, 12, 31, 12, 0, tzinfo=UTC),
            "2025-12-31",
            "2026-01-01 00:00",
            "2025-12",
            "2026-01-01 00:00",
        ),
        (
            datetime(2024, 2, 29, 1, 0, tzinfo=UTC),
            "2024-02-29",
            "2024-03-01 00:00",
            "2024-02",
            "2024-03-01 00:00",
        ),
        (  # 01:30 in Paris on June 1st is still May 31st in UTC
            datetime(2025, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            "2025-05-31",
            "2025-06-01 00:00",
            "2025-05",
            "2025-06-01 00:00",
        ),
    ],
    ids=["morning", "last-second", "new-year", "leap-day", "utc-not-local"],
)
def test_windows_are_utc_days_and_calendar_months(
    now: datetime, day: str, day_resets: str, month: str, month_resets: str
) -> None:
    assert day_window(now).key == day
    assert f"{day_window(now).resets_at:%Y-%m-%d %H:%M}" == day_resets
    assert month_window(now).key == month
    assert f"{month_window(now).resets_at:%Y-%m-%d %H:%M}" == month_resets
    assert day_window(now).resets_at.tzinfo is UTC


def test_only_configured_budgets_apply_with_stable_keys() -> None:
    assert budgets.budgets_for(Limits(), WHO, NOW) == []
    assert not Limits().any
    found = budgets.budgets_for(Limits(1.0, 2.0, 3.0), WHO, NOW)
    assert [(b.scope, b.subject_key, b.limit_usd, b.window.key) for b in found] == [
        ("repository", "repo:700100200", 1.0, "2025-05-20"),
        ("person", "user:5550001", 2.0, "2025-05-20"),
        ("installation", "installation:31337", 3.0, "2025-05"),
    ]
    # without GitHub's ids, names (case-folded) stand in
    named = budgets.subjects("Octo-Org/Hello-World", 0, "Mona", 0, 31337)
    assert (named.repository_key, named.person_key) == ("repo:octo-org/hello-world", "user:mona")


def _budget(limit: float, scope: budgets.Scope = "repository") -> Budget:
    [found] = budgets.budgets_for(
        Limits(
            repository_day_usd=limit if scope == "repository" else None,
            person_day_usd=limit if scope == "person" else None,
            installation_month_usd=limit if scope == "installation" else None,
        ),
        WHO,
        NOW,
    )
    return found


REPO, PERSON, INSTALLATION = _budget(10.0), _budget(5.0, "person"), _budget(100.0, "installation")


@pytest.mark.parametrize(
    ("config_cap", "spent", "cap", "exhausted", "lowered_by"),
    [
        (2.0, [], 2.0, None, None),
        (2.0, [(REPO, 0.0), (PERSON, 0.0), (INSTALLATION, 0.0)], 2.0, None, None),
        (2.0, [(REPO, 8.5)], 1.5, None, REPO),
        (2.0, [(REPO, 8.5), (PERSON, 4.0)], 1.0, None, PERSON),  # the least left decides
        (2.0, [(REPO, 9.95)], 0.0, REPO, None),  # less than MIN_RUN_USD left
        (2.0, [(REPO, 12.0)], 0.0, REPO, None),  # overspent by a request: nothing left
        (2.0, [(REPO, 0.0), (PERSON, 5.0)], 0.0, PERSON, None),
        (0.05, [(REPO, 9.94)], 0.05, None, None),  # a run smaller than what is left still fits
        (0.05, [(REPO, 9.97)], 0.0, REPO, None),
        (None, [(REPO, 9.5)], MIN_RUN_USD, None, None),  # intake: something useful is left
        (None, [(REPO, 9.95)], 0.0, REPO, None),
    ],
    ids=[
        "no-budgets",
        "plenty-left",
        "lowered",
        "lowest-wins",
        "under-minimum",
        "overspent",
        "person-spent",
        "small-run-fits",
        "small-run-does-not",
        "intake-ok",
        "intake-refused",
    ],
)
def test_the_run_gets_the_least_that_is_left(
    config_cap: float | None,
    spent: list[tuple[Budget, float]],
    cap: float,
    exhausted: Budget | None,
    lowered_by: Budget | None,
) -> None:
    decision = budgets.decide(config_cap, spent)
    assert decision.cap_usd == pytest.approx(cap)
    assert decision.exhausted == exhausted
    assert decision.refused is (exhausted is not None)
    assert decision.lowered_by == lowered_by


def test_sentences_say_what_is_left_and_when_it_resets() -> None:
    refused = budgets.decide(2.0, [(REPO, 9.97)])
    assert budgets.refusal(refused) == (
        "Honk did not start this run: the budget for this repository today is used up "
        "($9.97 of $10.00); it resets at 2025-05-21 00:00 UTC."
    )
    lowered = budgets.decide(2.0, [(PERSON, 4.2)])
    assert budgets.lowered_note(lowered, 2.0) == (
        "The budget for mona today had $0.80 left, so this run's cost limit was lowered "
        "from $2.00 to $0.80."
    )
    assert budgets.lowered_note(budgets.decide(2.0, []), 2.0) is None
    assert budgets.status_line(INSTALLATION, 12.5) == (
        "Budget for this installation this month: $87.50 of $100.00 left; "
        "it resets at 2025-06-01 00:00 UTC."
    )
    assert budgets.status_line(REPO, 11.0).startswith("Budget for this repository today: $0.00 of")
