"""What the work step hands to publish and report: plain, JSON-able, stored by DBOS."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from honk_app.models import AgentOutcome, Usage


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
    changed_files: list[tuple[str, int, int]] = field(default_factory=list)
    fix_rounds: int = 0
    duration_s: float = 0.0
    limits: dict[str, Any] = field(default_factory=dict)
    draft_always: bool = False

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
