"""Branch endpoints: one branch with its protection flag, and the active rules that apply to it.

A branch exists when the fake's `branch_exists` hook says so (a git-backed test asks its bare
repository). Rules are kept per fnmatch pattern (`guard_branch`), as rulesets target branches; the
rules endpoint lists every rule of every matching pattern, whether or not the branch exists, as
GitHub does.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from tests.fakes.github_http import ApiError, Call, Reply, RouteSpec, paginate
from tests.fakes.github_json_branches import branch_json, rule_json

if TYPE_CHECKING:
    from tests.fakes.github import FakeGitHub

DOC_BRANCH = "https://docs.github.com/rest/branches/branches#get-a-branch"
DOC_RULES = "https://docs.github.com/rest/repos/rules#get-rules-for-a-branch"


def get_branch(fake: FakeGitHub, call: Call) -> Reply:
    repo, branch = call.the_repo, call.params["branch"]
    if not fake.branch_exists(repo.full_name, branch):
        raise ApiError(404, "Branch not found", doc=DOC_BRANCH)
    return Reply(branch_json(call.site, repo, branch, fake.branch_sha(repo.full_name, branch)))


def get_branch_rules(fake: FakeGitHub, call: Call) -> Reply:
    repo, branch = call.the_repo, call.params["branch"]
    rules = [
        rule_json(repo, rule, ruleset_id)
        for ruleset_id, (pattern, listed) in enumerate(sorted(repo.branch_rules.items()), 1)
        if fnmatch.fnmatchcase(branch, pattern)
        for rule in listed
    ]
    return paginate(call, rules)


ROUTES = [
    RouteSpec(
        "GET",
        "/repos/{owner}/{repo}/branches/{branch:path}",
        "installation",
        get_branch,
        permission=("contents", "read"),
        doc=DOC_BRANCH,
    ),
    RouteSpec(
        "GET",
        "/repos/{owner}/{repo}/rules/branches/{branch:path}",
        "installation",
        get_branch_rules,
        permission=("metadata", "read"),
        doc=DOC_RULES,
    ),
]
