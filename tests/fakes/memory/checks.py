"""The in-memory installation's check run calls, as honk_app.github.installation makes them.

A check run is found by commit, name, this App and `external_id` before one is created;
annotations beyond the first 50 are appended in further updates, as GitHub does.
"""

from __future__ import annotations

from typing import Any

from honk_app.github.models import CheckRunInfo, annotation_batches
from tests.fakes.memory.issues import MemoryIssueCalls
from tests.fakes.memory.state import CheckRunState, as_model, in_repo, refused


class MemoryCheckRunCalls(MemoryIssueCalls):
    """This App's check runs on a commit."""

    def _check_runs(self, full_name: str, head_sha: str, name: str, op: str) -> list[CheckRunState]:
        endpoint = f"GET /repos/{full_name}/commits/{head_sha}/check-runs"
        self._repo(full_name, op, endpoint)
        runs = in_repo(
            self.github.check_runs, full_name, head_sha=head_sha, name=name, app_id=self._app.id
        )
        return list(reversed(runs))  # newest first, as GitHub lists them

    async def list_check_runs(self, full_name: str, head_sha: str, name: str) -> list[CheckRunInfo]:
        self._call("list_check_runs")
        runs = self._check_runs(full_name, head_sha, name, "list_check_runs")
        return [as_model(CheckRunInfo, r) for r in runs]

    async def upsert_check_run(
        self,
        full_name: str,
        *,
        head_sha: str,
        name: str,
        external_id: str,
        status: str,
        conclusion: str | None = None,
        output: dict[str, Any] | None = None,
        actions: list[dict[str, Any]] | None = None,
        details_url: str | None = None,
    ) -> int:
        self._call("upsert_check_run")
        runs = self._check_runs(full_name, head_sha, name, "upsert_check_run")
        run = next((r for r in runs if r.external_id == external_id), None)
        if status == "completed" and conclusion is None:
            endpoint = f"POST /repos/{full_name}/check-runs"
            raise refused("upsert_check_run", endpoint, 422, "Validation Failed (conclusion)")
        batches = annotation_batches(output)
        if run is None:
            run = CheckRunState(
                self.github.next_id(),
                self.github.repo(full_name).full_name,
                head_sha,
                name,
                external_id,
                self._app.id,
            )
            self.github.check_runs.append(run)
            self._write(f"POST /repos/{full_name}/check-runs")
        else:
            self._write(f"PATCH /repos/{full_name}/check-runs/{run.id}")
        run.status = status
        run.conclusion = conclusion if conclusion is not None else run.conclusion
        run.actions = list(actions) if actions is not None else run.actions
        run.details_url = details_url if details_url is not None else run.details_url
        for index, batch in enumerate(batches):
            if batch is None:
                continue
            fields = {k: v for k, v in batch.items() if k != "annotations"}
            run.output = fields if index == 0 else {**run.output, **fields}
            run.annotations.extend(batch.get("annotations") or [])  # GitHub appends them
        for _ in batches[1:]:
            self._write(f"PATCH /repos/{full_name}/check-runs/{run.id}")
        return run.id
