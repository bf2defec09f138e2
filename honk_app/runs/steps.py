"""The durable steps of a run: configure, work, publish, report (and fail).

Each finds before it creates, so a step repeated after a crash changes nothing twice. Steps take
and return plain JSON, which DBOS stores; the runtime is passed in by the workflow. The GitHub
adapter retries server errors and rate limits itself, so DBOS does not retry these steps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime
from typing import Any

from dbos import DBOS

from honk_app.github.installation import InstallationClient
from honk_app.github.models import WRITE_PERMISSIONS
from honk_app.models import Outcome, Phase, PhaseState, Trigger
from honk_app.repo_config import ConfigError, RepoConfig, parse_config
from honk_app.report.comment import RunView, run_marker, tracking_comment
from honk_app.runs import checks, spend
from honk_app.runs.outcome import WorkResult
from honk_app.runs.publish import publish_pull
from honk_app.runs.runtime import Runtime
from honk_app.runs.views import final_view, start_view
from honk_app.runs.work import do_work
from honk_app.safety.secret_scan import redact

log = logging.getLogger("honk.steps")

# `.github/honk.yml` needs a positive cap; no model request fits in a cent, so a restarted run
# whose earlier attempts spent it all stops at its first turn with the budget's sentence.
MIN_CAP_USD = 0.01


def describe_error(exc: BaseException, known_secrets: list[str]) -> str:
    """One readable sentence, secrets redacted: what the tracking comment shows."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text if text.endswith(".") else text + ".", known_secrets)


@DBOS.step(name="honk.configure")
async def configure(
    rt: Runtime, trigger_json: dict[str, Any], comment_id: int | None
) -> dict[str, Any]:
    """`.github/honk.yml` from the default branch, else the owner's `.github`, else defaults."""
    trigger = Trigger.from_json(trigger_json)
    if await rt.store.ais_cancelled(trigger.run_id):
        return {"error": "stopped before it started"}
    gh = await rt.github.installation(trigger.installation_id)
    # Asked again when the run starts: a run may wait long in the queue, and access can go.
    if await gh.permission(trigger.target.full_name, trigger.sender_login) not in WRITE_PERMISSIONS:
        sentence = (
            f"@{trigger.sender_login} no longer has write access here, so this run did not start."
        )
        view = dataclasses.replace(
            start_view(trigger), outcome=Outcome.UNAUTHORIZED, outcome_detail=sentence
        )
        await _finish_comment(rt, gh, trigger, comment_id, view)
        await rt.store.aupdate(
            trigger.run_id, status="refused", outcome="unauthorized", summary=sentence
        )
        await rt.store.aaudit(trigger.run_id, "refused", {"reason": "no write access at start"})
        return {"error": sentence}
    await rt.store.aupdate(trigger.run_id, status="running")
    text, source = await gh.repo_config_text(
        trigger.target.full_name, trigger.target.owner, trigger.repository.default_branch
    )
    if isinstance(text, ConfigError):
        parsed: RepoConfig | ConfigError = text
    else:  # up to 64 KiB of YAML: a tenth of a second, off the event loop
        parsed = await asyncio.to_thread(parse_config, text, source=source)
    if isinstance(parsed, ConfigError):
        view = dataclasses.replace(
            start_view(trigger), outcome=Outcome.CONFIG_ERROR, outcome_detail=parsed.message
        )
        view.phases[Phase.QUEUED] = PhaseState.DONE
        await _finish_comment(rt, gh, trigger, comment_id, view)
        await rt.store.aupdate(
            trigger.run_id, status="failed", outcome="config_error", summary=parsed.message
        )
        await rt.store.aaudit(trigger.run_id, "config", {"source": source, "error": parsed.message})
        return {"error": parsed.message}
    config = parsed.model_dump(mode="json")
    reserved = await spend.SpendLedger(rt.store.engine).areserve(
        trigger.run_id,
        spend.subjects_of(trigger),
        spend.limits_of(rt.settings),
        config["max_cost_usd"],
        datetime.now(UTC),
    )
    if reserved.refusal is not None:  # it waited in the queue while other runs spent the budget
        return await _over_budget(rt, gh, trigger, comment_id, reserved.refusal)
    config["max_cost_usd"] = reserved.cap_usd  # the agent's ledger keeps the run within it
    await rt.store.aaudit(trigger.run_id, "config", {"source": source, "config": config})
    result: dict[str, Any] = {"config": config, "source": source}
    if reserved.note is not None:
        result["notes"] = [reserved.note]
    return result


