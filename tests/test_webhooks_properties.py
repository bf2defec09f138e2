"""Properties of the webhook endpoint, for any headers and body (Hypothesis).

Whatever arrives, Honk answers without a server error, and nothing unsigned or wrongly signed is
ever enqueued: random requests, and valid signed deliveries with one thing changed. The endpoint
is the real one (make_endpoint) in a bare Starlette app whose enqueue only records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from honk_app.models import Trigger
from honk_app.triggers import TriggerRules
from honk_app.webhooks import WebhookContext, make_endpoint, sign
from tests.fixtures import payloads
from tests.strategies import with_one_field_replaced

SECRET = b"property-webhook-secret-8c1f"
PATH = "/api/github/webhooks"
RULES = TriggerRules(app_id=payloads.HONK_APP_ID, app_slug=payloads.HONK_APP_SLUG)
EVENTS = ["issue_comment", "issues", "pull_request_review_comment", "pull_request_review"]


class Recorder:
    """The enqueue: remembers each trigger it was handed."""

    def __init__(self) -> None:
        self.triggers: list[Trigger] = []

    async def __call__(self, trigger: Trigger) -> str:
        self.triggers.append(trigger)
        return trigger.run_id


RECORDER = Recorder()
CLIENT = TestClient(
    Starlette(
        routes=[
            Route(
                PATH,
                make_endpoint(WebhookContext(SECRET, RULES, RECORDER)),
                methods=["GET", "POST", "PUT"],
            )
        ]
    ),
    raise_server_exceptions=False,  # a crash must show as the 500 the property forbids
)


def post(headers: dict[str, str], body: bytes, method: str = "POST") -> tuple[int, int]:
    """(status, triggers enqueued by this request)."""
    before = len(RECORDER.triggers)
    response = CLIENT.request(method, PATH, content=body, headers=headers)
    return response.status_code, len(RECORDER.triggers) - before


def valid_deliveries() -> list[tuple[str, dict[str, Any]]]:
    """Deliveries that do start a run when signed: one of each kind of trigger."""
    return [
        ("issue_comment", payloads.issue_comment("/honk fix the README")),
        ("issue_comment", payloads.issue_comment("/honk", is_pr=True)),
        ("issues", payloads.labeled("honk")),
        ("pull_request_review_comment", payloads.review_comment("/honk rename it")),
    ]


DELIVERIES = valid_deliveries()


def signed_headers(event: str, body: bytes, delivery: str = "d-1") -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(SECRET, body),
    }


def test_the_valid_deliveries_do_start_runs() -> None:
    """What the properties below mutate is accepted as it is: they would be vacuous otherwise."""
    for event, payload in DELIVERIES:
        body = json.dumps(payload).encode()
        assert post(signed_headers(event, body), body) == (202, 1), event


# ---- any request ---------------------------------------------------------------------------------

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
header_names = st.sampled_from(
    [
        "x-github-event",
        "x-github-delivery",
        "x-hub-signature-256",
        "x-hub-signature",
        "content-type",
        "content-length",
        "content-encoding",
        "x-github-hook-id",
    ]
)
signature_values = st.one_of(
    header_text,
    st.builds(lambda h: "sha256=" + h, st.text("0123456789abcdef", min_size=0, max_size=70)),
    st.just("sha256=" + "0" * 64),
)


@st.composite
def any_headers(draw: st.DrawFn) -> dict[str, str]:
    headers = draw(st.dictionaries(header_names, header_text, max_size=6))
    if draw(st.booleans()):
        headers["x-github-event"] = draw(st.sampled_from([*EVENTS, "ping", ""]))
    if draw(st.booleans()):
        headers["x-hub-signature-256"] = draw(signature_values)
    return headers


bodies = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda v: json.dumps(v).encode(), st.recursive(st.none() | st.text(), st.lists)),
    st.sampled_from([json.dumps(p).encode() for _, p in DELIVERIES]),
)


@hypothesis_settings(max_examples=150)
@given(headers=any_headers(), body=bodies, method=st.sampled_from(["POST", "POST", "GET", "PUT"]))
def test_any_request_gets_no_server_error_and_no_run_unless_signed(
    headers: dict[str, str], body: bytes, method: str
) -> None:
    headers.pop("content-length", None)  # the client sets the true length; a lie is tested below
    status, enqueued = post(headers, body, method)
    assert status < 500
    signed = headers.get("x-hub-signature-256") == sign(SECRET, body)
    if not signed:
        assert enqueued == 0
        assert status != 202


# ---- valid deliveries, one thing changed ---------------------------------------------------------


class Mutation:
    """One change to a signed delivery, named so that a failing example says which."""

    def __init__(self, name: str, apply: Callable[[dict[str, str], bytes], Any]) -> None:
        self.name, self.apply = name, apply

    def __call__(self, headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        result: tuple[dict[str, str], bytes] = self.apply(headers, body)
        return result

    def __repr__(self) -> str:
        return self.name


def _flip(body: bytes, at: int, bit: int) -> bytes:
    if not body:
        return b"x"
    at %= len(body)
    return body[:at] + bytes([body[at] ^ (1 << bit)]) + body[at + 1 :]


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    kind = draw(
        st.sampled_from(
            [
                "flip a body bit",
                "cut the body",
                "append to the body",
                "re-sign with another secret",
                "flip a signature character",
                "sign as sha1",
                "upper-case the signature",
                "drop a header",
                "sign the empty body",
                "re-serialise the JSON",
            ]
        )
    )
    at = draw(st.integers(min_value=0, max_value=10_000))
    bit = draw(st.integers(min_value=0, max_value=7))
    extra = draw(st.binary(min_size=1, max_size=20))
    header = draw(st.sampled_from(["x-github-event", "x-github-delivery", "x-hub-signature-256"]))

    def mutate(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
        headers = dict(headers)
        signature = headers["x-hub-signature-256"]
        if kind == "flip a body bit":
            return headers, _flip(body, at, bit)
        if kind == "cut the body":
            return headers, body[: at % len(body)]
        if kind == "append to the body":
            return headers, body + extra
        if kind == "re-sign with another secret":
            # not SECRET + b"\0": HMAC pads short keys with zeros, so that is the same key
            headers["x-hub-signature-256"] = sign(b"another-" + SECRET + extra, body)
        elif kind == "flip a signature character":
            index = len("sha256=") + at % 64
            digit = "0" if signature[index] != "0" else "1"
            headers["x-hub-signature-256"] = signature[:index] + digit + signature[index + 1 :]
        elif kind == "sign as sha1":
            headers["x-hub-signature-256"] = "sha1=" + signature.removeprefix("sha256=")[:40]
        elif kind == "upper-case the signature":
            headers["x-hub-signature-256"] = "SHA256=" + signature.removeprefix("sha256=").upper()
        elif kind == "drop a header":
            del headers[header]
        elif kind == "sign the empty body":
            headers["x-hub-signature-256"] = sign(SECRET, b"")
        elif kind == "re-serialise the JSON":
            return headers, json.dumps(json.loads(body), indent=1).encode()
        return headers, body

    detail = {"drop a header": header, "flip a body bit": f"{at}:{bit}"}.get(kind, "")
    return Mutation(f"{kind} {detail}".strip(), mutate)


@hypothesis_settings(max_examples=150)
@given(delivery=st.sampled_from(DELIVERIES), mutate=mutations())
def test_a_changed_signed_delivery_gets_no_server_error_and_no_run(
    delivery: tuple[str, dict[str, Any]], mutate: Mutation
) -> None:
    event, payload = delivery
    body = json.dumps(payload).encode()
    headers, changed = mutate(signed_headers(event, body), body)
    status, enqueued = post(headers, changed)
    assert status < 500
    assert enqueued == 0
    assert status in (400, 401), status


@pytest.mark.parametrize("declared", ["0", "1", "999999999999", "-1", "abc"])
def test_a_false_content_length_gets_no_server_error_and_no_run(declared: str) -> None:
    event, payload = DELIVERIES[0]
    body = json.dumps(payload).encode()
    headers = {**signed_headers(event, body), "x-hub-signature-256": sign(SECRET, b"")}
    status, enqueued = post({**headers, "content-length": declared}, body)
    assert status < 500
    assert enqueued == 0


# ---- signed, but anything inside -----------------------------------------------------------------


@st.composite
def tampered_payloads(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A real delivery with one field, anywhere in it, replaced by any JSON value."""
    event, payload = draw(st.sampled_from(DELIVERIES))
    return event, with_one_field_replaced(draw, payload)


@hypothesis_settings(max_examples=200)
@given(delivery=tampered_payloads(), event=st.sampled_from([None, *EVENTS, "check_run"]))
def test_any_signed_payload_gets_no_server_error(
    delivery: tuple[str, dict[str, Any]], event: str | None
) -> None:
    """A signed body GitHub never sent (another shape, another event) is refused or ignored."""
    original_event, payload = delivery
    body = json.dumps(payload).encode()
    status, enqueued = post(signed_headers(event or original_event, body), body)
    assert status < 500
    assert enqueued <= 1
