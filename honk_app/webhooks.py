"""The webhook endpoint: size cap, headers, signature, JSON, decision, durable enqueue.

The checks run in the order Prow and Atlantis use, cheapest and least trusting first, and the
handler never calls GitHub: it decides and enqueues, and the durable run does the rest.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from honk_app import events, json_codec
from honk_app.models import Ignored, Trigger
from honk_app.prefilter import looks_like_json_object, may_trigger
from honk_app.priority import ANSWERING, GAUGE
from honk_app.triggers import TriggerRules, decide

log = logging.getLogger("honk.webhooks")

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
SIGNATURE_PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    return SIGNATURE_PREFIX + hmac.digest(secret, body, "sha256").hex()  # one C call


def signature_matches(secret: bytes, body: bytes, header: str) -> bool:
    """Constant-time comparison of a `sha256=` signature; SHA-1 is never accepted."""
    if not header.startswith(SIGNATURE_PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


@dataclass(frozen=True)
class DeliveryHeaders:
    """The headers the endpoint reads, found in one pass (each of Starlette's lookups is one)."""

    content_length: str | None = None
    event: str | None = None
    delivery: str | None = None
    signature: str | None = None

    @classmethod
    def read(cls, raw: Iterable[tuple[bytes, bytes]]) -> DeliveryHeaders:
        """Pure. ASGI servers give header names in lower case; the first of a repeated one wins,
        as with Starlette's `headers.get`."""
        found: dict[str, str] = {}
        for name, value in raw:
            field_name = _HEADER_FIELDS.get(name)
            if field_name is not None and field_name not in found:
                found[field_name] = value.decode("latin-1")
        return cls(**found)


_HEADER_FIELDS = {
    b"content-length": "content_length",
    b"x-github-event": "event",
    b"x-github-delivery": "delivery",
    b"x-hub-signature-256": "signature",
}


class BodyTooLarge(Exception):
    pass


async def read_capped(request: Request, declared: str | None, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read the body, refusing early (by Content-Length or while streaming) past `limit`.

    Straight from the ASGI channel: a delivery is one message, and Starlette's stream is an
    async generator around the same loop."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


Enqueue = Callable[[Trigger], Awaitable[str]]


@dataclass
class WebhookContext:
    """What the endpoint needs; mutable so setup mode can switch credentials without a restart."""

    secret: bytes | None
    rules: TriggerRules
    enqueue: Enqueue
    model_check: events.ModelCheck = field(default_factory=events.ModelCheck)


class _JSONAnswer(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json_codec.dumps(content)


def _answer(status: int, message: str, **extra: Any) -> JSONResponse:
    return _JSONAnswer({"message": message, **extra}, status_code=status)


def make_endpoint(ctx: WebhookContext) -> Callable[[Request], Awaitable[Response]]:
    async def webhook(request: Request) -> Response:
        headers = DeliveryHeaders.read(request.scope["headers"])
        delivery = headers.delivery or ""
        GAUGE.started()  # background work gets a small share until this is answered
        # This request's own work in threads is not background work. Set after `started()`:
        # the workflows' loop meter that it may schedule copies the context, and must not be
        # exempt.
        ANSWERING.set(True)
        try:
            return await _handle(ctx, request, headers)
        except Exception:
            log.exception("webhook handler failed for delivery %s", delivery or "(none)")
            return _answer(500, "internal error; GitHub may redeliver")
        finally:
            GAUGE.finished()

    return webhook


async def _handle(ctx: WebhookContext, request: Request, headers: DeliveryHeaders) -> Response:
    if request.method != "POST":
        response = _answer(405, "use POST")
        response.headers["allow"] = "POST"
        return response
    try:
        body = await read_capped(request, headers.content_length)
    except BodyTooLarge:
        return _answer(413, f"payload over {MAX_BODY_BYTES} bytes")
    except ClientDisconnect:
        return _answer(400, "client disconnected")
    event, delivery = headers.event, headers.delivery
    if not event or not delivery:
        return _answer(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
    if ctx.secret is None:
        return _answer(503, "Honk is in setup mode; finish setup at /")
    signature = headers.signature or ""
    if not signature.startswith(SIGNATURE_PREFIX):
        return _answer(401, "missing X-Hub-Signature-256 (sha256) signature")
    if not signature_matches(ctx.secret, body, signature):
        return _answer(401, "signature does not match")
    if not looks_like_json_object(body):
        return _answer(400, "body is not a JSON object")
    if not may_trigger(event, body, ctx.rules):
        return _answer(200, "ignored", reason=f"no trigger for Honk in this {event} delivery")
    try:
        payload = json_codec.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _answer(400, "body is not JSON")
    if not isinstance(payload, dict):
        return _answer(400, "body is not a JSON object")
    decision = decide(event, delivery, payload, ctx.rules)
    if isinstance(decision, Ignored):
        return _answer(200, "ignored", reason=decision.reason)
    run_id = await ctx.enqueue(decision)  # logged when it reaches the run queue
    ctx.model_check.submit(event, delivery, payload)  # logs what githubkit's model rejects
    return _answer(202, "accepted", run_id=run_id, command=decision.command.value)
