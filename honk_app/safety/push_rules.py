"""Pure: which branch Honk may push a run's commits to, and the one sentence when it may not.

Honk pushes to its own `honk/…` branches, or to the head branch of a pull request in the same
repository that people do not guard: not the default branch, not the branch the pull request
merges into, not a branch with classic protection, and not one an active ruleset guards.
`/honk` on a pull request from `main` into `release` must never put the agent's commits on `main`.

Which ruleset rules guard a branch (GET /repos/{o}/{r}/rules/branches/{branch} lists the active
ones): a rule that restricts who or how the branch is updated directly (`update`), that routes
changes through pull requests or gates them on checks before the ref moves (`pull_request`,
`required_status_checks`, `required_deployments`, `merge_queue`, `workflows`, `code_scanning`,
`code_quality`, `code_coverage`: the marks of a branch people merge *into*), or that Honk's
unsigned commits would break (`required_signatures`). Rules that many organisations put on every
branch and that Honk's fast-forward commit satisfies do not: `creation`, `deletion`,
`non_fast_forward`, `required_linear_history`, name and metadata patterns, file restrictions and
review automation. A rule type this module does not know guards the branch: GitHub adds types, and
an unknown one is treated as the strictest.
"""

from __future__ import annotations

from dataclasses import dataclass

OWN_PREFIX = "honk/"  # = workspace.git.BRANCH_PREFIX (this layer may not import it; a test checks)
MAX_NAME_CHARS = 100

GUARDING_RULES = frozenset(
    {
        "update",
        "pull_request",
        "required_status_checks",
        "required_deployments",
        "merge_queue",
        "workflows",
        "code_scanning",
        "code_quality",
        "code_coverage",
        "required_signatures",
    }
)
HARMLESS_RULES = frozenset(
    {
        "creation",
        "deletion",
        "non_fast_forward",
        "required_linear_history",
        "commit_message_pattern",
        "commit_author_email_pattern",
        "committer_email_pattern",
        "branch_name_pattern",
        "tag_name_pattern",
        "copilot_code_review",
        "license_compliance_scanning",
        "file_path_restriction",
        "max_file_path_length",
        "file_extension_restriction",
        "max_file_size",
    }
)
ASK_ELSEWHERE = "ask on a pull request from a feature branch"


@dataclass(frozen=True)
class BranchFacts:
    """What GitHub says about one branch: whether it exists, its classic protection, and the
    types of the active ruleset rules that apply to it."""

    exists: bool = True
    protected: bool = False
    rule_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class PushTarget:
    """Where a run would push. `head_repository` is None for Honk's own branch (an issue run);
    for a pull request it is the repository its head branch lives in ("" if it was deleted)."""

    repository: str
    branch: str
    default_branch: str
    base_branch: str
    head_repository: str | None = None

    @property
    def is_own(self) -> bool:
        return self.head_repository is None


def needs_facts(target: PushTarget) -> bool:
    """Whether GitHub must be asked about the branch: only for a pull request's head branch."""
    return not target.is_own


def guarding_rules(rule_types: tuple[str, ...]) -> list[str]:
    """The rule types that guard a branch, each once, in the order GitHub listed them."""
    found: list[str] = []
    for rule in rule_types:
        if (rule in GUARDING_RULES or rule not in HARMLESS_RULES) and rule not in found:
            found.append(rule)
    return found


def _name(branch: str) -> str:
    """A branch name as inline code: backticks dropped, long names cut."""
    text = branch.replace("`", "")
    return f"`{text[:MAX_NAME_CHARS]}{'…' if len(text) > MAX_NAME_CHARS else ''}`"


def push_refusal(target: PushTarget, facts: BranchFacts | None = None) -> str | None:
    """None when Honk may push to `target.branch`; else why not, in one sentence.

    Branch names are compared case-insensitively: on GitHub `Main` and `main` cannot both be
    branches of one repository that people tell apart, so the stricter reading wins."""
    branch, name = target.branch, _name(target.branch)
    folded = branch.casefold()
    if folded == target.default_branch.casefold():
        return (
            f"Honk does not push to {name}: it is this repository's default branch; "
            f"{ASK_ELSEWHERE}."
        )
    if folded == target.base_branch.casefold():
        return f"Honk does not push to {name}: it is the branch this pull request merges into."
    if target.is_own:
        if not branch.startswith(OWN_PREFIX):
            return f"Honk pushes only to its own `{OWN_PREFIX}…` branches, not to {name}."
        return None
    if not target.head_repository:
        return f"Honk does not push to {name}: the repository it came from was deleted."
    if target.head_repository.casefold() != target.repository.casefold():
        return (
            f"Honk does not push to {name}: it belongs to the fork "
            f"{_name(target.head_repository)}, not to this repository."
        )
    if facts is None:
        return f"Honk does not push to {name}: GitHub was not asked whether the branch is guarded."
    if not facts.exists:
        return f"Honk cannot push to {name}: the branch no longer exists in this repository."
    if facts.protected:
        return f"Honk does not push to {name}: it is a protected branch; {ASK_ELSEWHERE}."
    guarding = guarding_rules(facts.rule_types)
    if guarding:
        rules = ", ".join(_name(rule) for rule in guarding[:5])
        return f"Honk does not push to {name}: a ruleset guards it ({rules}); {ASK_ELSEWHERE}."
    return None
