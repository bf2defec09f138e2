"""Plain data shared by Honk's modules: what a delivery asks for, and what a run produced.

Everything here is immutable, serialisable to JSON (runs are durable workflows whose inputs and
outputs are stored), and free of I/O.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal


class Command(enum.StrEnum):
    """What a trigger asks Honk to do."""

    RUN = "run"
    HELP = "help"
    STOP = "stop"
    RETRY = "retry"
    STATUS = "status"
    UNKNOWN = "unknown"  # `/honk` followed by nothing usable: answered with usage


_ID_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")

TriggerSource = Literal["label", "issue_comment", "review_comment", "review", "check_run"]


@dataclass(frozen=True)
class Target:
    """One issue or pull request: the unit a run works on, and a queue partition."""

    owner: str
    repo: str
    number: int
    is_pull_request: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def key(self) -> str:
        """Queue partition key `owner/repo#number`, case-folded as GitHub's names are."""
        return f"{self.owner}/{self.repo}#{self.number}".lower()


@dataclass(frozen=True)
class CodeLocation:
    """Where a review comment sits in a pull request's diff."""

    path: str
    line: int | None = None
    side: str | None = None
    diff_hunk: str | None = None


@dataclass(frozen=True)
class Repository:
    """What the webhook tells us about the repository, so a run need not ask again."""

    full_name: str
    clone_url: str
    default_branch: str
    private: bool = True
    id: int = 0

    @property
    def web_url(self) -> str:
        """The GitHub host this repository lives on (github.com or an Enterprise server), read
        from the signed payload's clone URL: the one host published links may point to."""
        scheme, sep, rest = self.clone_url.partition("://")
        host = rest.split("/", 1)[0]
        if sep and scheme in ("http", "https") and host and "@" not in host:
            return f"{scheme}://{host}"
        return "https://github.com"


@dataclass(frozen=True)
class Trigger:
    """A delivery that asks Honk for something. Built by `triggers.decide`, consumed by runs."""

    command: Command
    source: TriggerSource
    target: Target
    repository: Repository
    installation_id: int
    delivery_id: str
    sender_login: str
    sender_id: int
    sender_type: str = "User"
    instruction: str = ""  # text after the command word, and the lines after it
    command_line: str = ""  # the whole triggering line, quoted in replies
    comment_id: int | None = None  # issue comment, review comment or review id
    location: CodeLocation | None = None  # for review comments
    head_ref: str | None = None  # pull request head branch, when the payload says
    head_repo_full_name: str | None = None  # fork detection, when the payload says
    head_sha: str | None = None
    retry_of: str | None = None  # run id of a check run being re-requested
    title: str = ""
    body: str = ""  # issue or pull request body (untrusted)
    # What the signed body names (a comment's id, a labeling); "" falls back to the delivery id,
    # which is not signed: a body re-sent under a new delivery id must not be a second run.
    run_key: str = ""

    @property
    def run_id(self) -> str:
        """Deterministic workflow id: the same comment or labeling maps to the same run."""
        if self.run_key:
            return f"honk-{self.run_key}"
        delivery = self.delivery_id
        if not _ID_SAFE.fullmatch(delivery):  # kept within the run marker's charset
            delivery = "d" + hashlib.sha256(delivery.encode()).hexdigest()[:32]
        suffix = f"-c{self.comment_id}" if self.comment_id is not None else ""
        return f"honk-{delivery}{suffix}"

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types. By hand: `dataclasses.asdict` deep-copies and was a tenth of the
        webhook path's CPU for a trigger."""
        data = dict(self.__dict__)
        data["command"] = self.command.value
        data["target"] = dict(self.target.__dict__)
        data["repository"] = dict(self.repository.__dict__)
        if self.location is not None:
            data["location"] = dict(self.location.__dict__)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trigger:
        data = dict(data)
        data["command"] = Command(data["command"])
        data["target"] = Target(**data["target"])
        data["repository"] = Repository(**data["repository"])
        if data.get("location") is not None:
            data["location"] = CodeLocation(**data["location"])
        return cls(**data)


@dataclass(frozen=True)
class Ignored:
    """A delivery Honk does not act on, and why (sent back to GitHub in the 2xx body)."""

    reason: str


@dataclass
class Usage:
    """Token usage, summed over turns."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


AgentStop = Literal["done", "max_turns", "max_cost", "timeout", "error", "cancelled"]


@dataclass
class AgentOutcome:
    """What an agent backend reports when it stops (the same shape for every backend)."""

    stop: AgentStop
    summary: str = ""
    turns: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    error: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one sandboxed command."""

    command: str
    exit_code: int  # -1 when killed by the time limit or cancelled
    output: str  # stdout and stderr interleaved, capped (see `truncated`)
    duration_s: float
    timed_out: bool = False
    truncated: bool = False  # bytes were dropped from the middle of the output

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class Phase(enum.StrEnum):
    QUEUED = "queued"
    WORKSPACE = "workspace"
    AGENT = "agent"
    VALIDATION = "validation"
    PULL_REQUEST = "pull_request"


class PhaseState(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class Outcome(enum.StrEnum):
    VALIDATED = "validated"
    UNVALIDATED = "unvalidated"
    LIMIT = "limit"
    NO_CHANGE = "no_change"
    BLOCKED = "blocked"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNAUTHORIZED = "unauthorized"
    CONFIG_ERROR = "config_error"


Role = Literal["serve", "web", "worker"]
"""What a Honk process does: everything (SQLite), only accept webhooks, or only run work."""


def work_workflow_id(run_id: str) -> str:
    """The id of a run's work, derived from its intake's: enqueueing it twice is one run."""
    return f"{run_id}-work"


Reason = Literal["procs", "memory", "cpu", "file", "disk"]
"""Which sandbox limit stopped a command."""


@dataclass(frozen=True)
class Limits:
    """What a sandboxed command may use; 0 turns one limit off (workspace/limits.py enforces)."""

    max_procs: int = 512
    max_memory_mb: int = 4096
    max_cpu_s: int = 1800
    max_file_mb: int = 1024
    max_disk_mb: int = 4096
    cgroup: str = ""  # "": Honk's own cgroup if delegated; a delegated cgroup's path; "off"

    def sentence(self, reason: Reason) -> str:
        what = {
            "procs": f"it started more than {self.max_procs} processes at once",
            "memory": f"it used more than {self.max_memory_mb} MB of memory",
            "cpu": f"it used more than {self.max_cpu_s} s of CPU",
            "file": f"it tried to write a file larger than {self.max_file_mb} MB",
            "disk": f"the workspace grew past {self.max_disk_mb} MB",
        }[reason]
        return f"The command was stopped: {what}."

    def enabled(self, reason: Reason) -> bool:
        value = {
            "procs": self.max_procs,
            "memory": self.max_memory_mb,
            "cpu": self.max_cpu_s,
            "file": self.max_file_mb,
            "disk": self.max_disk_mb,
        }[reason]
        return value > 0
