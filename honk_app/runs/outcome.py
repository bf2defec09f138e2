"""Pure: what the work step concluded, and what it hands to publish and report (plain JSON,
stored by DBOS)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from honk_app.models import AgentOutcome, CommandResult, Outcome, Trigger, Usage
from honk_app.report.comment import MAX_LISTED_FILES
from honk_app.report.render import GITHUB_URL, Site, defuse_closing, plain_lines, untrusted
from honk_app.report.text import login, plain, shorten
from honk_app.safety.policy import PolicyReport
from honk_app.verify.results import ValidationResult

# Of the changed files, a result keeps the ones the reports list (stored twice, redacted each
# time: a change may name half a million files); `changed_files_total` counts them all.
KEPT_CHANGED_FILES = MAX_LISTED_FILES


@dataclass
class WorkResult:
    outcome: str  # a honk_app.report.Outcome value
    outcome_detail: str = ""
    branch: str = ""
    base_branch: str = ""
    head_sha: str | None = None
    pushed: bool = False
    validated: bool = False
    agent: AgentOutcome = field(default_factory=lambda: AgentOutcome(stop="done"))
    agent_name: str = "builtin"
    model: str = ""
    validation: dict[str, Any] | None = None
    policy_findings: list[str] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    protected_restored: list[str] = field(default_factory=list)
    changed_files: list[tuple[str, int, int]] = field(default_factory=list)  # the first few
    changed_files_total: int = 0  # how many files changed; 0: len(changed_files)
    fix_rounds: int = 0
    duration_s: float = 0.0
    limits: dict[str, Any] = field(default_factory=dict)
    draft_always: bool = False
    unconfined: bool = False  # HONK_SANDBOX=off: every report says so
    egress_refused: list[str] = field(default_factory=list)  # what the egress proxy refused
    notes: list[str] = field(default_factory=list)  # sentences for the report (RunView.notes)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkResult:
        data = dict(data)
        agent = dict(data.pop("agent"))
        agent["usage"] = Usage(**agent.get("usage", {}))
        data["agent"] = AgentOutcome(**agent)
        data["changed_files"] = [tuple(f) for f in data.get("changed_files", [])]
        return cls(**data)


# ---- the work step's decisions, pure --------------------------------------------------------

LIMIT_STOPS = frozenset({"max_turns", "max_cost", "timeout"})


def located(trigger: Trigger) -> str:
    """A review comment's instruction is about a place in the diff: say where."""
    where = trigger.location
    if where is None:
        return trigger.instruction
    line = f" line {where.line}" if where.line else ""
    return f"(review comment on `{where.path}`{line}) {trigger.instruction}".strip()


def as_command_result(validation: ValidationResult) -> CommandResult:
    test = validation.test
    assert test is not None
    return CommandResult(
        test.command, test.exit_code, test.output_tail, test.duration_s, test.timed_out
    )


def co_author(trigger: Trigger) -> str:
    """A `Co-authored-by` value GitHub credits; the login is cut to the characters logins have."""
    name = login(trigger.sender_login) or "ghost"
    return f"{name} <{int(trigger.sender_id)}+{name}@users.noreply.github.com>"


def findings(report: PolicyReport, restored: list[str]) -> list[str]:
    found = [f"Restored protected path `{p}`: Honk may not change it." for p in restored]
    return found + report.findings(include_protected=False)


def no_change(agent: AgentOutcome) -> tuple[str, str]:
    if agent.stop == "error":
        return Outcome.FAILED.value, agent.error or "The agent stopped with an error."
    if agent.stop in LIMIT_STOPS:
        return Outcome.LIMIT.value, agent.error or f"The agent reached a limit ({agent.stop})."
    summary = " ".join(agent.summary.split())[:500]
    return Outcome.NO_CHANGE.value, summary or "The agent made no change."


def pushed_outcome(
    agent: AgentOutcome, validation: ValidationResult | None, passed: bool
) -> tuple[str, str]:
    if agent.stop in LIMIT_STOPS:
        return Outcome.LIMIT.value, agent.error or f"The agent reached a limit ({agent.stop})."
    if agent.stop == "error":
        return (
            Outcome.UNVALIDATED.value,
            f"{agent.error or 'The agent failed'} This is the work so far.",
        )
    if passed:
        return Outcome.VALIDATED.value, ""
    if validation is None or not validation.ran:
        return (
            Outcome.UNVALIDATED.value,
            "No test command is configured, so nothing verified the change.",
        )
    return Outcome.UNVALIDATED.value, "The tests still fail after the agent's fix attempts."


def commit_message(trigger: Trigger, agent: AgentOutcome, github_url: str = GITHUB_URL) -> str:
    """Plain text, read raw by GitHub: the issue title and the agent's summary can neither close
    an issue (merged to the default branch), mention anyone, add a trailer nor break the subject
    line; `Refs #N` and the trailers below are Honk's own."""
    site = Site(github_url, trigger.target.full_name)
    title = shorten(plain(trigger.title, 60, site), 66) or f"#{trigger.target.number}"
    summary = plain_lines(untrusted(agent.summary.strip(), 2000, one_line=False), site)
    body = "\n".join(line[:200] for line in summary.splitlines()).strip("\n")
    # Once more over subject and body together: a keyword may end one line and `#42` open the
    # next. Honk's own `Refs` line and trailer come after.
    written = defuse_closing(f"Honk: {title}\n\n{body}")
    return f"{written}\n\nRefs #{trigger.target.number}\nHonk-Run: {trigger.run_id}"
