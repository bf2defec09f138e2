"""The floor for bench/webhook_ingest.py: a Starlette app that only checks the HMAC and answers.

It runs under the same server settings as `honk serve` (uvicorn, uvloop, httptools, one worker,
access log off), so the gap between the two is what Honk's own webhook path costs: header checks,
JSON parsing, the trigger decision, and for triggers the durable enqueue.

    WEBHOOK_SECRET=... python bench/_minimal_app.py --port 8001
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

WEBHOOK_PATH = "/api/github/webhooks"
SECRET = os.environ.get("WEBHOOK_SECRET", "").encode()


async def webhook(request: Request) -> Response:
    body = await request.body()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    given = request.headers.get("x-hub-signature-256", "")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return JSONResponse({"message": "signature does not match"}, status_code=401)
    return JSONResponse({"message": "ignored", "reason": "minimal app"}, status_code=200)


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route(WEBHOOK_PATH, webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if not SECRET:
        raise SystemExit("set WEBHOOK_SECRET")
    # The settings `honk serve` uses (honk_app/cli.py), so only the application differs.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
