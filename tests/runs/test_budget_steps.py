"""The operator's budgets in the steps: intake refuses a trigger over a budget and `/honk status`
shows what is left; configure reserves (or refuses), report and fail settle, and the report says
when a budget lowered the run's cost limit."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from honk_app.models import AgentOutcome, Outcome
from honk_app.report.text import inline
from honk_app.runs import intake, steps
from honk_app.runs.budgets import day_window, month_window
from honk_app.runs.spend import SpendLedger
from tests.fixtures import payloads
from tests.runs.memory_world import (
    REPO,
    World,
    budget_left,
    headline,
    spend_today,
    work_result,
    world_with,
)

LIMIT = {"HONK_BUDGET_REPO_DAY_USD": "1.00"}


async def test_a_budget_lowers_the_runs_cost_limit_and_the_report_says_so(
    tmp_path: Path, app_private_key: str
) -> None:
    with world_with(tmp_path, app_private_key, **LIMIT) as world:
        spend_today(world, 0.40)
        trigger = world.trigger()
        data = await world.recorded(trigger)
        comment_id = await intake.announce(world.rt, data)

        config = await steps.configure(world.rt, data, comment_id)
        assert await steps.configure(world.rt, data, comment_id) == config  # a replay
        assert config["config"]["max_cost_usd"] == 0.60
        assert budget_left(world) == [0.0], "the run holds what was left until it ends"

        work = work_result(
            Outcome.NO_CHANGE, agent=AgentOutcome(stop="done", summary="Looked.", cost_usd=0.15)
        )
        await steps.report(world.rt, data, comment_id, work.to_json(), None)

        note = (
            "The budget for this repository today had $0.60 left, so this run's cost limit "
            "was lowered from $2.00 to $0.60."
        )
        assert config["notes"] == [note]
        assert f"ℹ️ {inline(note)}" in world.tracking_comment().splitlines()
        assert budget_left(world) == [0.45], "settled to what the run cost"


async def test_a_run_that_waited_while_the_budget_was_spent_does_not_start(
    tmp_path: Path, app_private_key: str
) -> None:
    with world_with(tmp_path, app_private_key, **LIMIT) as world:
        trigger = world.trigger()
        data = await world.recorded(trigger)
        assert await intake.check_budget(world.rt, data) is None  # fine when it was asked
        comment_id = await intake.announce(world.rt, data)
        spend_today(world, 0.95)  # another run on the repository spent it meanwhile

        result = await steps.configure(world.rt, data, comment_id)

        assert "config" not in result
        sentence = result["error"]
        assert sentence.startswith("Honk did not start this run: the budget for this repository")
        body = world.tracking_comment()
        assert headline(body) == "🟡 Stopped at a limit before making a change."
        assert inline(sentence) in body
        row = world.row(trigger)
        assert (row.status, row.outcome) == ("refused", "budget")
        assert budget_left(world) == [0.05], "nothing was reserved for it"


async def test_a_failed_run_is_charged_what_it_recorded_spending(
    tmp_path: Path, app_private_key: str
) -> None:
    with world_with(tmp_path, app_private_key, **LIMIT) as world:
        world.github.set_file(REPO, ".github/honk.yml", "max_cost_usd: 0.5\n")
        trigger = world.trigger()
        data = await world.recorded(trigger)
        comment_id = await intake.announce(world.rt, data)
        config = await steps.configure(world.rt, data, comment_id)
        assert config["config"]["max_cost_usd"] == 0.5 and "notes" not in config
        ledger = SpendLedger(world.store.engine)
        await ledger.abegin_attempt(trigger.run_id)
        await ledger.arecord_attempt(trigger.run_id, 0.2)  # as the work step does, turn by turn

        for _ in range(2):  # the second is a replay
            await steps.fail(world.rt, data, comment_id, "GitHub did not answer in time.")

        assert budget_left(world) == [0.8]


async def test_a_work_step_run_again_after_a_crash_may_spend_only_what_is_left(
    tmp_path: Path, app_private_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with world_with(tmp_path, app_private_key, **LIMIT) as world:
        trigger = world.trigger()
        data = await world.recorded(trigger)
        comment_id = await intake.announce(world.rt, data)
        config = await steps.configure(world.rt, data, comment_id)
        ledger = SpendLedger(world.store.engine)
        await ledger.abegin_attempt(trigger.run_id)
        await ledger.arecord_attempt(trigger.run_id, 0.7)  # then the server died
        limits: list[float] = []

        async def work(_rt: Any, _t: Any, _c: Any, given: dict[str, Any]) -> dict[str, Any]:
            """The work itself is end to end (tests/e2e/test_crash.py); here, the limit it gets."""
            limits.append(given["config"]["max_cost_usd"])
            return work_result(Outcome.NO_CHANGE).to_json()

        monkeypatch.setattr(steps, "do_work", work)
        await steps.work(world.rt, data, comment_id, config)

        assert limits == [pytest.approx(0.3)], "$1.00 limit, $0.70 spent before the crash"


async def test_without_budgets_the_config_is_the_repositorys(
    tmp_path: Path, app_private_key: str
) -> None:
    with world_with(tmp_path, app_private_key) as world:
        data = await world.recorded(world.trigger())
        config = await steps.configure(world.rt, data, None)
        assert config["config"]["max_cost_usd"] == 2.0 and "notes" not in config
        assert await intake.check_budget(world.rt, data) is None


@pytest.mark.parametrize(
    ("event", "payload", "setting"),
    [
        ("issue_comment", payloads.issue_comment("/honk fix"), "HONK_BUDGET_REPO_DAY_USD"),
        ("issues", payloads.labeled("honk"), "HONK_BUDGET_PERSON_DAY_USD"),
        ("issue_comment", payloads.issue_comment("/honk x"), "HONK_BUDGET_INSTALLATION_MONTH_USD"),
    ],
    ids=["repository-day-comment", "person-day-label", "installation-month"],
)
async def test_a_trigger_over_a_budget_gets_one_sentence_and_no_run(
    tmp_path: Path, app_private_key: str, event: str, payload: dict[str, Any], setting: str
) -> None:
    with world_with(tmp_path, app_private_key, **{setting: "1.00"}) as world:
        spend_today(world, 0.95)
        trigger = world.trigger(event, payload)
        data = await world.recorded(trigger)

        sentence = await intake.check_budget(world.rt, data)
        await intake.check_budget(world.rt, data)  # a replay

        assert sentence is not None and sentence.startswith("Honk did not start this run")
        [reply] = world.replies()
        assert inline(sentence) in reply.body.splitlines()
        assert world.tracking_comments() == []
        row = world.row(trigger)
        assert (row.status, row.outcome, row.summary) == ("refused", "budget", sentence)


async def test_a_trigger_within_its_budgets_goes_on(tmp_path: Path, app_private_key: str) -> None:
    with world_with(tmp_path, app_private_key, HONK_BUDGET_REPO_DAY_USD="1.00") as world:
        spend_today(world, 0.5)
        data = await world.recorded(world.trigger())
        assert await intake.check_budget(world.rt, data) is None
        assert world.github.writes == []


async def test_status_shows_what_is_left_of_each_budget(
    tmp_path: Path, app_private_key: str
) -> None:
    settings = {"HONK_BUDGET_REPO_DAY_USD": "5", "HONK_BUDGET_INSTALLATION_MONTH_USD": "100"}
    with world_with(tmp_path, app_private_key, **settings) as world:
        spend_today(world, 1.25)
        trigger = world.trigger("issue_comment", payloads.issue_comment("/honk status"))
        await intake.reply_status(world.rt, await world.recorded(trigger))

        [reply] = world.replies()
        lines = reply.body.splitlines()
        tomorrow = day_window(datetime.now(UTC)).resets_at
        next_month = month_window(datetime.now(UTC)).resets_at
        assert (
            "- "
            + inline(
                f"Budget for this repository today: $3.75 of $5.00 left; it resets at "
                f"{tomorrow:%Y-%m-%d} 00:00 UTC."
            )
            in lines
        )
        assert (
            "- "
            + inline(
                f"Budget for this installation this month: $98.75 of $100.00 left; it resets at "
                f"{next_month:%Y-%m-%d} 00:00 UTC."
            )
            in lines
        )


async def test_status_without_budgets_says_nothing_of_them(world: World) -> None:
    trigger = world.trigger("issue_comment", payloads.issue_comment("/honk status"))
    await intake.reply_status(world.rt, await world.recorded(trigger))
    [reply] = world.replies()
    assert "Budget" not in reply.body
