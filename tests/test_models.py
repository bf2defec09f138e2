"""Triggers travel as workflow inputs: plain JSON, and back again unchanged."""

from __future__ import annotations

import dataclasses
import json
import uuid

from honk_app.models import Trigger
from honk_app.triggers import TriggerRules, decide
from tests.fixtures import payloads


def _triggers() -> list[Trigger]:
    found = []
    for event, payload in [
        ("issue_comment", payloads.issue_comment("/honk fix it\nplease")),
        ("pull_request_review_comment", payloads.review_comment("/honk rename this")),
        ("issues", payloads.labeled("honk")),
    ]:
        decision = decide(event, str(uuid.uuid4()), payload, TriggerRules())
        assert isinstance(decision, Trigger), decision
        found.append(decision)
    return found


def test_a_trigger_survives_json_and_back() -> None:
    for trigger in _triggers():
        data = json.loads(json.dumps(trigger.to_json()))
        assert Trigger.from_json(data) == trigger


def test_to_json_holds_what_asdict_holds_in_json_types() -> None:
    for trigger in _triggers():
        expected = dataclasses.asdict(trigger)
        expected["command"] = trigger.command.value
        assert trigger.to_json() == expected
        assert type(trigger.to_json()["command"]) is str
