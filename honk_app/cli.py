"""`honk serve` (webhooks, and runs unless --no-worker) and `honk worker` (runs only).

A wrong setting stops either before anything starts: one line per problem on stderr, exit 2.

Files at rest: `main` sets the process umask to 077 before anything is created, so what Honk
writes (the SQLite database and the -wal and -shm files SQLite creates when it pleases, the
repository mirrors, workspaces) is for Honk's user only. A umask also covers files that libraries
and git create, which a chmod after each creation would miss. Commands Honk runs inherit it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import uvicorn

from honk_app import __version__
from honk_app.runs import launch
from honk_app.runs.runtime import current, open_store, private_data_dir, settings_secrets
from honk_app.safety.secret_scan import redact
from honk_app.server import create_app, warn_if_no_anthropic_key
from honk_app.setting_values import shown
from honk_app.settings import PATH_LIMIT, Settings, SettingsError, load_settings
from honk_app.workspace.egress_rules import parse_allow_list

log = logging.getLogger("honk")


def _configure_logging(level: str, known_secrets: Iterable[str] = ()) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    static = list(known_secrets)

    def live() -> list[str]:
        """The runtime's secrets once it runs (they grow with each installation token)."""
        try:
            return current().known_secrets
        except RuntimeError:
            return static

    logging.setLogRecordFactory(redacting_records(logging.getLogRecordFactory(), live))


def redacting_records(
    factory: Callable[..., logging.LogRecord], known_secrets: Callable[[], Iterable[str]]
) -> Callable[..., logging.LogRecord]:
    """A log record factory that redacts each record's message, traceback and stack as it is made.

    Libraries log at debug what they send (the Anthropic SDK logs request bodies with the agent's
    tool output in them); a factory reaches every logger and every handler, uvicorn's included,
    where a handler's filter would miss the handlers others configure.
    """
    formatter = logging.Formatter()

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        # A record whose message cannot be formatted is left for logging to report as it does.
        with contextlib.suppress(Exception):
            secrets = list(known_secrets())
            record.msg = redact(record.getMessage(), secrets)
            record.args = None
            if record.exc_info:
                record.exc_text = redact(formatter.formatException(record.exc_info), secrets)
            if record.stack_info:
                record.stack_info = redact(record.stack_info, secrets)
        return record

    return make


def check_startup(settings: Settings, *, needs_database: bool = True) -> list[str]:
    """Every problem that stops Honk from starting, one line each, no secret in any line."""
    problems = settings.problems()
    try:
        parse_allow_list(settings.HONK_EGRESS_ALLOW)
    except ValueError as exc:
        problems.append(
            "HONK_EGRESS_ALLOW must be comma-separated host names (host, *.domain, either with "
            f":port, or default); {exc}."
        )
    if needs_database:
        problems += _directory_problems(settings)
    if needs_database and not problems:
        try:
            open_store(settings).engine.dispose()
        except Exception as exc:
            problems.append(
                "HONK_DATABASE_URL must name a database Honk can reach and write; connecting "
                f"or migrating failed ({type(exc).__name__})."
            )
    return problems


def _directory_problems(settings: Settings) -> list[str]:
    """The data directory is made (owner-only) now: a path that cannot be one is said by name."""
    problems: list[str] = []
    workspaces = settings.HONK_WORKSPACE_DIR
    if workspaces is not None and workspaces.exists() and not workspaces.is_dir():
        path = shown(str(workspaces), PATH_LIMIT)
        problems.append(f"HONK_WORKSPACE_DIR must be a directory; {path} is a file.")
    try:
        private_data_dir(settings.data_dir)
    except OSError as exc:
        reason = "it is a file" if settings.data_dir.is_file() else exc.strerror or "OSError"
        problems.append(
            "HONK_DATA_DIR must be a directory Honk can create and write; "
            f"{shown(str(settings.data_dir), PATH_LIMIT)} cannot be one ({reason})."
        )
    return problems


def _sqlite_mode(command: str, settings: Settings) -> list[str]:
    """`honk worker` and `serve --no-worker` split Honk into processes sharing one database;
    SQLite is one process's file, so with it the work stays in `honk serve`. Said first, then
    what else is wrong (nothing else on a fresh machine: `honk serve` sets the App up)."""
    line = (
        f"{command} is for the PostgreSQL mode (HONK_DATABASE_URL=postgresql://…); with SQLite, "
        "run `honk serve`, which runs the work itself."
    )
    others = [] if settings.needs_setup else check_startup(settings, needs_database=False)
    return [line, *others]


def _fail(problems: list[str]) -> int:
    for line in problems:
        print(f"honk: {line}", file=sys.stderr)
    return 2


def serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    _configure_logging(settings.LOG_LEVEL, settings_secrets(settings))
    if args.no_worker and not settings.is_postgres:
        return _fail(_sqlite_mode("honk serve --no-worker", settings))
    if not settings.needs_setup:
        problems = check_startup(settings)
        if problems:
            return _fail(problems)
    host = args.host or settings.HOST
    port = args.port or settings.PORT
    shown_host = "localhost" if host in ("0.0.0.0", "::") else host  # noqa: S104
    app = create_app(
        settings,
        role="web" if args.no_worker else "serve",
        env_path=Path(args.env_file),
        listen_url=f"http://{shown_host}:{port}",
    )
    loop = "uvloop" if _has("uvloop") else "asyncio"
    log.info("Honk %s listening on http://%s:%d%s", __version__, host, port, settings.WEBHOOK_PATH)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop=loop,
        http="httptools" if _has("httptools") else "h11",
        access_log=settings.HONK_ACCESS_LOG,
        log_level=settings.LOG_LEVEL.lower(),
        timeout_graceful_shutdown=5,
    )
    return 0


def worker(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    _configure_logging(settings.LOG_LEVEL, settings_secrets(settings))
    if not settings.is_postgres:
        return _fail(_sqlite_mode("honk worker", settings))
    problems = check_startup(settings)
    if problems:
        return _fail(problems)
    warn_if_no_anthropic_key(settings, Path(args.env_file))  # the worker is where runs fail
    asyncio.run(_work_forever(settings, Path(args.env_file)))
    return 0


async def _work_forever(settings: Settings, env_file: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    rt = await launch.start(settings, "worker", env_file)
    log.info("Honk worker %s started (executor %s)", __version__, settings.executor_id("worker"))
    try:
        await stop.wait()
    finally:
        await launch.stop(rt)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="honk", description="Honk, a self-hosted coding bot for GitHub."
    )
    parser.add_argument("--version", action="version", version=f"honk {__version__}")
    parser.add_argument("--env-file", default=".env", help="settings file (default .env)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_serve = sub.add_parser("serve", help="serve webhooks (and run jobs unless --no-worker)")
    p_serve.add_argument("--host", help="address to listen on (default HOST or 0.0.0.0)")
    p_serve.add_argument("--port", type=int, help="port to listen on (default PORT or 3000)")
    p_serve.add_argument(
        "--no-worker", action="store_true", help="only accept and enqueue (Postgres mode)"
    )
    p_serve.set_defaults(func=serve)
    p_worker = sub.add_parser("worker", help="run queued jobs (Postgres mode)")
    p_worker.set_defaults(func=worker)
    return parser


def main(argv: list[str] | None = None) -> None:
    os.umask(0o077)  # before any file is created: see the module's docstring
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except SettingsError as exc:  # a wrong setting: its lines, not a traceback
        code = _fail(exc.lines)
    sys.exit(code)
