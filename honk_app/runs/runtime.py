"""What a durable run needs and cannot carry in its stored inputs: settings, store, GitHub App.

Workflow inputs are plain JSON. The runtime is built once at startup (runs/launch.py) and each
workflow reads it once, with `current()`, and passes it to its steps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import pickle
import stat
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbos import Serializer

from honk_app.github.app import GitHubApp
from honk_app.models import Role
from honk_app.runs.store import RunStore, make_engine
from honk_app.safety.secret_scan import redact_value, secret_parts
from honk_app.settings import Settings, SettingsError
from honk_app.triggers import TriggerRules
from honk_app.workspace.egress import EgressProxy
from honk_app.workspace.egress_rules import parse_allow_list
from honk_app.workspace.pool import sweep_stale
from honk_app.workspace.sandbox import NO_SANDBOX, UNCONFINED, bwrap_usable

log = logging.getLogger("honk.runtime")


@dataclass
class Runtime:
    settings: Settings
    store: RunStore
    github: GitHubApp
    rules: TriggerRules
    role: Role = "serve"
    static_secrets: list[str] = field(default_factory=list)  # from the settings
    env_file: Path = Path(".env")
    egress: EgressProxy | None = None  # the one way out of a sandbox; None in the web role

    def __post_init__(self) -> None:
        self.static_secrets = secret_parts(self.static_secrets)

    @property
    def known_secrets(self) -> list[str]:
        """Every secret value this process holds now: the settings' and the App's key, and each
        installation token minted so far (patterns alone miss a token glued to other text)."""
        # static_secrets were split into parts once (__post_init__); only the App's live
        # values are split here, on every DBOS write and log record
        live = secret_parts(self.github.known_secrets())
        return list(dict.fromkeys([*self.static_secrets, *live]))

    @property
    def workspace_root(self) -> Path:
        """Per executor, so one process's startup sweep never touches another's workspaces."""
        root = self.settings.HONK_WORKSPACE_DIR or Path(tempfile.gettempdir()) / "honk-workspaces"
        return (root / self.executor_id).resolve()

    @property
    def executor_id(self) -> str:
        return self.settings.executor_id(self.role)

    def secret_paths(self) -> list[Path]:
        """What a sandboxed command must not read even where the filesystem is visible: Honk's
        data, its settings file and key, and the usual credential stores of the user it runs as."""
        paths = [self.settings.data_dir, self.env_file.resolve(), Path(".env").resolve()]
        if self.settings.PRIVATE_KEY_PATH is not None:
            paths.append(self.settings.PRIVATE_KEY_PATH.resolve())
        home = Path.home()
        paths += [home / name for name in CREDENTIAL_STORES]
        return [p for p in dict.fromkeys(paths) if p.exists()]


# Where tools keep credentials in a home directory; hidden from every sandboxed command.
CREDENTIAL_STORES = (
    ".ssh",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".docker",
    ".kube",
    ".git-credentials",
    ".netrc",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".gnupg",
    ".claude",
)

_current: Runtime | None = None


def current() -> Runtime:
    """The runtime this process started; what DBOS's workflows are handed when they run."""
    if _current is None:
        raise RuntimeError("Honk's runtime is not started")
    return _current


def settings_secrets(settings: Settings) -> list[str]:
    """The secret values in the settings, the private key also as the PEM it is read into."""
    values = settings.known_secrets()
    # No key yet (first start, before setup) or an unreadable one: nothing more to redact.
    with contextlib.suppress(SettingsError, OSError, ValueError):
        values.append(settings.private_key_pem())
    return secret_parts(values)


