"""Pure: render the fake's state as GitHub REST JSON (users, apps, repositories, issues, comments).

Shapes follow GitHub's REST reference closely enough that githubkit's generated models parse them;
pull requests and check runs live in github_json_pulls.py. API and web URLs share one base, the
fake's address, because the fake serves both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.fakes.github_state import (
    REACTION_CONTENTS,
    AppState,
    CommentState,
    InstallationState,
    IssueState,
    PullState,
    ReactionState,
    RepoState,
    iso,
    node_id,
)

Json = dict[str, Any]


@dataclass(frozen=True)
class Site:
    """What renderers need besides the object: where the fake lives and who is an organisation."""

    base: str  # http://127.0.0.1:PORT, no trailing slash
    organizations: frozenset[str] = frozenset()
    apps: tuple[AppState, ...] = ()

    def app_by_id(self, app_id: int | None) -> AppState | None:
        return next((app for app in self.apps if app.id == app_id), None)


def user_id(login: str) -> int:
    digest = hashlib.sha1(login.lower().encode(), usedforsecurity=False).hexdigest()
    return 10_000 + int(digest[:7], 16)


def user_json(site: Site, login: str) -> Json:
    is_bot = login.endswith("[bot]")
    kind = "Bot" if is_bot else "Organization" if login in site.organizations else "User"
    api = f"{site.base}/users/{login}"
    uid = user_id(login)
    return {
        "login": login,
        "id": uid,
        "node_id": node_id("BOT" if is_bot else "U", uid),
        "avatar_url": f"{site.base}/avatars/u/{uid}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{site.base}/apps/{login[:-5]}" if is_bot else f"{site.base}/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def app_json(site: Site, app: AppState) -> Json:
    return {
        "id": app.id,
        "slug": app.slug,
        "node_id": node_id("A", app.id),
        "client_id": app.client_id,
        "owner": user_json(site, app.owner),
        "name": app.name,
        "description": app.description,
        "external_url": app.external_url,
        "html_url": f"{site.base}/apps/{app.slug}",
        "created_at": iso(app.created_at),
        "updated_at": iso(app.created_at),
        "permissions": dict(app.permissions),
        "events": list(app.events),
        "installations_count": 1,
    }


def installation_json(site: Site, inst: InstallationState, app: AppState) -> Json:
    return {
        "id": inst.id,
        "client_id": app.client_id,
        "account": user_json(site, inst.account),
        "repository_selection": inst.repository_selection,
        "access_tokens_url": f"{site.base}/app/installations/{inst.id}/access_tokens",
        "repositories_url": f"{site.base}/installation/repositories",
        "html_url": f"{site.base}/organizations/{inst.account}/settings/installations/{inst.id}",
        "app_id": inst.app_id,
        "app_slug": app.slug,
        "target_id": user_id(inst.account),
        "target_type": "Organization" if inst.account in site.organizations else "User",
        "permissions": dict(inst.permissions),
        "events": list(inst.events),
        "created_at": iso(inst.created_at),
        "updated_at": iso(inst.created_at),
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }


_REPO_URL_TEMPLATES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def repo_json(site: Site, repo: RepoState | None, *, full_name: str | None = None) -> Json:
    """The `Repository` shape (nested in pull requests); `full_name` renders an unknown fork."""
    name = repo.full_name if repo is not None else str(full_name)
    owner, short = name.split("/", 1)
    api = f"{site.base}/repos/{name}"
    created = iso(repo.created_at) if repo is not None else "2020-01-01T00:00:00Z"
    private = repo.private if repo is not None else False
    data: Json = {
        "id": repo.id if repo is not None else user_id(name),
        "node_id": node_id("R", repo.id if repo is not None else user_id(name)),
        "name": short,
        "full_name": name,
        "owner": user_json(site, owner),
        "private": private,
        "html_url": f"{site.base}/{name}",
        "description": repo.description if repo is not None else None,
        "fork": repo is None,
        "url": api,
        **{key: api + suffix for key, suffix in _REPO_URL_TEMPLATES.items()},
        "git_url": f"git://{site.base.split('://', 1)[-1]}/{name}.git",
        "ssh_url": f"git@{site.base.split('://', 1)[-1].split(':')[0]}:{name}.git",
        "clone_url": f"{site.base}/{name}.git",
        "svn_url": f"{site.base}/{name}",
        "mirror_url": None,
        "homepage": None,
        "language": "Python",
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 100,
        "default_branch": repo.default_branch if repo is not None else "main",
        "open_issues_count": _open_issues(repo),
        "open_issues": _open_issues(repo),
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": True,
        "has_wiki": False,
        "has_pages": False,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private" if private else "public",
        "pushed_at": created,
        "created_at": created,
        "updated_at": created,
        "allow_forking": True,
        "web_commit_signoff_required": False,
        "license": None,
    }
    return data


def _open_issues(repo: RepoState | None) -> int:
    if repo is None:
        return 0
    return sum(1 for issue in repo.issues.values() if issue.state == "open")


def full_repo_json(site: Site, repo: RepoState) -> Json:
    """`GET /repos/{owner}/{repo}`: the `FullRepository` shape."""
    data = repo_json(site, repo)
    data.update(
        {
            "subscribers_count": 1,
            "network_count": 0,
            "allow_squash_merge": True,
            "allow_merge_commit": True,
            "allow_rebase_merge": True,
            "allow_auto_merge": False,
            "delete_branch_on_merge": False,
            "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
            "squash_merge_commit_message": "COMMIT_MESSAGES",
            "merge_commit_title": "MERGE_MESSAGE",
            "merge_commit_message": "PR_TITLE",
        }
    )
    if repo.owner in site.organizations:
        data["organization"] = user_json(site, repo.owner)
    return data


def author_association(repo: RepoState | None, login: str) -> str:
    if repo is None or login.endswith("[bot]"):
        return "NONE"
    if login.lower() == repo.owner.lower():
        return "OWNER"
    role = repo.permissions.get(login.lower(), "none")
    return "NONE" if role == "none" else "COLLABORATOR"


def reaction_rollup(url: str, reactions: Iterable[ReactionState]) -> Json:
    counts = {content: 0 for content in REACTION_CONTENTS}
    for reaction in reactions:
        counts[reaction.content] += 1
    return {"url": url, "total_count": sum(counts.values()), **counts}


def label_json(site: Site, repo: str, name: str) -> Json:
    label_id = user_id(f"label:{repo}:{name}")
    return {
        "id": label_id,
        "node_id": node_id("LA", label_id),
        "url": f"{site.base}/repos/{repo}/labels/{name}",
        "name": name,
        "color": "ededed",
        "default": False,
        "description": None,
    }


def issue_json(
    site: Site,
    repo: RepoState,
    issue: IssueState,
    reactions: Iterable[ReactionState],
    comments: int,
) -> Json:
    api = f"{site.base}/repos/{repo.full_name}/issues/{issue.number}"
    kind = "pull" if isinstance(issue, PullState) else "issues"
    app = site.app_by_id(issue.via_app)
    data: Json = {
        "url": api,
        "repository_url": f"{site.base}/repos/{repo.full_name}",
        "labels_url": f"{api}/labels{{/name}}",
        "comments_url": f"{api}/comments",
        "events_url": f"{api}/events",
        "html_url": f"{site.base}/{repo.full_name}/{kind}/{issue.number}",
        "id": issue.id,
        "node_id": node_id("I", issue.id),
        "number": issue.number,
        "title": issue.title,
        "user": user_json(site, issue.user),
        "labels": [label_json(site, repo.full_name, name) for name in issue.labels],
        "state": issue.state,
        "state_reason": "completed" if issue.state == "closed" else None,
        "locked": issue.locked,
        "active_lock_reason": None,
        "assignees": [],
        "milestone": None,
        "comments": comments,
        "created_at": iso(issue.created_at),
        "updated_at": iso(issue.updated_at),
        "closed_at": iso(issue.closed_at),
        "author_association": author_association(repo, issue.user),
        "body": issue.body,
        "reactions": reaction_rollup(f"{api}/reactions", reactions),
        "timeline_url": f"{api}/timeline",
        "performed_via_github_app": app_json(site, app) if app is not None else None,
    }
    if isinstance(issue, PullState):
        pull_api = f"{site.base}/repos/{repo.full_name}/pulls/{issue.number}"
        html = data["html_url"]
        data["draft"] = issue.draft
        data["pull_request"] = {
            "url": pull_api,
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "merged_at": None,
        }
    return data


def comment_json(
    site: Site, repo: RepoState, comment: CommentState, reactions: Iterable[ReactionState]
) -> Json:
    api = f"{site.base}/repos/{repo.full_name}/issues/comments/{comment.id}"
    issue = repo.issues.get(comment.issue_number)
    kind = "pull" if isinstance(issue, PullState) else "issues"
    app = site.app_by_id(comment.via_app)
    return {
        "id": comment.id,
        "node_id": node_id("IC", comment.id),
        "url": api,
        "html_url": (
            f"{site.base}/{repo.full_name}/{kind}/{comment.issue_number}#issuecomment-{comment.id}"
        ),
        "body": comment.body,
        "user": user_json(site, comment.user),
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at),
        "issue_url": f"{site.base}/repos/{repo.full_name}/issues/{comment.issue_number}",
        "author_association": author_association(repo, comment.user),
        "performed_via_github_app": app_json(site, app) if app is not None else None,
        "reactions": reaction_rollup(f"{api}/reactions", reactions),
    }


def reaction_json(site: Site, reaction: ReactionState) -> Json:
    return {
        "id": reaction.id,
        "node_id": node_id("REA", reaction.id),
        "user": user_json(site, reaction.user),
        "content": reaction.content,
        "created_at": iso(reaction.created_at),
    }


def collaborator_permission_json(site: Site, repo: RepoState, login: str) -> Json:
    """GitHub's legacy `permission` folds maintain into write and triage into read."""
    role = repo.permissions.get(login.lower())
    if role is None:
        role = "admin" if login.lower() == repo.owner.lower() else "none"
        if role == "none" and not repo.private:
            role = "read"
    legacy = {"maintain": "write", "triage": "read"}.get(role, role)
    rank = ["none", "read", "triage", "write", "maintain", "admin"].index(role)
    user = user_json(site, login)
    user["permissions"] = {
        "admin": rank >= 5,
        "maintain": rank >= 4,
        "push": rank >= 3,
        "triage": rank >= 2,
        "pull": rank >= 1,
    }
    user["role_name"] = role
    return {"permission": legacy, "role_name": role, "user": user}


def error_json(
    status: int, message: str, documentation_url: str, errors: list[Json] | None
) -> Json:
    data: Json = {"message": message}
    if errors is not None:
        data["errors"] = errors
    data["documentation_url"] = documentation_url
    data["status"] = str(status)
    return data
