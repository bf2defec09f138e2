"""What the built-in loop makes of the Anthropic API's failures: a sentence for the report, and
whether (and after how long) a failed turn is worth sending again.

The loop retries itself rather than letting the SDK do it, so that every attempt reserves its
own worst case in the run's ledger: an attempt lost after the API started work may be billed.
"""

from __future__ import annotations

from collections.abc import Sequence

import anthropic

from honk_app.safety.secret_scan import redact

RETRIES = 2  # as the SDK's default: three attempts in all
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_RETRY_WAIT_S = 30.0


def retry_delay_s(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when the failure is final."""
    if attempt >= RETRIES:
        return None
    if isinstance(exc, anthropic.APIStatusError):
        if exc.status_code not in RETRYABLE_STATUS:
            return None
        asked = exc.response.headers.get("retry-after", "")
        if asked.replace(".", "", 1).isdigit():
            return min(float(asked), MAX_RETRY_WAIT_S)
    elif not isinstance(exc, anthropic.APIConnectionError):  # timeouts are connection errors
        return None
    return min(0.5 * (1 << attempt), MAX_RETRY_WAIT_S)


def describe_api_error(exc: anthropic.AnthropicError, secrets: Sequence[str]) -> str:
    """One readable sentence for the run report, with anything secret redacted."""
    if isinstance(exc, anthropic.APIStatusError):
        kind = exc.type or "error"
        detail = (exc.api_message or exc.message).strip().rstrip(".")
        hint = {
            401: " The API key was refused; check ANTHROPIC_API_KEY.",
            403: " The API key may lack access to this model.",
            404: " Check the model name.",
            429: " The rate limit was reached; retry later.",
            529: " The API is overloaded; retry later.",
        }.get(exc.status_code, " Retry later." if exc.status_code >= 500 else "")
        text = f"The Anthropic API answered {exc.status_code} ({kind}): {detail}.{hint}"
    elif isinstance(exc, anthropic.APITimeoutError):
        text = "The request to the Anthropic API timed out."
    elif isinstance(exc, anthropic.APIConnectionError):
        text = f"Honk could not reach the Anthropic API ({exc.__cause__ or exc.message})."
    else:
        text = f"The Anthropic client failed: {exc}."
    return redact(text, secrets)
