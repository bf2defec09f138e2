"""The webhook endpoint, in the order of its checks, against a real app with a real SQLite queue."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbos import DBOS
from starlette.testclient import TestClient

from honk_app import webhooks
from honk_app.runs.workflow import INTAKE_QUEUE
from honk_app.server import create_app
from honk_app.webhooks import INLINE_DECIDE_BYTES, MAX_BODY_BYTES, sign, signature_matches
from tests.conftest import WEBHOOK_SECRET, make_settings
from tests.fixtures import payloads
from tests.waiting import wait_for

PATH = "/api/github/webhooks"


def test_github_documented_signature_vector() -> None:
    secret = b"It's a Secret to Everybody"
    body = b"Hello, World!"
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(secret, body) == expected
    assert signature_matches(secret, body, expected)
    assert not signature_matches(secret, body + b" ", expected)
    assert not signature_matches(secret, body, "sha1=" + expected[7:])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, app_private_key: str) -> Iterator[TestClient]:
    data: Path = tmp_path_factory.mktemp("honk-webhooks")
    settings = make_settings(data, app_private_key)
    app = create_app(settings, role="web", env_path=data / ".env")
    with TestClient(app) as test_client:
        yield test_client


def headers(
    body: bytes, event: str = "issue_comment", delivery: str | None = None, **extra: str
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
        "x-hub-signature-256": sign(WEBHOOK_SECRET.encode(), body),
        **extra,
    }


def post(client: TestClient, payload: Any, event: str = "issue_comment", **kw: Any) -> Any:
    body = json.dumps(payload).encode()
    return client.post(PATH, content=body, headers=headers(body, event, **kw))


def test_ping_and_healthz(client: TestClient) -> None:
    assert client.get("/ping").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["database"] == "ok"


REJECTIONS = [
    ("method", "GET", {}, b"", 405),
    ("missing-event", "POST", {"x-github-event": None}, b"{}", 400),
    ("missing-delivery", "POST", {"x-github-delivery": None}, b"{}", 400),
    ("missing-signature", "POST", {"x-hub-signature-256": None}, b"{}", 401),
    ("sha1-signature", "POST", {"x-hub-signature-256": "sha1=abc"}, b"{}", 401),
    ("wrong-hmac", "POST", {"x-hub-signature-256": "sha256=" + "0" * 64}, b"{}", 401),
    ("not-json", "POST", {}, b"not json", 400),
    ("json-array", "POST", {}, b"[1, 2]", 400),
]


@pytest.mark.parametrize(
    ("case", "method", "override", "body", "status"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_rejections_in_order(
    client: TestClient,
    case: str,
    method: str,
    override: dict[str, str | None],
    body: bytes,
    status: int,
) -> None:
    hdrs: dict[str, str] = headers(body)
    for key, value in override.items():
        if value is None:
            hdrs.pop(key)
        else:
            hdrs[key] = value
    response = client.request(method, PATH, content=body, headers=hdrs)
    assert response.status_code == status, response.text


def test_oversized_body_is_refused_by_its_declared_length(client: TestClient) -> None:
    body = b"{}"
    hdrs = headers(body)
    hdrs["content-length"] = str(MAX_BODY_BYTES + 1)

    def chunks() -> Iterator[bytes]:
        yield body

    response = client.post(PATH, content=chunks(), headers=hdrs)
    assert response.status_code == 413


def test_oversized_streamed_body_is_refused_while_reading(client: TestClient) -> None:
    chunk = b"x" * (1024 * 1024)

    def chunks() -> Iterator[bytes]:
        for _ in range(26):
            yield chunk

    hdrs = headers(b"")
    response = client.post(PATH, content=chunks(), headers=hdrs)
    assert response.status_code == 413


def test_a_body_in_many_chunks_is_read_whole(client: TestClient) -> None:
    body = json.dumps(payloads.issue_comment("/honk fix it in pieces")).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    response = client.post(PATH, content=chunks(), headers=headers(body))
    assert response.status_code == 202, response.text


def test_ignored_event_says_why(client: TestClient) -> None:
    response = post(client, payloads.ping(), event="ping")
    assert response.status_code == 200
    assert response.json()["message"] == "ignored"
    assert response.json()["reason"]


def test_edited_comment_is_ignored_with_reason(client: TestClient) -> None:
    response = post(client, payloads.issue_comment("/honk do it", action="edited"))
    assert response.status_code == 200
    assert "edit" in response.json()["reason"].lower()


def test_trigger_is_durably_enqueued_before_202(client: TestClient) -> None:
    response = post(client, payloads.issue_comment("/honk fix the README", comment_id=31))
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert run_id == "honk-ic31"
    # In DBOS's queue when the 202 left (the web role only enqueues: nothing dequeues it).
    status = DBOS.get_workflow_status(run_id)
    assert status is not None
    assert status.status == "ENQUEUED"
    assert status.queue_name == INTAKE_QUEUE


def test_redelivery_maps_to_the_same_run(client: TestClient) -> None:
    delivery = str(uuid.uuid4())
    payload = payloads.issue_comment("/honk fix the README")
    first = post(client, payload, delivery=delivery)
    second = post(client, payload, delivery=delivery)
    assert first.status_code == second.status_code == 202
    assert first.json()["run_id"] == second.json()["run_id"]
    found = wait_for(
        lambda: DBOS.list_workflows(workflow_ids=[first.json()["run_id"]]), "the queued run"
    )
    assert len(found) == 1


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("issue_comment", payloads.issue_comment("/honk fix it", comment_id=4100)),
        ("issues", payloads.labeled("honk")),
    ],
    ids=["comment", "labeling"],
)
def test_the_same_signed_body_under_another_delivery_id_is_the_same_run(
    client: TestClient, event: str, payload: dict[str, Any]
) -> None:
    """X-GitHub-Delivery is not signed: a captured body re-sent with a fresh id is no new run."""
    first = post(client, payload, event=event)
    replayed = post(client, payload, event=event)  # `post` makes up a new delivery id each time
    assert first.status_code == replayed.status_code == 202
    run_id = first.json()["run_id"]
    assert replayed.json()["run_id"] == run_id
    assert len(DBOS.list_workflows(workflow_ids=[run_id])) == 1


def test_two_comments_are_two_runs(client: TestClient) -> None:
    one = post(client, payloads.issue_comment("/honk fix it", comment_id=4201))
    other = post(client, payloads.issue_comment("/honk fix it", comment_id=4202))
    assert one.json()["run_id"] != other.json()["run_id"]
    found = DBOS.list_workflows(workflow_ids=[one.json()["run_id"], other.json()["run_id"]])
    assert len(found) == 2


UNSIGNED = [
    ("no-signature", {"x-hub-signature-256": None}),
    ("wrong-hmac", {"x-hub-signature-256": "sha256=" + "0" * 64}),
    ("signed-with-another-secret", {"x-hub-signature-256": "other"}),
    ("no-event", {"x-github-event": None}),
    ("no-delivery", {"x-github-delivery": None}),
]


@pytest.mark.parametrize(("case", "override"), UNSIGNED, ids=[u[0] for u in UNSIGNED])
def test_nothing_is_enqueued_or_stored_before_the_signature_holds(
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    override: dict[str, str | None],
) -> None:
    honk = client.app.state.honk  # type: ignore[attr-defined]
    touched: list[str] = []

    async def enqueue(trigger: Any) -> str:
        touched.append(trigger.run_id)
        return "never"

    monkeypatch.setattr(honk.ctx, "enqueue", enqueue)
    monkeypatch.setattr(honk.runtime.store, "record", lambda *a: touched.append("store"))
    body = json.dumps(payloads.issue_comment("/honk fix it", comment_id=4300)).encode()
    hdrs: dict[str, str] = headers(body)
    for key, value in override.items():
        if value is None:
            hdrs.pop(key)
        elif value == "other":
            hdrs[key] = sign(b"not-the-webhook-secret", body)
        else:
            hdrs[key] = value

    response = client.post(PATH, content=body, headers=hdrs)

    assert response.status_code in (400, 401)
    assert touched == []
    assert DBOS.list_workflows(workflow_ids=["honk-ic4300"]) == []


def test_handler_exception_is_a_500_and_the_server_keeps_serving(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    honk = client.app.state.honk  # type: ignore[attr-defined]

    async def broken(_: Any) -> str:
        raise RuntimeError("queue exploded")

    monkeypatch.setattr(honk.ctx, "enqueue", broken)
    response = post(client, payloads.issue_comment("/honk go"))
    assert response.status_code == 500
    assert "exploded" not in response.text
    assert client.get("/ping").status_code == 200


def test_payload_a_model_rejects_is_still_accepted(client: TestClient) -> None:
    payload = payloads.issue_comment("/honk fix it")
    payload["comment"]["user"] = {
        "login": "mona",
        "id": payloads.SENDER_ID,
        "type": "User",
    }  # too thin for the model
    response = post(client, payload)
    assert response.status_code == 202, response.text


def test_a_comment_with_a_lone_surrogate_escape_is_still_a_trigger(client: TestClient) -> None:
    """JSON allows a lone surrogate escape; the delivery must not be lost over it."""
    payload = payloads.issue_comment("/honk fix the parser \ud800 please", comment_id=4400)
    body = json.dumps(payload).encode()
    assert b"\\ud800" in body
    response = client.post(PATH, content=body, headers=headers(body))
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    status = DBOS.get_workflow_status(run_id)
    assert status is not None and status.input is not None
    (trigger_json,) = status.input["args"]
    assert trigger_json["instruction"] == "fix the parser \ud800 please"


def _scope(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }


async def _call(app: Any, headers: dict[str, str], receive: Any) -> int:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(headers), receive, send)
    return int(sent[0]["status"])


@pytest.mark.parametrize("missing", ["x-github-event", "x-github-delivery", "x-hub-signature-256"])
def test_a_request_without_githubs_headers_is_refused_before_its_body_is_read(
    client: TestClient, missing: str
) -> None:
    body = json.dumps(payloads.issue_comment("/honk go")).encode()
    hdrs = headers(body)
    del hdrs[missing]
    reads: list[str] = []

    async def receive() -> dict[str, Any]:
        reads.append("body")
        return {"type": "http.request", "body": body, "more_body": False}

    status = asyncio.run(_call(client.app, hdrs, receive))
    assert status in (400, 401)
    assert reads == []


def test_a_body_that_never_arrives_is_answered_once_its_deadline_passes(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "BODY_DEADLINE_S", 0.05)
    body = b"{}"

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # a client that sent its headers and then went quiet
        raise AssertionError("unreachable")

    assert asyncio.run(_call(client.app, headers(body), receive)) == 400


def test_a_long_comment_is_decided_off_the_event_loop_and_still_a_trigger(
    client: TestClient,
) -> None:
    """Over INLINE_DECIDE_BYTES the grammar's markdown parse runs in a thread: same answer."""
    long = "> " + "quoted words " * 4_000 + "\n\n/honk fix the README"
    payload = payloads.issue_comment(long, comment_id=4_242)
    assert len(json.dumps(payload)) > INLINE_DECIDE_BYTES
    response = post(client, payload)
    assert response.status_code == 202, response.text
    assert response.json()["command"] == "run"
