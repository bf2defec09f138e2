"""Open or update the pull request for pushed work. Machines propose; people decide.

Found by its head branch before it is created, so a repeated step never opens a second one. A
pull request is ready for review only when validation passed; a draft otherwise, saying why.
"""

from __future__ import annotations

from typing import Any

from honk_app.models import Outcome, Trigger
from honk_app.report.comment import run_marker
from honk_app.report.pull import pull_request_body, pull_request_title
from honk_app.report.render import Site
from honk_app.report.replies import review_thread_reply
from honk_app.runs.outcome import WorkResult
from honk_app.runs.runtime import Runtime
from honk_app.runs.views import final_view


async def publish_pull(rt: Runtime, trigger: Trigger, work: WorkResult) -> dict[str, Any] | None:
    """The pull request's number and url, or None when nothing was pushed."""
    if not work.pushed:
        return None
    gh = await rt.github.installation(trigger.installation_id)
    full_name = trigger.target.full_name
    if trigger.target.is_pull_request:
        pull = await gh.get_pull(full_name, trigger.target.number)
        if trigger.location is not None and trigger.comment_id is not None:
            view = final_view(trigger, work, {"number": pull.number, "url": pull.html_url})
            await gh.reply_to_review_comment(
                full_name,
                trigger.target.number,
                trigger.comment_id,
                review_thread_reply(
                    view.outcome is Outcome.VALIDATED,
                    work.head_sha,
                    work.outcome_detail or str(view.outcome),
                    pull.html_url,
                ),
                marker=f"<!-- honk:reply={trigger.run_id} -->",
            )
        return {"number": pull.number, "url": pull.html_url, "updated": True}
    draft = not work.validated or work.draft_always
    pending = {"number": None, "url": None}
    view = final_view(trigger, work, pending)
    existing = await gh.find_pull_by_head(full_name, trigger.target.owner, work.branch)
    pull = await gh.create_or_update_pull(
        full_name,
        head=work.branch,
        base=work.base_branch,
        title=pull_request_title(
            trigger.title,
            trigger.target.number,
            Site(trigger.repository.web_url, full_name),
        ),
        body=pull_request_body(
            view,
            issue_number=trigger.target.number,
            validated=work.validated,
            known_secrets=rt.known_secrets,
        ),
        draft=draft,
    )
    if pull.draft != draft:
        await gh.set_draft(full_name, pull, draft)
    await gh.request_review(full_name, pull.number, trigger.sender_login)
    # "Updated" only if an earlier run opened it: after a crash, this run may find its own.
    updated = existing is not None and run_marker(trigger.run_id) not in existing.body
    return {"number": pull.number, "url": pull.html_url, "updated": updated}
