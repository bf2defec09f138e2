"""The raw-bytes pre-check never drops a delivery that `decide` would turn into a trigger."""

from __future__ import annotations

import json
from typing import Any

import pytest

from honk_app.models import Trigger
from honk_app.prefilter import looks_like_json_object, may_trigger
from honk_app.triggers import TriggerRules, decide
from tests.fixtures import payloads

RULES = TriggerRules(app_id=payloads.HONK_APP_ID, app_slug=payloads.HONK_APP_SLUG)

DELIVERIES: list[tuple[str, str, dict[str, Any]]] = [
    ("comment", "issue_comment", payloads.issue_comment("/honk fix it")),
    ("comment-upper", "issue_comment", payloads.issue_comment("/HONK Fix It")),
    ("comment-later-line", "issue_comment", payloads.issue_comment("Thanks!\r\n/honk go")),
    ("comment-stop", "issue_comment", payloads.issue_comment("/honk stop")),
    ("pr-comment", "issue_comment", payloads.issue_comment("/honk go", is_pr=True)),
    ("review-comment", "pull_request_review_comment", payloads.review_comment("/honk rename")),
    ("review", "pull_request_review", payloads.review()),
    ("label", "issues", payloads.labeled("honk")),
    ("label-case", "issues", payloads.labeled("HoNk")),
    ("check-rerun", "check_run", payloads.check_run("rerequested")),
    ("check-action", "check_run", payloads.check_run("requested_action")),
    ("no-command", "issue_comment", payloads.issue_comment("Looks good to me")),
    ("other-label", "issues", payloads.labeled("bug")),
    ("edited", "issue_comment", payloads.issue_comment("/honk go", action="edited")),
    ("ping", "ping", payloads.ping()),
]


@pytest.mark.parametrize(("case", "event", "payload"), DELIVERIES, ids=[d[0] for d in DELIVERIES])
def test_never_drops_what_decide_accepts(case: str, event: str, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    if isinstance(decide(event, "d", payload, RULES), Trigger):
        assert may_trigger(event, body, RULES)


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("issue_comment", payloads.issue_comment("Looks good to me")),
        ("issues", payloads.labeled("honk", action="unlabeled")),
        ("ping", payloads.ping()),
        ("push", {"ref": "refs/heads/main"}),
    ],
    ids=["comment-without-command", "unlabeled", "ping", "push"],
)
def test_skips_what_cannot_trigger(event: str, payload: dict[str, Any]) -> None:
    assert not may_trigger(event, json.dumps(payload).encode(), RULES)


def test_configured_words_and_non_ascii_words() -> None:
    body = json.dumps(payloads.issue_comment("/goose please")).encode()
    assert may_trigger("issue_comment", body, TriggerRules(command_word="goose"))
    assert not may_trigger("issue_comment", body, RULES)
    assert may_trigger("issue_comment", b'{"x": 1}', TriggerRules(command_word="gänse"))
    assert may_trigger("issues", b'{"action": "labeled"}', TriggerRules(label="🪿"))


def test_looks_like_json_object() -> None:
    assert looks_like_json_object(b'  \n{"a": 1}')
    assert not looks_like_json_object(b"[1, 2]")
    assert not looks_like_json_object(b"not json")
