"""githubkit's models, read once per event name, and checked off the webhook path."""

from __future__ import annotations

import asyncio
import logging

import pytest

from honk_app import events
from tests.fixtures import payloads


def test_a_payload_the_model_accepts_is_returned_as_the_model() -> None:
    model = events.validate("issue_comment", "d-1", payloads.issue_comment("/honk go"))
    assert model is not None
    assert model.comment.body == "/honk go"


def test_a_payload_the_model_rejects_is_logged_with_where_and_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = payloads.issue_comment("/honk go")
    del payload["comment"]["user"]["login"]
    assert events.validate("issue_comment", "d-2", payload) is None
    assert "rejected delivery d-2" in caplog.text
    assert "comment" in caplog.text and "login" in caplog.text


def test_events_honk_does_not_act_on_are_not_validated() -> None:
    assert events.validate("star", "d-3", {"action": "created"}) is None


async def _drain(check: events.ModelCheck) -> None:
    task = asyncio.create_task(check.run_forever())
    for _ in range(1000):
        if check.checked + check.skipped >= 3:
            break
        await asyncio.sleep(0.001)
    task.cancel()


async def test_the_model_check_runs_after_the_answer(caplog: pytest.LogCaptureFixture) -> None:
    check = events.ModelCheck()
    bad = payloads.issue_comment("/honk go")
    del bad["comment"]["user"]["login"]
    check.submit("issue_comment", "d-ok", payloads.issue_comment("/honk go"))
    check.submit("issue_comment", "d-bad", bad)
    check.submit("issue_comment", "d-ok-2", payloads.issue_comment("/honk go"))
    assert check.checked == 0  # nothing on the webhook path itself
    await _drain(check)
    assert check.checked == 3
    assert "rejected delivery d-bad" in caplog.text
    assert "d-ok" not in caplog.text


async def test_a_burst_beyond_its_capacity_skips_checks_not_work(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="honk.events")
    check = events.ModelCheck(capacity=1)
    for n in range(3):
        check.submit("issue_comment", f"d-{n}", payloads.issue_comment("/honk go"))
    await _drain(check)
    assert (check.checked, check.skipped) == (1, 2)
    assert "skipped the model check of 2 deliveries" in caplog.text