async def _over_budget(
    rt: Runtime, gh: InstallationClient, trigger: Trigger, comment_id: int | None, sentence: str
) -> dict[str, Any]:
    view = dataclasses.replace(start_view(trigger), outcome=Outcome.LIMIT, outcome_detail=sentence)
    view.phases[Phase.QUEUED] = PhaseState.DONE
    for phase in (Phase.WORKSPACE, Phase.AGENT, Phase.VALIDATION, Phase.PULL_REQUEST):
        view.phases[phase] = PhaseState.SKIPPED
    await _finish_comment(rt, gh, trigger, comment_id, view)
    await rt.store.aupdate(trigger.run_id, status="refused", outcome="budget", summary=sentence)
    await rt.store.aaudit(trigger.run_id, "refused", {"reason": "budget", "sentence": sentence})
    return {"error": sentence}


async def _finish_comment(
    rt: Runtime, gh: InstallationClient, trigger: Trigger, comment_id: int | None, view: RunView
) -> None:
    body = tracking_comment(view, known_secrets=rt.known_secrets)
    if comment_id is not None:
        await gh.update_comment(trigger.target.full_name, comment_id, body)
    else:
        await gh.upsert_comment(
            trigger.target.full_name, trigger.target.number, run_marker(view.run_id), body
        )


@DBOS.step(name="honk.work")
async def work(
    rt: Runtime, trigger_json: dict[str, Any], comment_id: int | None, config: dict[str, Any]
) -> dict[str, Any]:
    trigger = Trigger.from_json(trigger_json)
    # A crash re-runs this step from the start: the new attempt may spend only what is left.
    carried = await spend.SpendLedger(rt.store.engine).abegin_attempt(trigger.run_id)
    if carried > 0:
        cap = config["config"]["max_cost_usd"]
        left = max(MIN_CAP_USD, cap - carried)
        config = {**config, "config": {**config["config"], "max_cost_usd": left}}
    return await do_work(rt, trigger, comment_id, config)


@DBOS.step(name="honk.publish")
async def publish(
    rt: Runtime, trigger_json: dict[str, Any], work_json: dict[str, Any]
) -> dict[str, Any] | None:
    return await publish_pull(rt, Trigger.from_json(trigger_json), WorkResult.from_json(work_json))


@DBOS.step(name="honk.report")
async def report(
    rt: Runtime,
    trigger_json: dict[str, Any],
    comment_id: int | None,
    work_json: dict[str, Any],
    pull: dict[str, Any] | None,
) -> None:
    trigger = Trigger.from_json(trigger_json)
    work = WorkResult.from_json(work_json)
    ledger = spend.SpendLedger(rt.store.engine)
    await ledger.asettle(trigger.run_id, work.agent.cost_usd)  # first: money before words
    note = await ledger.anote(trigger.run_id)
    if note is not None and note not in work.notes:
        work.notes = [*work.notes, note]
    gh = await rt.github.installation(trigger.installation_id)
    view = final_view(trigger, work, pull)
    if work.head_sha:
        await checks.upsert_final(rt, gh, trigger, work.head_sha, view)
    row = await rt.store.aget(trigger.run_id)
    if row is not None and row.head_sha and row.head_sha != work.head_sha:
        await checks.upsert_final(rt, gh, trigger, row.head_sha, view)  # the in-progress one
    await _finish_comment(rt, gh, trigger, comment_id, view)
    await rt.store.aupdate(
        trigger.run_id,
        status="succeeded" if work.outcome != Outcome.FAILED else "failed",
        outcome=work.outcome,
        pr_url=(pull or {}).get("url"),
        cost_usd=work.agent.cost_usd,
        summary=view.outcome_detail or work.agent.summary[:300],
    )
    await rt.store.aaudit(trigger.run_id, "outcome", {"outcome": work.outcome, "pull": pull})


@DBOS.step(name="honk.fail")
async def fail(
    rt: Runtime, trigger_json: dict[str, Any], comment_id: int | None, sentence: str
) -> None:
    trigger = Trigger.from_json(trigger_json)
    ledger = spend.SpendLedger(rt.store.engine)
    await ledger.asettle(trigger.run_id, None)  # what it recorded spending, turn by turn
    note = await ledger.anote(trigger.run_id)
    view = dataclasses.replace(
        start_view(trigger),
        outcome=Outcome.FAILED,
        outcome_detail=sentence,
        error_detail=sentence,
        notes=[note] if note is not None else [],
    )
    gh = await rt.github.installation(trigger.installation_id)
    await _finish_comment(rt, gh, trigger, comment_id, view)
    row = await rt.store.aget(trigger.run_id)
    if row is not None and row.head_sha:
        await checks.upsert_final(rt, gh, trigger, row.head_sha, view)
    await rt.store.aupdate(trigger.run_id, status="failed", outcome="failed", summary=sentence)
    await rt.store.aaudit(trigger.run_id, "outcome", {"outcome": "failed", "error": sentence})
