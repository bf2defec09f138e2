"""Pure: render pull requests, review comments, check runs and file contents as GitHub JSON."""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Iterable

from tests.fakes.github_json import (
    Json,
    Site,
    app_json,
    author_association,
    label_json,
    reaction_rollup,
    repo_json,
    user_json,
)
from tests.fakes.github_state import (
    CheckRunState,
    PullFile,
    PullState,
    ReactionState,
    RepoState,
    ReviewCommentState,
    blob_sha,
    iso,
    node_id,
)


def _branch_end(site: Site, label_owner: str, ref: str, sha: str, repo: Json) -> Json:
    return {
        "label": f"{label_owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user_json(site, label_owner),
        "repo": repo,
    }


def _links(site: Site, repo: str, pull: PullState) -> Json:
    api = f"{site.base}/repos/{repo}"
    return {
        "self": {"href": f"{api}/pulls/{pull.number}"},
        "html": {"href": f"{site.base}/{repo}/pull/{pull.number}"},
        "issue": {"href": f"{api}/issues/{pull.number}"},
        "comments": {"href": f"{api}/issues/{pull.number}/comments"},
        "review_comments": {"href": f"{api}/pulls/{pull.number}/comments"},
        "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
        "commits": {"href": f"{api}/pulls/{pull.number}/commits"},
        "statuses": {"href": f"{api}/statuses/{pull.head_sha}"},
    }


def pull_simple_json(site: Site, repo: RepoState, pull: PullState, base_sha: str) -> Json:
    """The `PullRequestSimple` shape used by list endpoints."""
    api = f"{site.base}/repos/{repo.full_name}"
    html = f"{site.base}/{repo.full_name}/pull/{pull.number}"
    base_repo = repo_json(site, repo)
    head_repo = base_repo if not pull.is_fork else repo_json(site, None, full_name=pull.head_repo)
    return {
        "url": f"{api}/pulls/{pull.number}",
        "id": pull.id,
        "node_id": node_id("PR", pull.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": f"{api}/issues/{pull.number}",
        "commits_url": f"{api}/pulls/{pull.number}/commits",
        "review_comments_url": f"{api}/pulls/{pull.number}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{api}/issues/{pull.number}/comments",
        "statuses_url": f"{api}/statuses/{pull.head_sha}",
        "number": pull.number,
        "state": pull.state,
        "locked": pull.locked,
        "title": pull.title,
        "user": user_json(site, pull.user),
        "body": pull.body,
        "labels": [label_json(site, repo.full_name, name) for name in pull.labels],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": iso(pull.created_at),
        "updated_at": iso(pull.updated_at),
        "closed_at": iso(pull.closed_at),
        "merged_at": iso(pull.closed_at) if pull.merged else None,
        "assignees": [],
        "requested_reviewers": [user_json(site, login) for login in pull.requested_reviewers],
        "requested_teams": [],
        "head": _branch_end(
            site, pull.head_repo.split("/", 1)[0], pull.head_ref, pull.head_sha, head_repo
        ),
        "base": _branch_end(site, repo.owner, pull.base_ref, base_sha, base_repo),
        "_links": _links(site, repo.full_name, pull),
        "author_association": author_association(repo, pull.user),
        "auto_merge": None,
        "draft": pull.draft,
    }


def pull_json(
    site: Site, repo: RepoState, pull: PullState, base_sha: str, comments: int, review_comments: int
) -> Json:
    """The full `PullRequest` shape of `GET/POST/PATCH .../pulls`."""
    data = pull_simple_json(site, repo, pull, base_sha)
    data.update(
        {
            "merged": pull.merged,
            "mergeable": None if pull.state == "closed" else True,
            "rebaseable": None if pull.state == "closed" else True,
            "mergeable_state": "draft" if pull.draft else "clean",
            "merged_by": None,
            "comments": comments,
            "review_comments": review_comments,
            "maintainer_can_modify": pull.maintainer_can_modify,
            "commits": 1,
            "additions": sum(f.additions for f in pull.files),
            "deletions": sum(f.deletions for f in pull.files),
            "changed_files": len(pull.files),
        }
    )
    return data


def diff_entry_json(site: Site, repo: RepoState, pull: PullState, entry: PullFile) -> Json:
    sha = blob_sha(f"{pull.head_sha}:{entry.filename}".encode())
    data: Json = {
        "sha": sha,
        "filename": entry.filename,
        "status": entry.status,
        "additions": entry.additions,
        "deletions": entry.deletions,
        "changes": entry.additions + entry.deletions,
        "blob_url": f"{site.base}/{repo.full_name}/blob/{pull.head_sha}/{entry.filename}",
        "raw_url": f"{site.base}/{repo.full_name}/raw/{pull.head_sha}/{entry.filename}",
        "contents_url": (
            f"{site.base}/repos/{repo.full_name}/contents/{entry.filename}?ref={pull.head_sha}"
        ),
    }
    if entry.patch is not None:
        data["patch"] = entry.patch
    if entry.previous_filename is not None:
        data["previous_filename"] = entry.previous_filename
    return data


def review_comment_json(
    site: Site, repo: RepoState, comment: ReviewCommentState, reactions: Iterable[ReactionState]
) -> Json:
    api = f"{site.base}/repos/{repo.full_name}/pulls/comments/{comment.id}"
    html = f"{site.base}/{repo.full_name}/pull/{comment.pull_number}#discussion_r{comment.id}"
    pull_api = f"{site.base}/repos/{repo.full_name}/pulls/{comment.pull_number}"
    data: Json = {
        "url": api,
        "pull_request_review_id": comment.review_id,
        "id": comment.id,
        "node_id": node_id("PRRC", comment.id),
        "diff_hunk": comment.diff_hunk,
        "path": comment.path,
        "position": comment.line,
        "original_position": comment.line,
        "commit_id": comment.commit_id,
        "original_commit_id": comment.commit_id,
        "user": user_json(site, comment.user),
        "body": comment.body,
        "created_at": iso(comment.created_at),
        "updated_at": iso(comment.updated_at),
        "html_url": html,
        "pull_request_url": pull_api,
        "author_association": author_association(repo, comment.user),
        "_links": {
            "self": {"href": api},
            "html": {"href": html},
            "pull_request": {"href": pull_api},
        },
        "start_line": None,
        "original_start_line": None,
        "start_side": None,
        "line": comment.line,
        "original_line": comment.line,
        "side": comment.side,
        "subject_type": "line",
        "reactions": reaction_rollup(f"{api}/reactions", reactions),
    }
    if comment.in_reply_to_id is not None:
        data["in_reply_to_id"] = comment.in_reply_to_id
    return data


def check_run_json(
    site: Site, repo: RepoState, run: CheckRunState, pulls: Iterable[PullState], base_sha: str
) -> Json:
    api = f"{site.base}/repos/{repo.full_name}"
    app = site.app_by_id(run.app_id)
    repo_min = {"id": repo.id, "url": api, "name": repo.name}
    return {
        "id": run.id,
        "head_sha": run.head_sha,
        "node_id": node_id("CR", run.id),
        "external_id": run.external_id,
        "url": f"{api}/check-runs/{run.id}",
        "html_url": f"{site.base}/{repo.full_name}/runs/{run.id}",
        "details_url": run.details_url,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at),
        "output": {
            "title": run.output.get("title"),
            "summary": run.output.get("summary"),
            "text": run.output.get("text"),
            "annotations_count": len(run.annotations),
            "annotations_url": f"{api}/check-runs/{run.id}/annotations",
        },
        "name": run.name,
        "check_suite": {"id": run.check_suite_id},
        "app": app_json(site, app) if app is not None else None,
        "pull_requests": [
            {
                "id": pull.id,
                "number": pull.number,
                "url": f"{api}/pulls/{pull.number}",
                "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": repo_min},
                "base": {"ref": pull.base_ref, "sha": base_sha, "repo": repo_min},
            }
            for pull in pulls
        ],
    }


