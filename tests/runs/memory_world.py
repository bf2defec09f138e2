"""One test's Honk without DBOS or HTTP: real settings, a real SQLite RunStore, an in-memory GitHub
(tests/fakes/memory/) and the `Runtime` every step takes as its first argument.

A `@DBOS.step` called outside a workflow is a plain coroutine, so tests await the steps directly;
a crash replay is the same step awaited again with the same inputs.

GitHub holds the repository of tests/fixtures/payloads.py (octo-org/hello-world, installation
31337): issue #42, pull request #43 (head `fix-readme`), the comments the fixture payloads name,
and mona with write access.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from honk_app.models import AgentOutcome, Outcome, Trigger
from honk_app.report.checks import CHECK_NAME
from honk_app.runs import budgets, intake, spend
from honk_app.runs.outcome import WorkResult
from honk_app.runs.runtime import Runtime, open_store
from honk_app.runs.spend import SpendLedger
from honk_app.runs.store import RunRow, RunStore
from honk_app.triggers import TriggerRules, decide
from honk_app.verify.results import StepResult, ValidationResult
from tests.conftest import make_settings
from tests.fakes.memory.app import MemoryGitHub
from tests.fakes.memory.state import CheckRunState, CommentState
from tests.fixtures import payloads

REPO = payloads.REPO_FULL_NAME
ISSUE = payloads.ISSUE_NUMBER
PR = payloads.PR_NUMBER
SENDER = payloads.SENDER_LOGIN
ISSUE_TITLE = "README shows the wrong package name"
BRANCH = "honk/42-readme-shows-the-wrong-package-name"
ANTHROPIC_KEY = "sk-ant-api03-unit-test-key-" + "k" * 40
# The ids the fixture payloads carry, so reactions and review replies find their subject.
ISSUE_COMMENT_ID = 2131000001
PR_COMMENT_ID = 2131000002
REVIEW_COMMENT_ID = 1600000001


@dataclass
class World:
    rt: Runtime
    github: MemoryGitHub
    store: RunStore
    tmp: Path

    # -- triggers, as the webhook path builds them ----------------------------------------------
    def trigger(
        self,
        event: str = "issue_comment",
        payload: dict[str, Any] | None = None,
        *,
        keyed: bool = False,
    ) -> Trigger:
        """A trigger as the webhook builds it. The fixture payloads share their comment ids, so
        by default each call is its own run (its delivery names it, as it did before run ids came
        from the body); `keyed` keeps the run id the body gives: the same comment, the same run."""
        if payload is None:
            payload = payloads.issue_comment("/honk fix the package name")
        found = decide(event, str(uuid.uuid4()), payload, TriggerRules())
        assert isinstance(found, Trigger), found
        return found if keyed else dataclasses.replace(found, run_key="")

    async def recorded(self, trigger: Trigger) -> dict[str, Any]:
        """The trigger's JSON, recorded in the store as intake's first step does."""
        data = trigger.to_json()
        await intake.record(self.rt, data)
        return data

    def row(self, trigger: Trigger) -> RunRow:
        row = self.store.get(trigger.run_id)
        assert row is not None
        return row

    # -- what a person sees -----------------------------------------------------------------------
    def tracking_comments(self, number: int = ISSUE) -> list[CommentState]:
        return [c for c in self.github.comments_on(REPO, number) if "<!-- honk:run=" in c.body]

    def tracking_comment(self, number: int = ISSUE) -> str:
        """The body of the one tracking comment on `number`."""
        found = self.tracking_comments(number)
        assert len(found) == 1, [c.body for c in found]
        return found[0].body

    def replies(self, number: int = ISSUE) -> list[CommentState]:
        return [c for c in self.github.comments_on(REPO, number) if "<!-- honk:reply" in c.body]

    def honk_checks(self, head_sha: str | None = None) -> list[CheckRunState]:
        return [r for r in self.github.check_runs_on(REPO, head_sha) if r.name == CHECK_NAME]


def seen(world: World) -> Any:
    """Everything a person could see on GitHub, to compare before and after a replay."""
    github = world.github
    return copy.deepcopy(
        (
            [(c.id, c.body) for c in github.comments],
            github.pulls_in(REPO),
            github.check_runs,
            github.reactions,
            github.review_comments,
        )
    )


def headline(body: str) -> str:
    """The line after the hidden marker: what a person reads first."""
    return body.splitlines()[1]


def make_world(tmp_path: Path, private_key: str, **settings_values: object) -> World:
    settings = make_settings(
        tmp_path / "data",
        private_key,
        ANTHROPIC_API_KEY=ANTHROPIC_KEY,
        HONK_WORKSPACE_DIR=str(tmp_path / "workspaces"),
        **settings_values,
    )
    store = open_store(settings)
    github = MemoryGitHub(private_key_pem=private_key)
    github.add_repo(REPO, installation_id=payloads.INSTALLATION_ID, files={"README.md": "# hi\n"})
    github.add_issue(REPO, ISSUE, title=ISSUE_TITLE, body="Fix it.", author="octocat")
    github.add_pull(
        REPO,
        PR,
        title="Fix the install instructions",
        head_ref=payloads.HEAD_REF,
        head_sha=payloads.HEAD_SHA,
        files=["README.md"],
    )
    github.add_comment(REPO, ISSUE, "/honk fix the package name", comment_id=ISSUE_COMMENT_ID)
    github.add_comment(REPO, PR, "/honk fix it", comment_id=PR_COMMENT_ID)
    github.add_review_comment(REPO, PR, "/honk rename", line=13, comment_id=REVIEW_COMMENT_ID)
    github.set_permission(REPO, SENDER, "write")
    rt = Runtime(
        settings,
        store,
        github,  # type: ignore[arg-type]  # the in-memory App stands for GitHubApp
        TriggerRules(),
        "serve",
        settings.known_secrets(),
        tmp_path / ".env",
    )
    return World(rt, github, store, tmp_path)


# ---- what the work step hands on ----------------------------------------------------------------


def passed_tests() -> dict[str, Any]:
    test = StepResult("python3 -m unittest -q", 0, 1.5, False, "OK\n")
    return ValidationResult(ran=True, passed=True, test=test).to_json()


def failed_tests() -> dict[str, Any]:
    test = StepResult("python3 -m unittest -q", 1, 1.5, False, "FAILED (failures=1)\n")
    return ValidationResult(ran=True, passed=False, test=test).to_json()


def work_result(
    outcome: Outcome,
    *,
    pushed: bool | None = None,
    head_sha: str | None = None,
    detail: str = "",
    validation: dict[str, Any] | None = None,
    agent: AgentOutcome | None = None,
    draft_always: bool = False,
    branch: str = BRANCH,
) -> WorkResult:
    """What `do_work` returns for `outcome`; pushed unless nothing could be."""
    if pushed is None:
        pushed = outcome in (Outcome.VALIDATED, Outcome.UNVALIDATED, Outcome.LIMIT)
    if validation is None and outcome is Outcome.VALIDATED:
        validation = passed_tests()
    return WorkResult(
        outcome=outcome.value,
        outcome_detail=detail,
        branch=branch,
        base_branch="main",
        head_sha=head_sha,
        pushed=pushed,
        validated=outcome is Outcome.VALIDATED,
        agent=agent
        or AgentOutcome(stop="done", summary="Renamed the package.", turns=3, cost_usd=0.12),
        validation=validation,
        changed_files=[("README.md", 1, 1)] if pushed else [],
        limits={"max_turns": 40, "max_cost_usd": 2.0, "timeout_minutes": 30},
        draft_always=draft_always,
    )


@contextmanager
def world_with(tmp_path: Path, private_key: str, **settings_values: object) -> Iterator[World]:
    """A world whose settings differ from the defaults (budgets, say)."""
    world = make_world(tmp_path, private_key, **settings_values)
    try:
        yield world
    finally:
        world.store.engine.dispose()


def spend_today(world: World, cost: float, run_id: str = "honk-earlier") -> None:
    """An earlier run on this repository, by mona, that cost `cost` and has finished."""
    ledger = SpendLedger(world.store.engine)
    who = budgets.subjects(
        REPO, payloads.REPO_ID, SENDER, payloads.SENDER_ID, payloads.INSTALLATION_ID
    )
    limits = spend.limits_of(world.rt.settings)
    assert ledger.reserve(run_id, who, limits, cost, datetime.now(UTC)).refusal is None
    ledger.settle(run_id, cost)


def budget_left(world: World) -> list[float]:
    """What each configured budget has left for mona on this repository now, in cents."""
    ledger = SpendLedger(world.store.engine)
    who = budgets.subjects(
        REPO, payloads.REPO_ID, SENDER, payloads.SENDER_ID, payloads.INSTALLATION_ID
    )
    applying = budgets.budgets_for(spend.limits_of(world.rt.settings), who, datetime.now(UTC))
    return [round(budgets.remaining(b, used), 2) for b, used in ledger.spent(applying)]
