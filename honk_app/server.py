"""The Starlette app: webhook endpoint, health checks, and setup mode on a fresh install."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from honk_app.models import Role
from honk_app.runs import launch
from honk_app.runs.runtime import Runtime
from honk_app.runs.workflow import enqueue_intake
from honk_app.settings import Settings, load_settings
from honk_app.setup.flow import SetupFlow
from honk_app.triggers import TriggerRules
from honk_app.webhooks import WebhookContext, make_endpoint

log = logging.getLogger("honk.server")

APP_YML = Path(__file__).resolve().parent.parent / "app.yml"
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]  # the endpoint answers 405 itself


class Honk:
    """Holds what can change at run time: setup mode hands over to serving webhooks in place."""

    def __init__(self, settings: Settings, *, role: Role, env_path: Path = Path(".env")):
        self.settings = settings
        self.role = role
        self.env_path = env_path
        self.ctx = WebhookContext(secret=None, rules=TriggerRules(), enqueue=enqueue_intake)
        self.runtime: Runtime | None = None
        self._slug_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        rt = await launch.start(self.settings, self.role, self.env_path)
        self.runtime = rt
        assert self.settings.WEBHOOK_SECRET is not None
        self.ctx.rules = rt.rules
        self.ctx.secret = self.settings.WEBHOOK_SECRET.get_secret_value().encode()
        self._slug_task = asyncio.create_task(self._learn_app_slug(rt))

    async def _learn_app_slug(self, rt: Runtime) -> None:
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
        if self._slug_task is not None:
            self._slug_task.cancel()
            self._slug_task = None
        if self.runtime is not None:
            rt, self.runtime = self.runtime, None
            await launch.stop(rt)


async def ping(_: Request) -> Response:
    return PlainTextResponse("pong")


def create_app(
    settings: Settings,
    *,
    role: Role = "serve",
    env_path: Path = Path(".env"),
    listen_url: str | None = None,
) -> Starlette:
    honk = Honk(settings, role=role, env_path=env_path)

    async def healthz(_: Request) -> Response:
        if honk.runtime is None:
            return JSONResponse({"status": "setup", "database": "not started"}, status_code=503)
        try:
            await asyncio.to_thread(honk.runtime.store.ping)
        except Exception as exc:
            log.warning("health check: database does not answer: %s", type(exc).__name__)
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "role": role})

    routes: list[BaseRoute] = [
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
        if not settings.needs_setup:
            await honk.start()
        try:
            yield
        finally:
            await honk.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.honk = honk
    return app