def annotation_json(site: Site, repo: RepoState, run: CheckRunState, item: Json) -> Json:
    return {
        "path": item.get("path"),
        "start_line": item.get("start_line"),
        "end_line": item.get("end_line"),
        "start_column": item.get("start_column"),
        "end_column": item.get("end_column"),
        "annotation_level": item.get("annotation_level"),
        "title": item.get("title"),
        "message": item.get("message"),
        "raw_details": item.get("raw_details"),
        "blob_href": f"{site.base}/{repo.full_name}/blob/{run.head_sha}/{item.get('path')}",
    }


def _content_links(site: Site, repo: RepoState, path: str, ref: str, kind: str, sha: str) -> Json:
    api = f"{site.base}/repos/{repo.full_name}/contents/{path}?ref={ref}"
    git = f"{site.base}/repos/{repo.full_name}/git/{'blobs' if kind == 'file' else 'trees'}/{sha}"
    html = f"{site.base}/{repo.full_name}/{'blob' if kind == 'file' else 'tree'}/{ref}/{path}"
    return {
        "url": api,
        "git_url": git,
        "html_url": html,
        "_links": {"self": api, "git": git, "html": html},
    }


CONTENT_INLINE_BYTES = 1024 * 1024


def content_file_json(site: Site, repo: RepoState, path: str, ref: str, text: str) -> Json:
    """A file from the contents API: base64 wrapped at 60 columns, as GitHub sends it; above
    1 MB only its size, with an empty `content` and `encoding: none`, as GitHub does."""
    raw = text.encode()
    sha = blob_sha(raw)
    inline = len(raw) <= CONTENT_INLINE_BYTES
    encoded = "\n".join(textwrap.wrap(base64.b64encode(raw).decode(), 60)) + "\n" if inline else ""
    return {
        "type": "file",
        "encoding": "base64" if inline else "none",
        "size": len(raw),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": encoded,
        "sha": sha,
        "download_url": f"{site.base}/{repo.full_name}/raw/{ref}/{path}",
        **_content_links(site, repo, path, ref, "file", sha),
    }


def content_entry_json(site: Site, repo: RepoState, path: str, ref: str, text: str | None) -> Json:
    """One item of a directory listing; `text` is None for a subdirectory."""
    kind = "file" if text is not None else "dir"
    sha = blob_sha(text.encode() if text is not None else path.encode())
    return {
        "type": kind,
        "size": len(text.encode()) if text is not None else 0,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": sha,
        "download_url": f"{site.base}/{repo.full_name}/raw/{ref}/{path}"
        if text is not None
        else None,
        **_content_links(site, repo, path, ref, kind, sha),
    }
