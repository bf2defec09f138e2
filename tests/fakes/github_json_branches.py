"""Pure: render a branch (`BranchWithProtection`) and its active ruleset rules as GitHub JSON."""

from __future__ import annotations

from typing import Any

from tests.fakes.github_json import Json, Site, user_json
from tests.fakes.github_state import RepoState, iso, utcnow


def _commit_json(site: Site, repo: RepoState, sha: str) -> Json:
    """The `Commit` GitHub embeds in a branch (as a user without push access sees it)."""
    api = f"{site.base}/repos/{repo.full_name}"
    author = {"name": "octocat", "email": "octocat@users.noreply.github.com"}
    when = iso(utcnow())
    return {
        "sha": sha,
        "node_id": f"C_kwDO{sha[:12]}",
        "commit": {
            "author": {**author, "date": when},
            "committer": {**author, "date": when},
            "message": "Latest commit",
            "tree": {"sha": "4b825dc642cb6eb9a060e54bf8d69288fbee4904", "url": f"{api}/git/trees/"},
            "url": f"{api}/git/commits/{sha}",
            "comment_count": 0,
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        },
        "url": f"{api}/commits/{sha}",
        "html_url": f"{site.base}/{repo.full_name}/commit/{sha}",
        "comments_url": f"{api}/commits/{sha}/comments",
        "author": user_json(site, "octocat"),
        "committer": user_json(site, "octocat"),
        "parents": [],
    }


def branch_json(site: Site, repo: RepoState, branch: str, sha: str) -> Json:
    """GET /repos/{o}/{r}/branches/{branch}: `protected` and a summary of classic protection."""
    api = f"{site.base}/repos/{repo.full_name}"
    protected = branch in repo.protected_branches
    return {
        "name": branch,
        "commit": _commit_json(site, repo, sha),
        "_links": {
            "self": f"{api}/branches/{branch}",
            "html": f"{site.base}/{repo.full_name}/tree/{branch}",
        },
        "protected": protected,
        "protection": {
            "enabled": protected,
            "required_status_checks": {
                "enforcement_level": "non_admins" if protected else "off",
                "contexts": [],
                "checks": [],
            },
        },
        "protection_url": f"{api}/branches/{branch}/protection",
    }


def rule_json(repo: RepoState, rule: dict[str, Any], ruleset_id: int) -> Json:
    """One active rule as GET /rules/branches/{branch} lists it, with the ruleset it is from."""
    return {
        **rule,
        "ruleset_source_type": "Repository",
        "ruleset_source": repo.full_name,
        "ruleset_id": ruleset_id,
    }
