"""How GitHub failures reach Honk: one readable sentence, no secrets, and a short retry policy.

githubkit raises its own exceptions (an HTTP status, a timeout, an answer that does not match the
schema, GraphQL errors). The run workflow shows failures to users in comments and check runs, so
each becomes a `GitHubError` whose text names the operation, the endpoint and GitHub's own words,
with every credential Honk holds redacted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from githubkit.exception import (
    GitHubException,
    GraphQLFailed,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.typing import RetryOption
from pydantic import ValidationError

from honk_app.safety.secret_scan import redact

logger = logging.getLogger("honk.github")

MAX_DETAIL_CHARS = 300


class GitHubError(Exception):
    """A GitHub call that failed; `str()` is one sentence fit to show a user.

    `status` is the HTTP status when GitHub answered, `detail` GitHub's message (used to tell one
    422 from another), `retry_after` the seconds GitHub asked Honk to wait when rate limited.
    Only the sentence is passed to `Exception`, so the error pickles and unpickles intact.
    """

    def __init__(
        self,
        sentence: str,
        *,
        status: int | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(sentence)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class ResponseTooLarge(Exception):
    """An answer larger than the call's cap (github/bounds.py): Honk stopped reading it."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        super().__init__(limit, declared)
        self.limit = limit
        self.declared = declared

    def __str__(self) -> str:
        if self.declared is None:
            return f"more than the {self.limit:,} bytes Honk reads"
        return f"{self.declared:,} bytes, more than the {self.limit:,} Honk reads"


def _one_line(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    text = re.sub(r"\s+", " ", text).strip().rstrip(".").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def github_message(body: Any, fallback: str) -> str:
    """GitHub's error text: `message`, plus the messages or codes of its `errors` list."""
    if not isinstance(body, dict):
        return fallback
    message = str(body.get("message") or fallback)
    details: list[str] = []
    for item in body.get("errors") or []:
        if isinstance(item, str):
            details.append(item)
        elif isinstance(item, dict):
            text = item.get("message") or " ".join(
                str(item[key]) for key in ("resource", "field", "code") if item.get(key)
            )
            if text:
                details.append(str(text))
    return f"{message} ({'; '.join(details)})" if details else message


def _response_message(exc: RequestFailed) -> str:
    response = exc.response
    try:
        body = response.json()
    except ValueError:
        body = None
    fallback = response.text.strip() or response.reason_phrase or "no message"
    return github_message(body, fallback)


def _validation_message(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    # union members appear in the location as model names; only field names help a reader
    where = ".".join(str(p) for p in errors[0]["loc"] if not str(p)[:1].isupper())
    return f"{where}: {errors[0]['msg']}" if where else errors[0]["msg"]


def _is_request_body(exc: ValidationError) -> bool:
    """githubkit checks request bodies too; their models are named `...PostBody`, `...PatchBody`."""
    return "Body" in exc.title


def describe(
    exc: BaseException, op: str, endpoint: str, secrets: Iterable[str] = ()
) -> GitHubError:
    """Turn whatever a githubkit call raised into a GitHubError with one redacted sentence."""
    if isinstance(exc, GitHubError):
        return exc
    if isinstance(exc, RequestError) and isinstance(exc.exc, GitHubError):
        return exc.exc  # raised by our own auth flow (minting a token), already described
    status: int | None = None
    detail = ""
    retry_after: float | None = None
    if isinstance(exc, RequestFailed):
        status = exc.response.status_code
        detail = _one_line(_response_message(exc))
        sentence = f"GitHub refused {op} ({endpoint}) with {status}: {detail}"
        if isinstance(exc, RateLimitExceeded):
            retry_after = exc.retry_after.total_seconds()
            sentence = (
                f"GitHub rate-limited {op} ({endpoint}) with {status}: {detail}; "
                f"try again in {int(retry_after)} s"
            )
    elif isinstance(exc, RequestTimeout):
        sentence = f"GitHub did not answer {op} ({endpoint}) in time"
    elif isinstance(exc, RequestError) and isinstance(exc.exc, ResponseTooLarge):
        sentence = f"GitHub's answer to {op} ({endpoint}) was {exc.exc}"
    elif isinstance(exc, RequestError):
        cause = _one_line(f"{type(exc.exc).__name__}: {exc.exc}")
        sentence = f"Could not reach GitHub for {op} ({endpoint}): {cause}"
    elif isinstance(exc, GraphQLFailed):
        detail = _one_line("; ".join(error.message for error in exc.response.errors or []))
        sentence = f"GitHub refused {op} ({endpoint}): {detail}"
    elif isinstance(exc, ValidationError) and _is_request_body(exc):
        detail = _one_line(_validation_message(exc))
        sentence = f"Honk did not send {op} ({endpoint}) because the request was invalid: {detail}"
    elif isinstance(exc, ValidationError):
        detail = _one_line(_validation_message(exc))
        sentence = f"GitHub's answer to {op} ({endpoint}) was not in the expected shape: {detail}"
    else:
        cause = _one_line(f"{type(exc).__name__}: {exc}")
        sentence = f"GitHub call {op} ({endpoint}) failed: {cause}"
    text = redact(_one_line(sentence, limit=2 * MAX_DETAIL_CHARS), secrets) + "."
    return GitHubError(text, status=status, detail=redact(detail, secrets), retry_after=retry_after)


@contextmanager
def translated(op: str, endpoint: str, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Run a githubkit call; anything it raises leaves as a GitHubError."""
    try:
        yield
    except (GitHubException, ValidationError) as exc:
        raise describe(exc, op, endpoint, secrets) from None


@dataclass(frozen=True)
class RetryPolicy:
    """githubkit's `auto_retry` hook: retry server errors and rate limits, briefly.

    A run is a durable workflow whose steps are retried anyway, so waiting here is only worth it
    for blips: a rate limit that lifts within `max_wait_s` is waited out (GitHub's `retry-after` or
    `x-ratelimit-reset`), a longer one fails at once with `GitHubError.retry_after` set.
    """

    server_error_retries: int = 3
    rate_limit_retries: int = 1
    backoff_s: float = 1.0  # before retry n (0-based): backoff_s * 2**n
    max_wait_s: float = 30.0  # within a call's deadline (github/bounds.py), so a wait can end

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if isinstance(exc, RateLimitExceeded):
            wait = exc.retry_after.total_seconds()
            if retry_count < self.rate_limit_retries and wait <= self.max_wait_s:
                return self._retry(exc, wait)
            return RetryOption(False)
        if (
            isinstance(exc, RequestFailed)
            and exc.response.status_code >= 500
            and retry_count < self.server_error_retries
        ):
            return self._retry(exc, min(self.backoff_s * 2**retry_count, self.max_wait_s))
        return RetryOption(False)

    @staticmethod
    def _retry(exc: RequestFailed, wait_s: float) -> RetryOption:
        logger.warning(
            "GitHub answered %s %s with %s; retrying in %.1f s",
            exc.request.method,
            exc.request.url.path,
            exc.response.status_code,
            wait_s,
        )
        # githubkit waits 60 s when given a zero delay, so never hand it exactly zero
        return RetryOption(True, timedelta(seconds=max(wait_s, 0.001)))
