"""Check run endpoints, with GitHub's limits enforced.

`output.summary` and `output.text` may hold at most 65535 *bytes* (GitHub counts UTF-8 bytes, not
characters), a request may carry at most 50 annotations, and annotations accumulate across updates.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from tests.fakes.github_http import ApiError, Call, Reply, RouteSpec, paginate, validation_failed
from tests.fakes.github_json_pulls import annotation_json, check_run_json
from tests.fakes.github_state import SHA_RE, CheckRunState, PullState, utcnow

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

DOC_RUNS = "https://docs.github.com/rest/checks/runs"
OUTPUT_BYTE_LIMIT = 65535
ANNOTATIONS_PER_REQUEST = 50
STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)
ANNOTATION_LEVELS = ("notice", "warning", "failure")


def _invalid(detail: str) -> ApiError:
    return ApiError(422, f"Invalid request.\n\n{detail}")


def _timestamp(value: Any, field: str) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as error:
        raise _invalid(f"{value!r} is not a valid date-time for {field}.") from error


def _apply_output(run: CheckRunState, output: Any, *, creating: bool) -> None:
    if not isinstance(output, dict):
        raise _invalid("For 'properties/output', it is not an object.")
    required = ("title", "summary") if creating else ("summary",)
    missing = [name for name in required if not isinstance(output.get(name), str)]
    if missing:
        names = ", ".join(f'"{name}"' for name in missing)
        raise _invalid(f"{names} {'wasn' if len(missing) == 1 else 'weren'}'t supplied.")
    for name in ("summary", "text"):
        value = output.get(name)
        if isinstance(value, str) and len(value.encode()) > OUTPUT_BYTE_LIMIT:
            raise validation_failed(
                "CheckRun",
                field=name,
                message=f"{name} exceeds a maximum bytesize of {OUTPUT_BYTE_LIMIT}",
            )
    annotations = output.get("annotations") or []
    if len(annotations) > ANNOTATIONS_PER_REQUEST:
        raise _invalid(
            f"No more than {ANNOTATIONS_PER_REQUEST} items are allowed; "
            f"{len(annotations)} were supplied."
        )
    for item in annotations:
        keys = ("path", "start_line", "end_line", "annotation_level", "message")
        if not isinstance(item, dict) or any(item.get(key) is None for key in keys):
            raise _invalid(f"Each annotation needs {', '.join(keys)}.")
        if item["annotation_level"] not in ANNOTATION_LEVELS:
            raise _invalid(f"{item['annotation_level']!r} is not a valid annotation_level.")
    for name in ("title", "summary", "text"):
        if name in output:
            run.output[name] = output[name]
    run.annotations.extend(annotations)


def _apply(run: CheckRunState, data: dict[str, Any], *, creating: bool) -> None:
    """Validate everything before changing anything, so a 422 leaves the run as it was."""
    staged = CheckRunState(
        run.repo,
        run.name,
        run.head_sha,
        run.app_id,
        id=run.id,
        check_suite_id=run.check_suite_id,
        status=run.status,
        conclusion=run.conclusion,
        output=dict(run.output),
        annotations=list(run.annotations),
    )
    status = data.get("status")
    if status is not None and status not in STATUSES:
        raise validation_failed("CheckRun", field="status", code="invalid")
    conclusion = data.get("conclusion")
    if conclusion is not None and conclusion not in CONCLUSIONS:
        raise validation_failed("CheckRun", field="conclusion", code="invalid")
    if status == "completed" and conclusion is None and run.conclusion is None:
        raise _invalid('"conclusion" wasn\'t supplied.')
    if "output" in data:
        _apply_output(staged, data["output"], creating=creating)
    actions = data.get("actions") or []
    if len(actions) > 3:
        raise _invalid(f"No more than 3 items are allowed; {len(actions)} were supplied.")
    started = _timestamp(data["started_at"], "started_at") if data.get("started_at") else None
    completed = (
        _timestamp(data["completed_at"], "completed_at") if data.get("completed_at") else None
    )
    if "name" in data:
        run.name = str(data["name"])
    for key in ("details_url", "external_id"):
        if key in data:
            setattr(run, key, data[key])
    run.output, run.annotations = staged.output, staged.annotations
    if actions:
        run.actions = list(actions)
    if status is not None:
        run.status = status
    if status in ("in_progress",) and run.started_at is None:
        run.started_at = utcnow()
    run.started_at = started or run.started_at
    if conclusion is not None:
        run.conclusion, run.status = conclusion, "completed"
    if run.status == "completed":
        run.completed_at = completed or run.completed_at or utcnow()
        run.started_at = run.started_at or run.completed_at


def _render(fake: FakeGitHub, call: Call, run: CheckRunState) -> Any:
    repo = call.the_repo
    pulls = [
        p
        for p in repo.issues.values()
        if isinstance(p, PullState)
        and p.state == "open"
        and p.head_sha == run.head_sha
        and not p.is_fork
    ]
    base_sha = fake.branch_sha(repo.full_name, repo.default_branch)
    return check_run_json(call.site, repo, run, pulls, base_sha)


def _find(fake: FakeGitHub, call: Call) -> CheckRunState:
    run_id = call.int_param("check_run_id")
    run = next(
        (
            r
            for r in fake.check_runs
            if r.id == run_id and r.repo.lower() == call.the_repo.full_name.lower()
        ),
        None,
    )
    if run is None:
        raise ApiError(404)
    return run


def create_run(fake: FakeGitHub, call: Call) -> Reply:
    data = call.json
    name, head_sha = data.get("name"), data.get("head_sha")
    if not isinstance(name, str) or not name:
        raise _invalid('"name" wasn\'t supplied.')
    if not isinstance(head_sha, str) or not SHA_RE.fullmatch(head_sha):
        raise ApiError(422, f"No commit found for SHA: {head_sha}")
    run = CheckRunState(call.the_repo.full_name, name, head_sha, call.actor_app.id)
    _apply(run, data, creating=True)
    run.started_at = run.started_at or utcnow()
    fake.check_runs.append(run)
    return Reply(_render(fake, call, run), status=201)


def update_run(fake: FakeGitHub, call: Call) -> Reply:
    run = _find(fake, call)
    if run.app_id != call.actor_app.id:
        raise ApiError(
            403,
            f"Invalid app_id `{call.actor_app.id}` - check run can only be "
            "modified by the GitHub App that created it.",
        )
    _apply(run, call.json, creating=False)
    return Reply(_render(fake, call, run))


def get_run(fake: FakeGitHub, call: Call) -> Reply:
    return Reply(_render(fake, call, _find(fake, call)))


def list_annotations(fake: FakeGitHub, call: Call) -> Reply:
    run = _find(fake, call)
    page = paginate(call, run.annotations)
    page.body = [annotation_json(call.site, call.the_repo, run, item) for item in page.body]
    return page


def list_for_ref(fake: FakeGitHub, call: Call) -> Reply:
    repo = call.the_repo
    ref = call.params["ref"]
    if SHA_RE.fullmatch(ref):
        sha = ref
    elif fake.branch_exists(repo.full_name, ref):
        sha = fake.branch_sha(repo.full_name, ref)
    else:
        raise ApiError(422, f"No commit found for SHA: {ref}")
    runs = [
        r for r in fake.check_runs if r.repo.lower() == repo.full_name.lower() and r.head_sha == sha
    ]
    if call.query.get("check_name"):
        runs = [r for r in runs if r.name == call.query["check_name"]]
    if call.query.get("status"):
        runs = [r for r in runs if r.status == call.query["status"]]
    if call.query.get("app_id"):
        runs = [r for r in runs if str(r.app_id) == call.query["app_id"]]
    if call.query.get("filter", "latest") == "latest":
        newest: dict[tuple[str, int], CheckRunState] = {}
        for run in runs:
            newest[(run.name, run.app_id)] = run
        runs = list(newest.values())
    runs.sort(key=lambda r: r.id, reverse=True)
    page = paginate(call, runs)
    page.body = {
        "total_count": len(runs),
        "check_runs": [_render(fake, call, r) for r in page.body],
    }
    return page


_RUN = "/repos/{owner}/{repo}/check-runs/{check_run_id:int}"
_READ = ("checks", "read")
_WRITE = ("checks", "write")

ROUTES = [
    RouteSpec(
        "POST",
        "/repos/{owner}/{repo}/check-runs",
        "installation",
        create_run,
        _WRITE,
        doc=f"{DOC_RUNS}#create-a-check-run",
    ),
    RouteSpec(
        "PATCH", _RUN, "installation", update_run, _WRITE, doc=f"{DOC_RUNS}#update-a-check-run"
    ),
    RouteSpec("GET", _RUN, "installation", get_run, _READ, doc=f"{DOC_RUNS}#get-a-check-run"),
    RouteSpec("GET", f"{_RUN}/annotations", "installation", list_annotations, _READ, doc=DOC_RUNS),
    RouteSpec(
        "GET",
        "/repos/{owner}/{repo}/commits/{ref:path}/check-runs",
        "installation",
        list_for_ref,
        _READ,
        doc=f"{DOC_RUNS}#list-check-runs-for-a-git-reference",
    ),
]
