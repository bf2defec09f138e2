"""The tracking comment as a run goes: phases, turns and spend, edited at most every few seconds.

It also paces the run by the installation's GitHub quota (github/ratelimit.py): edits are spaced
out when the quota is low, a run waits for the reset before starting when it is nearly gone, and
the comment says so in one sentence.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable

from honk_app.agent.base import Progress
from honk_app.github.app import installation_quota
from honk_app.github.installation import InstallationClient
from honk_app.github.ratelimit import MAX_WAIT_S, Decision, Pace, Quota, decide
from honk_app.models import Phase, PhaseState, Trigger
from honk_app.report.comment import RunView, tracking_comment
from honk_app.runs.views import start_view

log = logging.getLogger("honk.progress")

MIN_INTERVAL_S = 3.0


class TrackingProgress:
    """Keeps the run's view and edits its one comment; a failed edit never stops the run."""

    def __init__(
        self,
        gh: InstallationClient,
        trigger: Trigger,
        comment_id: int | None,
        *,
        known_secrets: list[str],
        min_interval_s: float = MIN_INTERVAL_S,
        record_spend: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.gh = gh
        self.trigger = trigger
        self.comment_id = comment_id
        self.known_secrets = known_secrets
        self.min_interval_s = min_interval_s
        self.record_spend = record_spend  # durably, so a restart or a stop knows the money gone
        self.quota: Callable[[], Quota | None] = functools.partial(installation_quota, gh)
        self.view: RunView = start_view(trigger)
        self.view.phases[Phase.QUEUED] = PhaseState.DONE
        self._last_edit = 0.0
        self._last_body = ""
        self._pace = Pace.NORMAL
        self._note = ""  # the quota sentence this object put in view.notes

    async def _enter(self, phase: Phase) -> None:
        for earlier in Phase:
            if earlier is phase:
                break
            if self.view.phases[earlier] in (PhaseState.ACTIVE, PhaseState.PENDING):
                self.view.phases[earlier] = PhaseState.DONE
        self.view.phases[phase] = PhaseState.ACTIVE
        await self.flush(force=True)

    async def phase_workspace(self) -> None:
        await self._enter(Phase.WORKSPACE)

    async def phase_agent(self) -> None:
        await self._enter(Phase.AGENT)

    async def phase_validation(self) -> None:
        await self._enter(Phase.VALIDATION)

    async def phase_pull_request(self) -> None:
        await self._enter(Phase.PULL_REQUEST)

    async def on_agent_progress(self, progress: Progress) -> None:
        self.view.turns = progress.turns
        self.view.cost_usd = progress.cost_usd
        self.view.usage = progress.usage
        self.view.current_tool = progress.tool
        if self.record_spend is not None:
            try:
                await self.record_spend(progress.cost_usd)
            except Exception as exc:  # a database hiccup must not stop the run
                log.warning("could not record the spend of %s: %s", self.trigger.run_id, exc)
        await self.flush()

    async def wait_for_quota(self) -> None:
        """Before the run's work: while the installation's quota is nearly gone, wait for its
        reset (at most MAX_WAIT_S in all; cancellable), saying so in the comment."""
        deadline = time.monotonic() + MAX_WAIT_S
        waited = False
        while True:
            decision = self._decide(starting=True)
            left = deadline - time.monotonic()
            if decision.pace is not Pace.WAIT or left <= 0:
                break
            log.info("run %s waits %.0f s for GitHub's quota", self.trigger.run_id, decision.wait_s)
            await self._flush(decision, force=True)
            await asyncio.sleep(min(decision.wait_s, left))
            waited = True
        if waited:  # the comment must stop saying that the run waits
            await self.flush(force=True)

    def _decide(self, *, starting: bool = False) -> Decision:
        return decide(
            self.quota(), time.time(), starting=starting, base_interval_s=self.min_interval_s
        )

    def _show(self, decision: Decision) -> bool:
        """Put the quota sentence in the view; whether the pace changed (worth an edit now)."""
        notes = self.view.notes
        if self._note in notes:
            notes.remove(self._note)
        self._note = decision.note
        if decision.note:
            notes.append(decision.note)
        changed = decision.pace is not self._pace
        self._pace = decision.pace
        return changed

    async def flush(self, *, force: bool = False) -> None:
        """Edit the comment unless the last edit is too recent for the quota's pace; a change of
        pace is shown at once."""
        await self._flush(self._decide(), force=force)

    async def _flush(self, decision: Decision, *, force: bool) -> None:
        if self.comment_id is None:
            return
        force = self._show(decision) or force
        now = time.monotonic()
        if not force and now - self._last_edit < decision.edit_interval_s:
            return
        body = tracking_comment(self.view, known_secrets=self.known_secrets)
        if body == self._last_body:
            return
        self._last_edit = now
        try:
            await self.gh.update_comment(self.trigger.target.full_name, self.comment_id, body)
            self._last_body = body
        except Exception as exc:  # progress is best effort; the final report is a durable step
            log.warning("could not update the tracking comment of %s: %s", self.trigger.run_id, exc)
