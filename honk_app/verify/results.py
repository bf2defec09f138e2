"""Pure: what the repository's own checks said, as plain data that DBOS stores with the run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from honk_app.verify.junit import FailedTest


@dataclass(frozen=True)
class StepResult:
    """One command's outcome, with only the tail of its output (where failures are reported)."""

    command: str
    exit_code: int
    duration_s: float
    timed_out: bool
    output_tail: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class ValidationResult:
    """`ran` is False when the repository configures no test command; `passed` implies `ran`."""

    ran: bool
    passed: bool
    setup: StepResult | None = None
    test: StepResult | None = None
    failures: tuple[FailedTest, ...] = ()
    junit_note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValidationResult:
        def step(raw: dict[str, Any] | None) -> StepResult | None:
            return None if raw is None else StepResult(**raw)

        return cls(
            ran=data["ran"],
            passed=data["passed"],
            setup=step(data.get("setup")),
            test=step(data.get("test")),
            failures=tuple(FailedTest(**f) for f in data.get("failures", ())),
            junit_note=data.get("junit_note"),
        )
