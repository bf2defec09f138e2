"""`honk serve` (webhooks, and runs unless --no-worker) and `honk worker` (runs only)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import uvicorn

from honk_app import __version__
from honk_app.runs import launch
from honk_app.runs.runtime import current, open_store, settings_secrets
from honk_app.safety.secret_scan import redact
from honk_app.server import create_app
from honk_app.settings import Settings, load_settings
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
        problems.append(f"HONK_EGRESS_ALLOW: {exc}")
    if needs_database and not problems:
        try:
            open_store(settings).engine.dispose()
        except Exception as exc:
            kind = type(exc).__name__
            problems.append(
                f"HONK_DATABASE_URL: the database cannot be reached or migrated ({kind})."
            )
    return problems


def _fail(problems: list[str]) -> int:
    for line in problems:
        print(f"honk: {line}", file=sys.stderr)
    return 2


def serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    _configure_logging(settings.LOG_LEVEL, settings_secrets(settings))
    if not settings.needs_setup:
        problems = check_startup(settings)
        if problems:
            return _fail(problems)
    if args.no_worker and not settings.is_postgres:
        return _fail(
            [
                "--no-worker needs a Postgres HONK_DATABASE_URL: "
                "with SQLite, one process does it all."
            ]
        )
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
    problems = check_startup(settings)
    if problems:
        return _fail(problems)
    if not settings.is_postgres:
        return _fail(
            ["honk worker needs a Postgres HONK_DATABASE_URL; use `honk serve` with SQLite."]
        )
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
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
