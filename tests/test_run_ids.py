"""Run ids come from what the signed body names, never from the unsigned delivery id alone.

The same comment (issue comments, review comments and reviews each have their own id space) or
the same labeling (repository, issue, label, time) is one run, whatever delivery id it came with.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import pytest

from honk_app.models import Trigger
from honk_app.triggers import TriggerRules, decide
from tests.fixtures import payloads as p

RULES = TriggerRules(app_id=p.HONK_APP_ID, app_slug=p.HONK_APP_SLUG)
DELIVERY = "5b0f4c8e-3599-11f0-9a4e-2f1d7c3b8a90"


def _relabeled(**issue: Any) -> dict[str, Any]:
    payload = p.labeled()
    payload["issue"].update(issue)
    return payload


def _label(**label: Any) -> dict[str, Any]:
    payload = p.labeled()
    payload["label"].update(label)
    return payload


def _review_comment(comment_id: int) -> dict[str, Any]:
    payload = p.review_comment()
    payload["comment"]["id"] = comment_id
    return payload


def _review(review_id: int) -> dict[str, Any]:
    payload = p.review()
    payload["review"]["id"] = review_id
    return payload


def _in_repository(payload: dict[str, Any], repo_id: int) -> dict[str, Any]:
    payload["repository"]["id"] = repo_id
    return payload


# (event, payload) pairs: the delivery id is not signed, so only what the body says tells runs
# apart. Each pair is delivered under two different delivery ids.
SAME_OR_NOT: dict[str, tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]], bool]] = {
    "same comment": (
        ("issue_comment", p.issue_comment(comment_id=7)),
        ("issue_comment", p.issue_comment("/honk something else", comment_id=7)),
        True,
    ),
    "other comment": (
        ("issue_comment", p.issue_comment(comment_id=7)),
        ("issue_comment", p.issue_comment(comment_id=8)),
        False,
    ),
    "issue comment and review comment with the same id": (
        ("issue_comment", p.issue_comment(comment_id=7)),
        ("pull_request_review_comment", _review_comment(7)),
        False,
    ),
    "review comment and review with the same id": (
        ("pull_request_review_comment", _review_comment(7)),
        ("pull_request_review", _review(7)),
        False,
    ),
    "same labeling": (("issues", p.labeled()), ("issues", p.labeled()), True),
    "label added again later": (
        ("issues", p.labeled()),
        ("issues", _relabeled(updated_at="2025-05-21T10:00:00Z")),
        False,
    ),
    "same label on another issue": (
        ("issues", p.labeled()),
        ("issues", _relabeled(number=99)),
        False,
    ),
    "same label in another repository": (
        ("issues", p.labeled()),
        ("issues", _in_repository(p.labeled(), 12345)),
        False,
    ),
    "another label of the same name": (
        ("issues", p.labeled()),
        ("issues", _label(id=7777)),
        False,
    ),
}


@pytest.mark.parametrize(("first", "second", "same"), SAME_OR_NOT.values(), ids=SAME_OR_NOT)
def test_the_signed_body_not_the_delivery_id_names_the_run(
    first: tuple[str, dict[str, Any]], second: tuple[str, dict[str, Any]], same: bool
) -> None:
    a = decide(first[0], str(uuid.uuid4()), first[1], RULES)
    b = decide(second[0], str(uuid.uuid4()), second[1], RULES)
    assert isinstance(a, Trigger) and isinstance(b, Trigger)
    assert (a.run_id == b.run_id) is same
    for trigger in (a, b):  # a run id is a run marker and a DBOS workflow id
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,200}", trigger.run_id)
        assert trigger.delivery_id not in trigger.run_id


@pytest.mark.parametrize(
    ("delivery", "run_id"),
    [
        ("72d4c1e0-5f1a-11ef-9e0b-3c7d2a1b9f00", "honk-72d4c1e0-5f1a-11ef-9e0b-3c7d2a1b9f00"),
        (
            "<!-- -->",
            "honk-d" + hashlib.sha256(b"<!-- -->").hexdigest()[:32],
        ),
    ],
    ids=["uuid", "outside-the-marker-charset"],
)
def test_a_check_run_rerun_is_named_by_its_delivery(delivery: str, run_id: str) -> None:
    """A re-requested check run carries nothing that tells two presses apart; the permission
    check at intake and at run start keeps a replayed one to writers."""
    trigger = decide("check_run", delivery, p.check_run(), RULES)
    assert isinstance(trigger, Trigger)
    assert trigger.run_id == run_id


def test_a_labeling_without_a_time_falls_back_to_the_delivery() -> None:
    payload = p.labeled()
    del payload["issue"]["updated_at"]
    trigger = decide("issues", DELIVERY, payload, RULES)
    assert isinstance(trigger, Trigger)
    assert trigger.run_id == f"honk-{DELIVERY}"
