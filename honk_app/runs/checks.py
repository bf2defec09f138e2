"""Check runs on a commit: in progress while Honk works on a pull request, then completed.

Found by `external_id` (the run id) before they are created, so a repeated step updates the same
check run; GitHub's Re-run button and the `Retry` action come back as `check_run` webhooks.
"""

from __future__ import annotations

import dataclasses

from honk_app.github.installation import InstallationClient
from honk_app.models import Outcome, Trigger
from honk_app.report.checks import (
    CHECK_NAME,
    check_conclusion,
    check_run_actions,
    check_run_output,
)
from honk_app.report.comment import RunView
from honk_app.runs.runtime import Runtime


def _details_url(view: RunView) -> str | None:
    return view.pr_url


async def start_in_progress(
    rt: Runtime, gh: InstallationClient, trigger: Trigger, head_sha: str, view: RunView
) -> int:
    output = check_run_output(view, known_secrets=rt.known_secrets)
    return await gh.upsert_check_run(
        trigger.target.full_name,
        head_sha=head_sha,
        name=CHECK_NAME,
        external_id=trigger.run_id,
        status="in_progress",
        output={"title": output.title, "summary": output.summary, "text": output.text},
    )


async def upsert_final(
    rt: Runtime, gh: InstallationClient, trigger: Trigger, head_sha: str, view: RunView
) -> int:
    output = check_run_output(view, known_secrets=rt.known_secrets)
    assert view.outcome is not None
    return await gh.upsert_check_run(
        trigger.target.full_name,
        head_sha=head_sha,
        name=CHECK_NAME,
        external_id=trigger.run_id,
        status="completed",
        conclusion=check_conclusion(view.outcome, view.validation),
        output=output.payload(output.annotations),
        actions=check_run_actions(view),
        details_url=_details_url(view),
    )


async def complete_cancelled(
    rt: Runtime, gh: InstallationClient, trigger: Trigger, head_sha: str, view: RunView
) -> int:
    return await upsert_final(
        rt, gh, trigger, head_sha, dataclasses.replace(view, outcome=Outcome.CANCELLED)
    )
