"""The Starlette app: webhook endpoint, health checks, and setup mode on a fresh install."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import html
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
from honk_app.runs.runtime import Runtime, settings_secrets
from honk_app.runs.workflow import enqueue_intake
from honk_app.settings import Settings, load_settings
from honk_app.setup.flow import SetupFlow, read_app_yml
from honk_app.setup.pages import ANTHROPIC_KEYS_URL, SETUP_LINK_LOG
from honk_app.triggers import TriggerRules
from honk_app.webhooks import WebhookContext, make_endpoint

log = logging.getLogger("honk.server")

ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]  # the endpoint answers 405 itself


def has_anthropic_key(settings: Settings) -> bool:
    key = settings.ANTHROPIC_API_KEY
    return key is not None and bool(key.get_secret_value())


def warn_if_no_anthropic_key(settings: Settings, env_path: Path) -> None:
    """Say at startup what the first run would otherwise find out: no agent can run."""
    if not has_anthropic_key(settings):
        log.warning(
            "ANTHROPIC_API_KEY is not set, so every run will fail: add ANTHROPIC_API_KEY=<your "
            "key> (from %s) to %s or the environment, and restart Honk.",
            ANTHROPIC_KEYS_URL,
            env_path,
        )


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

    async def use_anthropic_key(self) -> None:
        """Setup saved the Anthropic key to .env: hand it to the running runtime, which reads its
        settings per run, and redact it from then on. (DBOS cannot be relaunched in a process,
        so the runtime is updated in place, and only the key changes.)"""
        key = load_settings(self.env_path).ANTHROPIC_API_KEY
        self.settings = self.settings.model_copy(update={"ANTHROPIC_API_KEY": key})
        rt = self.runtime
        if rt is not None:
            rt.settings = rt.settings.model_copy(update={"ANTHROPIC_API_KEY": key})
            rt.static_secrets = settings_secrets(rt.settings)
            rt.store.known_secrets = rt.static_secrets

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
        # Whether runs can reach the model at all; never the key. A missing key is no outage of
        # the server (it takes webhooks), so it does not change the status code.
        key = {"anthropic_key": "set" if has_anthropic_key(honk.settings) else "missing"}
        if honk.runtime is None:
            body = {"status": "setup", "database": "not started", **key}
            return JSONResponse(body, status_code=503)
        try:
            await asyncio.to_thread(honk.runtime.store.ping)
        except Exception as exc:
            log.warning("health check: database does not answer: %s", type(exc).__name__)
            body = {"status": "error", "database": "unreachable", **key}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "role": role, **key})

    routes: list[BaseRoute] = [
        Route(settings.WEBHOOK_PATH, make_endpoint(honk.ctx), methods=ANY_METHOD),
        Route("/ping", ping, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    setup: SetupFlow | None = None
    if settings.needs_setup:
        # Whoever reaches a fresh Honk first could register their own App: only the person who
        # started it (and sees this log line) gets the link, good for one browser (access.py).
        setup_token = secrets.token_urlsafe(16)
        app_yml_text, app_yml_source = read_app_yml(env_path.parent)
        setup = SetupFlow(
            settings=settings,
            app_yml_text=app_yml_text,
            env_path=env_path,
            on_configured=honk.configured,
            on_anthropic_key=honk.use_anthropic_key,
            setup_token=setup_token,
        )
        routes.extend(setup.routes)
        public = settings.HONK_PUBLIC_URL or listen_url or f"http://localhost:{settings.PORT}"
        log.info("Setup mode: the GitHub App is defined by %s", app_yml_source)
        log.warning(SETUP_LINK_LOG, public.rstrip("/"), setup_token)
    else:

        async def home(_: Request) -> Response:
            missing = (
                ""
                if has_anthropic_key(honk.settings)
                else "<p>ANTHROPIC_API_KEY is not set, so every run will fail: add it to "
                f"<code>{html.escape(str(env_path))}</code> and restart Honk.</p>"
            )
            return HTMLResponse(
                "<h1>Honk</h1><p>Honk is running. Webhooks go to "
                f"<code>{html.escape(settings.WEBHOOK_PATH)}</code>.</p>{missing}"
            )

        routes.append(Route("/", home, methods=["GET"]))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not settings.needs_setup:
            await honk.start()
            if role != "web":  # the web role runs no agent; its workers say it themselves
                warn_if_no_anthropic_key(settings, env_path)
        try:
            yield
        finally:
            await honk.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.honk = honk
    return app
