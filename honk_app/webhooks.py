"""The webhook endpoint: size cap, GitHub headers, signature, JSON, decision, durable enqueue.

The checks run in the order Prow and Atlantis use, cheapest and least trusting first. Nothing
is parsed before the signature holds, and the handler never calls GitHub: it decides and
enqueues, and the durable run does the rest.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from honk_app.models import Ignored, Trigger
from honk_app.triggers import TriggerRules, decide

log = logging.getLogger("honk.webhooks")

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
BODY_DEADLINE_S = 10.0  # GitHub itself gives up on an answer after 10 s
SIGNATURE_PREFIX = "sha256="
# Deliveries up to this size are decided on the event loop (well under a millisecond); a larger
# one, say a stranger's 65k-character comment, is parsed in a thread, so the loop keeps serving.
INLINE_DECIDE_BYTES = 32 * 1024


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    return SIGNATURE_PREFIX + hmac.digest(secret, body, "sha256").hex()


def signature_matches(secret: bytes, body: bytes, header: str) -> bool:
    """Constant-time comparison of a `sha256=` signature; SHA-1 is never accepted."""
    if not header.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


class BodyTooLarge(Exception):
    pass


async def read_capped(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused past `limit` by its declared length or while it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)


Enqueue = Callable[[Trigger], Awaitable[str]]


@dataclass
class WebhookContext:
    """What the endpoint needs; mutable so setup mode can switch credentials without a restart."""

    secret: bytes | None
    rules: TriggerRules
    enqueue: Enqueue


def _answer(status: int, message: str, **extra: str) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status)


def make_endpoint(ctx: WebhookContext) -> Callable[[Request], Awaitable[Response]]:
    async def webhook(request: Request) -> Response:
        try:
            return await handle_delivery(ctx, request)
        except Exception:
            delivery = request.headers.get("x-github-delivery", "(none)")
            log.exception("webhook handler failed for delivery %s", delivery)
            return _answer(500, "internal error; GitHub may redeliver")

    return webhook


async def handle_delivery(ctx: WebhookContext, request: Request) -> Response:
    """One delivery, top to bottom; every early return says why in one line."""
    if request.method != "POST":
        return JSONResponse({"message": "use POST"}, status_code=405, headers={"allow": "POST"})
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _answer(413, f"payload over {MAX_BODY_BYTES} bytes")
    event = request.headers.get("x-github-event")
    delivery = request.headers.get("x-github-delivery")
    signature = request.headers.get("x-hub-signature-256", "")
    if not event or not delivery:
        return _answer(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
    if ctx.secret is None:
        return _answer(503, "Honk is in setup mode; finish setup at /")
    if not signature.startswith(SIGNATURE_PREFIX):
        return _answer(401, "missing X-Hub-Signature-256 (sha256) signature")
    try:
        async with asyncio.timeout(BODY_DEADLINE_S):
            body = await read_capped(request)
    except BodyTooLarge:
        return _answer(413, f"payload over {MAX_BODY_BYTES} bytes")
    except (ClientDisconnect, TimeoutError):
        return _answer(400, "the body did not arrive in time")
    if not signature_matches(ctx.secret, body, signature):
        return _answer(401, "signature does not match")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _answer(400, "body is not JSON")
    if not isinstance(payload, dict):
        return _answer(400, "body is not a JSON object")
    if len(body) > INLINE_DECIDE_BYTES:  # a long comment costs the grammar real work (markdown)
        decision = await asyncio.to_thread(decide, event, delivery, payload, ctx.rules)
    else:
        decision = decide(event, delivery, payload, ctx.rules)
    if isinstance(decision, Ignored):
        return _answer(200, "ignored", reason=decision.reason)
    run_id = await ctx.enqueue(decision)
    return _answer(202, "accepted", run_id=run_id, command=decision.command.value)
