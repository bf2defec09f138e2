"""The Starlette app: webhook endpoint, health checks, and setup mode on a fresh install."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from honk_app import events
from honk_app.priority import ANSWERING, GAUGE, meter_database_work
from honk_app.runs import queue, runtime
from honk_app.runs.inbox import Inbox
from honk_app.settings import Settings, load_settings
from honk_app.setup_flow import SetupFlow
from honk_app.triggers import TriggerRules
from honk_app.webhooks import WebhookContext, make_endpoint

log = logging.getLogger("honk.server")

YOUNG_GC_THRESHOLD = 20_000  # allocations between collections of the young generation


def tune_collector() -> None:
    """Called once startup has built what lives as long as the process (models, adapters, SDKs).

    That is frozen out of the collector's way, so collections under load do not walk it again
    and again. And a delivery's parsed payload is hundreds of containers, so the default young
    generation (700) was collected on nearly every delivery: a tenth of the webhook thread's
    time under load (py-spy). What dies young dies by reference counting anyway; a collection
    only walks what is still alive, which is about the deliveries in flight."""
    gc.freeze()
    gc.set_threshold(YOUNG_GC_THRESHOLD)
    gc.enable()  # `honk serve` starts with it off


APP_YML = Path(__file__).resolve().parent.parent / "app.yml"
INBOX_FILE = "inbox.sqlite"
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]  # the endpoint answers 405 itself


class Honk:
    """Holds what can change at run time: setup mode hands over to serving webhooks in place."""

    def __init__(self, settings: Settings, *, role: queue.Role, env_path: Path = Path(".env")):
        self.settings = settings
        self.role = role
        self.env_path = env_path
        self.ctx = WebhookContext(secret=None, rules=TriggerRules(), enqueue=queue.enqueue_intake)
        self.inbox: Inbox | None = None
        self._model_check: asyncio.Task[None] | None = None
        self.started = False

    async def start(self) -> None:
        rt = await runtime.start(self.settings, self.role, self.env_path)
        if not self.settings.is_postgres:
            # One SQLite file has one writer at a time: triggers get a file of their own.
            self.inbox = Inbox(self.settings.data_dir / INBOX_FILE, queue.hand_off_intake)
            await self.inbox.start()
            self.ctx.enqueue = self.inbox.put
        assert self.settings.WEBHOOK_SECRET is not None
        self.ctx.rules = rt.rules
        self.ctx.secret = self.settings.WEBHOOK_SECRET.get_secret_value().encode()
        # Build githubkit's model adapters before serving: done later in a thread, it would hold
        # the GIL for seconds while webhooks wait.
        await asyncio.to_thread(events.warm_up)
        self._model_check = asyncio.create_task(self.ctx.model_check.run_forever())
        # During bursts of deliveries, everything else in the process gets a small CPU budget.
        GAUGE.serve_on_this_loop()
        if self.inbox is not None:
            # Not with Postgres: there the handler enqueues through DBOS's connection pool,
            # and background threads waiting for their budget with a pooled connection each
            # could make a delivery wait for a connection. The workflows' loop is still metered.
            meter_database_work()
            # This process is the only one that queues work: DBOS polls when told there is some.
            queue.gate_polls(self.settings)
        tune_collector()
        self.started = True
        asyncio.create_task(self._learn_app_slug(rt))  # noqa: RUF006 - best effort

    async def _learn_app_slug(self, rt: runtime.Runtime) -> None:
        """Honk's bot login lets the triggers ignore its own comments; not needed to start."""
        try:
            info = await rt.github.app_info()
        except Exception as exc:  # GitHub unreachable at startup must not stop Honk
            log.warning("could not read the GitHub App's slug yet: %s", exc)
            return
        self.ctx.rules = dataclasses.replace(self.ctx.rules, app_slug=info.slug)

    async def configured(self, values: dict[str, str]) -> None:
        """Setup mode finished: load the new credentials and start serving webhooks."""
        self.settings = load_settings(self.env_path)
        await self.start()
        log.info("GitHub App %s registered; serving webhooks", values.get("APP_ID", "?"))

    async def stop(self) -> None:
        if self._model_check is not None:
            self._model_check.cancel()
            self._model_check = None
        if self.inbox is not None:
            await self.inbox.stop()
            self.inbox = None
        if self.started:
            await runtime.stop()
            self.started = False


async def ping(_: Request) -> Response:
    return PlainTextResponse("pong")


def create_app(
    settings: Settings,
    *,
    role: queue.Role = "serve",
    env_path: Path = Path(".env"),
    listen_url: str | None = None,
) -> Starlette:
    honk = Honk(settings, role=role, env_path=env_path)

    async def healthz(_: Request) -> Response:
        if not honk.started:
            return JSONResponse({"status": "setup", "database": "not started"}, status_code=503)
        ANSWERING.set(True)  # its ping is not background work
        try:
            await asyncio.to_thread(runtime.current().store.ping)
            backlog = honk.inbox.backlog() if honk.inbox is not None else 0
        except Exception as exc:
            log.warning("health check: database does not answer: %s", type(exc).__name__)
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        # `inbox`: triggers answered 202 and not yet handed to the run queue.
        return JSONResponse({"status": "ok", "database": "ok", "role": role, "inbox": backlog})

    routes: list[BaseRoute] = [
        # First: Starlette tries the routes in order, and nearly every request is a delivery.
        Route(settings.WEBHOOK_PATH, make_endpoint(honk.ctx), methods=ANY_METHOD),
        Route("/ping", ping, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    setup: SetupFlow | None = None
    if settings.needs_setup:
        # Whoever reaches a fresh Honk first could register their own App: only the person who
        # started it (and sees this log line) gets the link with the one-time token.
        setup_token = secrets.token_urlsafe(16)
        setup = SetupFlow(
            settings=settings,
            app_yml_text=APP_YML.read_text(encoding="utf-8"),
            env_path=env_path,
            on_configured=honk.configured,
            setup_token=setup_token,
        )
        routes.extend(setup.routes)
        public = settings.HONK_PUBLIC_URL or listen_url or f"http://localhost:{settings.PORT}"
        log.warning(
            "Setup mode: open %s/?token=%s to register Honk's GitHub App.", public, setup_token
        )
    else:

        async def home(_: Request) -> Response:
            return HTMLResponse(
                "<h1>Honk</h1><p>Honk is running. Webhooks go to "
                f"<code>{settings.WEBHOOK_PATH}</code>.</p>"
            )

        routes.append(Route("/", home, methods=["GET"]))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if settings.needs_setup:
            tune_collector()  # serving setup pages; Honk.start tunes it again once configured
        else:
            await honk.start()
        try:
            yield
        finally:
            await honk.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.honk = honk
    return app
