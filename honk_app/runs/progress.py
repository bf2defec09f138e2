"""The tracking comment as a run goes: phases, turns and spend, edited at most every few seconds."""

from __future__ import annotations

import logging
import time

from honk_app.agent.base import Progress
from honk_app.github.installation import InstallationClient
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
    ) -> None:
        self.gh = gh
        self.trigger = trigger
        self.comment_id = comment_id
        self.known_secrets = known_secrets
        self.min_interval_s = min_interval_s
        self.view: RunView = start_view(trigger)
        self.view.phases[Phase.QUEUED] = PhaseState.DONE
        self._last_edit = 0.0
        self._last_body = ""

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
        await self.flush()

    async def flush(self, *, force: bool = False) -> None:
        if self.comment_id is None:
            return
        now = time.monotonic()
        if not force and now - self._last_edit < self.min_interval_s:
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
