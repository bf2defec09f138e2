"""Installation calls about branches: is a branch guarded (classic protection, active rulesets)?

Honk asks before it pushes to a pull request's head branch (safety/push_rules.py decides). Two
reads: GET /repos/{o}/{r}/branches/{branch} for the `protected` flag (404: no such branch), and
GET /repos/{o}/{r}/rules/branches/{branch} for the active ruleset rules that apply to it. A rule
type newer than githubkit's models still counts: the types are then read from the raw JSON, and
push_rules treats a type it does not know as guarding.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from honk_app.github.errors import GitHubError
from honk_app.github.issues import PER_PAGE, IssueCalls
from honk_app.github.models import split_full_name
from honk_app.safety.push_rules import BranchFacts

MAX_RULE_PAGES = 10


def rule_types_from_json(items: Any) -> list[str]:
    """The `type` of every rule in GitHub's JSON list, for rules githubkit cannot parse."""
    if not isinstance(items, list):
        return ["unreadable"]  # fails closed: an unknown type guards the branch
    types = [item.get("type") if isinstance(item, dict) else None for item in items]
    return [t if isinstance(t, str) and t else "unreadable" for t in types]


class BranchCalls(IssueCalls):
    """Branch facts for one installation; repositories are named per call (`owner/repo`)."""

    async def branch_facts(self, full_name: str, branch: str) -> BranchFacts:
        """Whether `branch` exists, is protected, and which active rules apply to it."""
        owner, repo = split_full_name(full_name)
        quoted = quote(branch, safe="/")  # '#', '%' and '?' are legal in branch names
        endpoint = f"GET /repos/{full_name}/branches/{branch}"
        try:
            async with self._call("branch_facts", endpoint):
                resp = await self._gh.rest.repos.async_get_branch(owner, repo, quoted)
                protected = resp.parsed_data.protected
        except GitHubError as error:
            if error.status == 404:
                return BranchFacts(exists=False)
            raise
        return BranchFacts(
            exists=True, protected=protected, rule_types=tuple(await self._rules(full_name, quoted))
        )

    async def _rules(self, full_name: str, quoted: str) -> list[str]:
        owner, repo = split_full_name(full_name)
        endpoint = f"GET /repos/{full_name}/rules/branches/{quoted}"
        found: list[str] = []
        async with self._call("branch_facts", endpoint, listing=True):
            for page in range(1, MAX_RULE_PAGES + 1):
                resp = await self._gh.rest.repos.async_get_branch_rules(
                    owner, repo, quoted, per_page=PER_PAGE, page=page
                )
                types: list[str]
                try:
                    types = [rule.type for rule in resp.parsed_data]
                except ValidationError:
                    types = rule_types_from_json(resp.json())
                found += types
                if len(types) < PER_PAGE:
                    return found
        found.append("unreadable")  # more rules than Honk reads: fail closed
        return found
