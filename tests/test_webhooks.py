"""The webhook endpoint, in the order of its checks, against a real app with a real SQLite queue."""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dbos import DBOS
from starlette.testclient import TestClient

from honk_app.priority import ANSWERING, GAUGE
from honk_app.runs.queue import INTAKE_QUEUE
from honk_app.server import INBOX_FILE, YOUNG_GC_THRESHOLD, create_app, tune_collector
from honk_app.webhooks import MAX_BODY_BYTES, DeliveryHeaders, sign, signature_matches
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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], DeliveryHeaders()),
        (
            [
                (b"x-github-event", b"issues"),
                (b"x-github-delivery", b"d-1"),
                (b"x-hub-signature-256", b"sha256=ab"),
                (b"content-length", b"12"),
            ],
            DeliveryHeaders(
                content_length="12", event="issues", delivery="d-1", signature="sha256=ab"
            ),
        ),
        # a repeated header: the first one counts, as with Starlette's headers.get
        (
            [(b"x-github-event", b"issues"), (b"x-github-event", b"push")],
            DeliveryHeaders(event="issues"),
        ),
        # other headers are not read; values are latin-1, as HTTP header bytes are
        (
            [(b"user-agent", b"GitHub-Hookshot/1"), (b"x-github-delivery", b"caf\xe9")],
            DeliveryHeaders(delivery="caf\xe9"),
        ),
    ],
)
def test_delivery_headers_are_read_in_one_pass(
    raw: list[tuple[bytes, bytes]], expected: DeliveryHeaders
) -> None:
    assert DeliveryHeaders.read(raw) == expected


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
    delivery = str(uuid.uuid4())
    response = post(client, payloads.issue_comment("/honk fix the README"), delivery=delivery)
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert delivery in run_id
    # On disk when the 202 left: in the inbox file, or already handed to the run queue (the
    # inbox deletes a row only after the hand-off, so reading it first cannot miss the run).
    inbox_file = client.app.state.honk.settings.data_dir / INBOX_FILE  # type: ignore[attr-defined]
    with sqlite3.connect(inbox_file) as conn:
        waiting = [r[0] for r in conn.execute("SELECT run_id FROM honk_inbox")]
    assert run_id in waiting or DBOS.get_workflow_status(run_id) is not None
    status = wait_for(lambda: DBOS.get_workflow_status(run_id), "the run to reach the queue")
    assert status.status == "ENQUEUED"
    assert status.queue_name == INTAKE_QUEUE
    assert wait_for(lambda: client.get("/healthz").json()["inbox"] == 0, "an empty inbox")


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


def test_background_work_sees_a_delivery_while_it_is_answered(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    honk = client.app.state.honk  # type: ignore[attr-defined]
    seen: list[int] = []
    real_enqueue = honk.ctx.enqueue

    answering_in_threads: list[bool] = []

    async def enqueue(trigger: Any) -> str:
        seen.append(GAUGE.in_flight)
        # Its own work in threads (a Postgres enqueue) is not metered as background work.
        answering_in_threads.append(await asyncio.to_thread(ANSWERING.get))
        return str(await real_enqueue(trigger))

    monkeypatch.setattr(honk.ctx, "enqueue", enqueue)
    assert post(client, payloads.issue_comment("/honk go")).status_code == 202
    assert seen == [1]
    assert answering_in_threads == [True]
    assert GAUGE.in_flight == 0


def test_a_comment_with_a_lone_surrogate_escape_is_still_a_trigger(client: TestClient) -> None:
    """orjson refuses `\\ud800`; the standard library reads it, so the delivery is not lost."""
    payload = payloads.issue_comment("/honk fix the parser \ud800 please")
    body = json.dumps(payload).encode()
    assert b"\\ud800" in body
    response = client.post(PATH, content=body, headers=headers(body))
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    # Through the inbox to the run queue, the instruction intact.
    status = wait_for(lambda: DBOS.get_workflow_status(run_id), "the run to reach the queue")
    assert status.input is not None
    (trigger_json,) = status.input["args"]
    assert trigger_json["instruction"] == "fix the parser \ud800 please"


def test_the_collector_leaves_startups_objects_alone_and_runs_less_often() -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700)
    built_at_startup = [["a model"], ["an adapter"]]
    gc.disable()  # as `honk serve` starts
    try:
        tune_collector()
        assert gc.isenabled()
        # Still tracked, but in no generation a collection walks.
        assert gc.is_tracked(built_at_startup[0])
        assert not any(o is built_at_startup[0] for o in gc.get_objects())
        assert gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
    finally:
        gc.enable()
        gc.set_threshold(*before)
