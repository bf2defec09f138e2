"""Repository endpoints: the repository, a collaborator's permission, and file contents."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.fakes.github_http import ApiError, Call, Reply, RouteSpec
from tests.fakes.github_json import collaborator_permission_json, full_repo_json
from tests.fakes.github_json_pulls import content_entry_json, content_file_json
from tests.fakes.github_state import SHA_RE

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

DOC_CONTENTS = "https://docs.github.com/rest/repos/contents#get-repository-content"


def get_repo(fake: FakeGitHub, call: Call) -> Reply:
    return Reply(full_repo_json(call.site, call.the_repo))


def get_permission(fake: FakeGitHub, call: Call) -> Reply:
    return Reply(collaborator_permission_json(call.site, call.the_repo, call.params["username"]))


def get_contents(fake: FakeGitHub, call: Call) -> Reply:
    repo = call.the_repo
    ref = call.query.get("ref") or repo.default_branch
    files = repo.files.get(ref)
    if files is None:
        if ref != repo.default_branch and not SHA_RE.fullmatch(ref):
            raise ApiError(404, f"No commit found for the ref {ref}", doc=DOC_CONTENTS)
        files = {}
    path = call.params.get("path", "").strip("/")
    if path in files:
        return Reply(content_file_json(call.site, repo, path, ref, files[path]))
    prefix = f"{path}/" if path else ""
    children: dict[str, str | None] = {}
    for name, text in files.items():
        if name.startswith(prefix):
            rest = name[len(prefix) :]
            head, _, tail = rest.partition("/")
            children[prefix + head] = None if tail else text
    if not children:
        raise ApiError(404, doc=DOC_CONTENTS)
    entries = [
        content_entry_json(call.site, repo, child, ref, text)
        for child, text in sorted(children.items())
    ]
    return Reply(entries)


ROUTES = [
    RouteSpec(
        "GET",
        "/repos/{owner}/{repo}",
        "installation",
        get_repo,
        permission=("metadata", "read"),
        doc="https://docs.github.com/rest/repos/repos#get-a-repository",
    ),
    RouteSpec(
        "GET",
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
        "installation",
        get_permission,
        permission=("metadata", "read"),
        doc="https://docs.github.com/rest/collaborators/collaborators"
        "#get-repository-permissions-for-a-user",
    ),
    RouteSpec(
        "GET",
        "/repos/{owner}/{repo}/contents",
        "installation",
        get_contents,
        permission=("contents", "read"),
        doc=DOC_CONTENTS,
    ),
    RouteSpec(
        "GET",
        "/repos/{owner}/{repo}/contents/{path:path}",
        "installation",
        get_contents,
        permission=("contents", "read"),
        doc=DOC_CONTENTS,
    ),
]
