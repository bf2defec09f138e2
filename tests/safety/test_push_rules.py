"""Pure: where Honk may push, and the sentence a maintainer reads when it may not."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from honk_app.safety.push_rules import (
    GUARDING_RULES,
    HARMLESS_RULES,
    OWN_PREFIX,
    BranchFacts,
    PushTarget,
    guarding_rules,
    needs_facts,
    push_refusal,
)
from honk_app.workspace.git import BRANCH_PREFIX, branch_name

REPO = "octo-org/hello-world"


def pull(branch: str, base: str = "main", head_repo: str = REPO) -> PushTarget:
    return PushTarget(REPO, branch, "main", base, head_repository=head_repo)


def own(branch: str, default: str = "main") -> PushTarget:
    return PushTarget(REPO, branch, default, default)


@pytest.mark.parametrize(
    ("target", "facts", "refusal"),
    [
        (own("honk/42-fix-it"), None, None),
        (pull("feature"), BranchFacts(), None),
        (pull("honk/42-fix-it"), BranchFacts(), None),  # Honk's own pull request
        (pull("feature"), BranchFacts(rule_types=("non_fast_forward", "deletion")), None),
        (pull("feature"), BranchFacts(rule_types=("required_linear_history", "creation")), None),
        (
            pull("main", base="release"),
            BranchFacts(),
            "Honk does not push to `main`: it is this repository's default branch; ask on a pull "
            "request from a feature branch.",
        ),
        (
            pull("Main", base="release"),
            BranchFacts(),
            "Honk does not push to `Main`: it is this repository's default branch; ask on a pull "
            "request from a feature branch.",
        ),
        (
            pull("release", base="RELEASE"),
            BranchFacts(),
            "Honk does not push to `release`: it is the branch this pull request merges into.",
        ),
        (
            pull("release/2.x"),
            BranchFacts(protected=True),
            "Honk does not push to `release/2.x`: it is a protected branch; ask on a pull request "
            "from a feature branch.",
        ),
        (
            pull("release"),
            BranchFacts(rule_types=("deletion", "pull_request", "update", "pull_request")),
            "Honk does not push to `release`: a ruleset guards it (`pull_request`, `update`); ask "
            "on a pull request from a feature branch.",
        ),
        (
            pull("signed"),
            BranchFacts(rule_types=("required_signatures",)),
            "Honk does not push to `signed`: a ruleset guards it (`required_signatures`); ask on "
            "a pull request from a feature branch.",
        ),
        (
            pull("future"),
            BranchFacts(rule_types=("some_rule_github_adds_later",)),
            "Honk does not push to `future`: a ruleset guards it "
            "(`some_rule_github_adds_later`); ask on a pull request from a feature branch.",
        ),
        (
            pull("patch-1", head_repo="mona/hello-world"),
            BranchFacts(),
            "Honk does not push to `patch-1`: it belongs to the fork `mona/hello-world`, not to "
            "this repository.",
        ),
        (
            pull("feature", head_repo="OCTO-ORG/Hello-World"),  # GitHub's names ignore case
            BranchFacts(),
            None,
        ),
        (
            pull("patch-1", head_repo=""),
            BranchFacts(),
            "Honk does not push to `patch-1`: the repository it came from was deleted.",
        ),
        (
            pull("gone"),
            BranchFacts(exists=False),
            "Honk cannot push to `gone`: the branch no longer exists in this repository.",
        ),
        (
            pull("feature"),
            None,
            "Honk does not push to `feature`: GitHub was not asked whether the branch is guarded.",
        ),
        (
            own("feature"),
            None,
            "Honk pushes only to its own `honk/…` branches, not to `feature`.",
        ),
        (
            own("honk/1-x", default="honk/1-x"),
            None,
            "Honk does not push to `honk/1-x`: it is this repository's default branch; ask on a "
            "pull request from a feature branch.",
        ),
        (
            pull("we`ird`"),
            BranchFacts(protected=True),
            "Honk does not push to `weird`: it is a protected branch; ask on a pull request from "
            "a feature branch.",
        ),
    ],
    ids=[
        "own-branch",
        "same-repo-feature",
        "same-repo-honk-branch",
        "harmless-rules",
        "more-harmless-rules",
        "main-into-release",
        "default-in-other-case",
        "base-branch",
        "protected",
        "ruleset-guarded",
        "signatures-required",
        "unknown-rule",
        "fork",
        "same-repo-other-case",
        "deleted-fork",
        "missing-branch",
        "not-asked",
        "own-outside-prefix",
        "own-is-default",
        "backticks-in-name",
    ],
)
def test_where_honk_may_push(
    target: PushTarget, facts: BranchFacts | None, refusal: str | None
) -> None:
    assert push_refusal(target, facts) == refusal


def test_only_a_pull_requests_head_branch_needs_github_asked() -> None:
    assert needs_facts(pull("feature"))
    assert not needs_facts(own("honk/1-x"))


def test_every_rule_type_githubkit_knows_is_sorted_into_guarding_or_harmless() -> None:
    from githubkit_schemas.latest import models

    known: set[str] = set()
    for name in dir(models):
        if re.fullmatch(r"RepositoryRuleDetailedOneof\d+", name):
            known |= set(get_args(getattr(models, name).model_fields["type"].annotation))
    assert len(known) >= 25
    assert known == GUARDING_RULES | HARMLESS_RULES
    assert not GUARDING_RULES & HARMLESS_RULES
    assert guarding_rules(("deletion", "update", "update")) == ["update"]


def test_the_prefix_is_the_one_honk_names_its_branches_with() -> None:
    assert OWN_PREFIX == BRANCH_PREFIX
    assert branch_name(42, "Crash on start").startswith(OWN_PREFIX)
