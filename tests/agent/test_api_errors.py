"""Which failures of the Anthropic API the built-in loop sends again, and after how long."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from honk_app.agent.api_errors import MAX_RETRY_WAIT_S, RETRIES, retry_delay_s

REQUEST = httpx.Request("POST", "https://api.anthropic.com/v1/messages")


def status_error(status: int, retry_after: str | None = None) -> anthropic.APIStatusError:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    response = httpx.Response(status, headers=headers, request=REQUEST, json={"type": "error"})
    return anthropic.APIStatusError("failed", response=response, body=None)


@pytest.mark.parametrize(
    ("failure", "attempt", "delay"),
    [
        (status_error(529), 0, 0.5),
        (status_error(529), 1, 1.0),
        (status_error(529), RETRIES, None),  # three attempts in all
        (status_error(429, "7"), 0, 7.0),  # the API says when
        (status_error(429, "3600"), 0, MAX_RETRY_WAIT_S),  # but never longer than this
        (status_error(503, "soon"), 0, 0.5),  # an unreadable Retry-After: the usual wait
        (status_error(500), 0, 0.5),
        (status_error(400), 0, None),  # the request itself is wrong: again is the same
        (status_error(401), 0, None),
        (status_error(404), 0, None),
        (anthropic.APIConnectionError(request=REQUEST), 0, 0.5),
        (anthropic.APITimeoutError(request=REQUEST), 1, 1.0),
        (ValueError("not an API failure"), 0, None),
    ],
)
def test_which_failures_are_sent_again(
    failure: Exception, attempt: int, delay: float | None
) -> None:
    assert retry_delay_s(failure, attempt) == delay