class RedactingSerializer(Serializer):
    """DBOS's pickle format, with every string redacted before it is written.

    DBOS stores workflow inputs, step results, errors, events and streams through its serializer;
    redacting there keeps secrets an agent printed (its summary, a test's output) out of every
    DBOS table, whichever step returned them. Rows of the default format still read back.
    """

    def __init__(self, known_secrets: Callable[[], Iterable[str]]) -> None:
        self._known_secrets = known_secrets

    def serialize(self, data: Any) -> str:
        clean = redact_value(data, self._known_secrets())
        return base64.b64encode(pickle.dumps(clean)).decode("ascii")

    def deserialize(self, serialized_data: str) -> Any:
        return pickle.loads(base64.b64decode(serialized_data))  # noqa: S301 - DBOS's own rows

    def name(self) -> str:
        return "honk_redacted_pickle"


def open_store(settings: Settings) -> RunStore:
    """Connect and migrate Honk's own tables; raises if the database is unreachable."""
    private_data_dir(settings.data_dir)
    private_sqlite_file(settings.database_url)
    store = RunStore(make_engine(settings.database_url), settings_secrets(settings))
    store.migrate()
    return store


def private_data_dir(path: Path) -> None:
    """Create HONK_DATA_DIR for Honk's user only (700), and take group and other access off a
    directory an older Honk or a person left open: its database holds every run's record.
    Files Honk creates later are owner-only through the umask the CLI sets (cli.py)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    opened = [p for p in _tree(path) if _owner_only(p)]
    if opened:
        log.warning(
            "HONK_DATA_DIR %s was open to other users of this machine: made %d files and "
            "directories in it readable by this user only",
            path,
            len(opened),
        )


def private_sqlite_file(database_url: str) -> None:
    """Create a SQLite database 600 before SQLite does (it gives its -wal and -shm files the
    database's mode), and tighten one that exists, wherever HONK_DATABASE_URL puts it."""
    if not database_url.startswith("sqlite:///"):
        return
    name = database_url.removeprefix("sqlite:///").partition("?")[0]
    if not name or name == ":memory:":
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (name, f"{name}-wal", f"{name}-shm", f"{name}-journal"):
        _owner_only(Path(path))


def _tree(top: Path) -> Iterable[Path]:
    """`top` and everything under it, symlinks not followed."""
    yield top
    for root, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            yield Path(root, name)


def _owner_only(path: Path) -> bool:
    """Drop group and other permissions from `path` (never through a symlink); True if any."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode) or not mode & 0o077:
            return False
        os.chmod(path, stat.S_IMODE(mode) & 0o700)
    except OSError:  # gone, or another user's: what cannot be changed is left as it is
        return False
    return True


async def open_runtime(settings: Settings, role: Role, env_file: Path = Path(".env")) -> Runtime:
    """Connect the store and the GitHub App; a process that runs work also sweeps its old
    workspaces. Becomes `current()` until `close_runtime`."""
    global _current
    store = await asyncio.to_thread(open_store, settings)
    github = GitHubApp(
        app_id=settings.app_id, private_key_pem=settings.private_key_pem(), api_url=settings.api_url
    )
    rules = TriggerRules(
        label=settings.HONK_LABEL,
        command_word=settings.HONK_COMMAND,
        app_id=settings.app_id,
        app_slug=None,
        allowed_bots=settings.allowed_bots,
        repo_allowlist=settings.repo_allowlist,
    )
    rt = Runtime(settings, store, github, rules, role, settings_secrets(settings), env_file)
    if role != "web":
        if settings.HONK_SANDBOX == "off":
            log.warning(UNCONFINED)
        elif not await asyncio.to_thread(bwrap_usable):
            log.error(NO_SANDBOX)
        for path in await sweep_stale(rt.workspace_root):
            log.info("removed stale workspace %s", path)
        allow = parse_allow_list(settings.HONK_EGRESS_ALLOW)
        rt.egress = await asyncio.to_thread(EgressProxy(allow).start)
    _current = rt
    return rt


async def close_runtime(rt: Runtime) -> None:
    global _current
    if _current is rt:
        _current = None
    if rt.egress is not None:
        # Called inline: at shutdown DBOS.destroy has already shut the loop's default executor,
        # so `asyncio.to_thread` would raise; stopping joins one thread, briefly.
        rt.egress.stop()
    await rt.github.aclose()
    rt.store.engine.dispose()
