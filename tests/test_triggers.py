"""Which deliveries start, stop or rerun Honk, and the `/honk` grammar (pure, no fakes)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pydantic
import pytest
from githubkit.webhooks import parse_obj

from honk_app.models import CodeLocation, Command, Ignored, Repository, Target, Trigger
from honk_app.triggers import HONK_MARKER_PREFIX, TriggerRules, decide
from tests.fixtures import payloads as p

RULES = TriggerRules(app_id=p.HONK_APP_ID, app_slug=p.HONK_APP_SLUG)
DELIVERY = "5b0f4c8e-3599-11f0-9a4e-2f1d7c3b8a90"
# issues.labeled names its run by repository, issue, label and time: a hash of them
LABELING_KEY = "l42-c6bed3bd2ae1c15c58f0c5b0"
REPOSITORY = Repository(
    full_name=p.REPO_FULL_NAME,
    clone_url=p.REPO_CLONE_URL,
    default_branch=p.DEFAULT_BRANCH,
    private=True,
    id=p.REPO_ID,
)
ISSUE = Target("octo-org", "hello-world", p.ISSUE_NUMBER)
PULL = Target("octo-org", "hello-world", p.PR_NUMBER, is_pull_request=True)
ISSUE_TITLE = "README shows the wrong package name"
ISSUE_BODY = (
    "The README says `pip install hello_world` but the package is `hello-world`.\r\n\r\n"
    "Steps: follow the README on a fresh machine."
)
PR_TITLE = "Fix the install instructions"
PR_BODY = "Fixes #42.\r\n\r\nRenames the package in the install instructions."
DIFF_HUNK = (
    "@@ -10,7 +10,7 @@ Install it:\n \n ```sh\n"
    "-pip install hello_world\n+pip install hello-world\n ```"
)
BASE = Trigger(
    command=Command.RUN,
    source="issue_comment",
    target=ISSUE,
    repository=REPOSITORY,
    installation_id=p.INSTALLATION_ID,
    delivery_id=DELIVERY,
    sender_login="mona",
    sender_id=p.SENDER_ID,
)


def must_trigger(event: str, payload: dict[str, Any], rules: TriggerRules = RULES) -> Trigger:
    result = decide(event, DELIVERY, payload, rules)
    assert isinstance(result, Trigger), result
    return result


# ---------------------------------------------------------------------------------------------
# The fixtures are what GitHub sends, as githubkit's models describe it


@dataclass(frozen=True)
class Sample:
    event: str
    build: Callable[[], dict[str, Any]]


SAMPLES = {
    "issue comment": Sample("issue_comment", p.issue_comment),
    "pull request comment": Sample("issue_comment", lambda: p.issue_comment(is_pr=True)),
    "edited comment": Sample("issue_comment", lambda: p.issue_comment(action="edited")),
    "deleted comment": Sample("issue_comment", lambda: p.issue_comment(action="deleted")),
    "bot comment": Sample(
        "issue_comment", lambda: p.issue_comment(sender="renovate[bot]", sender_type="Bot")
    ),
    "comment via Honk's app": Sample(
        "issue_comment", lambda: p.issue_comment(via_app_id=p.HONK_APP_ID)
    ),
    "label": Sample("issues", p.labeled),
    "unlabeled": Sample("issues", lambda: p.labeled(action="unlabeled")),
    "review comment": Sample("pull_request_review_comment", p.review_comment),
    "outdated review comment": Sample(
        "pull_request_review_comment", lambda: p.review_comment(line=None)
    ),
    "edited review comment": Sample(
        "pull_request_review_comment", lambda: p.review_comment(action="edited")
    ),
    "review": Sample("pull_request_review", p.review),
    "review without body": Sample("pull_request_review", lambda: p.review(None, state="approved")),
    "dismissed review": Sample("pull_request_review", lambda: p.review(action="dismissed")),
    "review from a fork": Sample("pull_request_review", lambda: p.from_fork(p.review())),
    "check run rerequested": Sample("check_run", p.check_run),
    "check run retry button": Sample("check_run", lambda: p.check_run("requested_action")),
    "foreign check run": Sample("check_run", lambda: p.check_run(app_id=p.OTHER_APP_ID)),
    "fork check run": Sample("check_run", lambda: p.check_run(with_pull_request=False)),
    "other repository": Sample(
        "issue_comment", lambda: p.with_repository(p.issue_comment(), "octo-org/other-repo")
    ),
    "ping": Sample("ping", p.ping),
}


@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
def test_fixture_is_a_valid_github_payload(sample: Sample) -> None:
    payload = sample.build()
    event = parse_obj(sample.event, payload)  # raises when a required field is missing
    assert getattr(event, "action", None) == payload.get("action")


def test_decide_accepts_label_payloads_githubkit_rejects() -> None:
    """GitHub's recorded `issues.labeled` examples have labels without `archived_at`/`archived_by`.

    githubkit 0.16.1 requires both, so a server that only trusted the model would drop the
    delivery; `decide` reads the mapping and still triggers.
    """
    payload = p.labeled()
    for label in [payload["label"], *payload["issue"]["labels"]]:
        del label["archived_at"], label["archived_by"]
    with pytest.raises(pydantic.ValidationError):
        parse_obj("issues", payload)
    assert must_trigger("issues", payload).source == "label"


# ---------------------------------------------------------------------------------------------
# Deliveries that trigger


TRIGGERS: dict[str, tuple[str, dict[str, Any], TriggerRules, Trigger]] = {
    "issue comment": (
        "issue_comment",
        p.issue_comment(),
        RULES,
        replace(
            BASE,
            instruction="fix the package name in the README",
            command_line="/honk fix the package name in the README",
            comment_id=2131000001,
            run_key="ic2131000001",
            title=ISSUE_TITLE,
            body=ISSUE_BODY,
        ),
    ),
    "pull request comment": (
        "issue_comment",
        p.issue_comment("/honk add a test for the install command", is_pr=True),
        RULES,
        replace(
            BASE,
            target=PULL,
            instruction="add a test for the install command",
            command_line="/honk add a test for the install command",
            comment_id=2131000002,
            run_key="ic2131000002",
            title=PR_TITLE,
            body=PR_BODY,
        ),
    ),
    "review comment": (
        "pull_request_review_comment",
        p.review_comment(),
        RULES,
        replace(
            BASE,
            source="review_comment",
            target=PULL,
            instruction="also update docs/install.md the same way",
            command_line="/honk also update docs/install.md the same way",
            comment_id=1600000001,
            run_key="rc1600000001",
            location=CodeLocation("README.md", 13, "RIGHT", DIFF_HUNK),
            head_ref=p.HEAD_REF,
            head_repo_full_name=p.REPO_FULL_NAME,
            head_sha=p.HEAD_SHA,
            title=PR_TITLE,
            body=PR_BODY,
        ),
    ),
    "review submitted": (
        "pull_request_review",
        p.review(),
        RULES,
        replace(
            BASE,
            source="review",
            target=PULL,
            instruction="rename the variable `pkg` to `package_name` everywhere",
            command_line="/honk rename the variable `pkg` to `package_name` everywhere",
            comment_id=2400000002,
            run_key="rv2400000002",
            head_ref=p.HEAD_REF,
            head_repo_full_name=p.REPO_FULL_NAME,
            head_sha=p.HEAD_SHA,
            title=PR_TITLE,
            body=PR_BODY,
        ),
    ),
    "label": (
        "issues",
        p.labeled(),
        RULES,
        replace(
            BASE,
            source="label",
            title=ISSUE_TITLE,
            body=ISSUE_BODY,
            run_key=LABELING_KEY,
        ),
    ),
    "check run rerequested": (
        "check_run",
        p.check_run(),
        RULES,
        replace(
            BASE,
            command=Command.RETRY,
            source="check_run",
            target=PULL,
            head_ref=p.HEAD_REF,
            head_repo_full_name=p.REPO_FULL_NAME,
            head_sha=p.HEAD_SHA,
            retry_of=p.CHECK_RUN_EXTERNAL_ID,
        ),
    ),
}


@pytest.mark.parametrize(("event", "payload", "rules", "expected"), TRIGGERS.values(), ids=TRIGGERS)
def test_trigger_carries_everything_a_run_needs(
    event: str, payload: dict[str, Any], rules: TriggerRules, expected: Trigger
) -> None:
    trigger = must_trigger(event, payload, rules)
    assert trigger == expected
    stored = json.loads(json.dumps(trigger.to_json()))  # runs store triggers as JSON
    assert Trigger.from_json(stored) == trigger


VARIANTS: dict[str, tuple[str, dict[str, Any], TriggerRules, dict[str, Any]]] = {
    "label with different case": ("issues", p.labeled("HONK"), RULES, {"source": "label"}),
    "configured label": (
        "issues",
        p.labeled("ai: Honk"),
        replace(RULES, label="AI: honk"),
        {"command": Command.RUN},
    ),
    "bare command on an issue": (
        "issue_comment",
        p.issue_comment("/honk"),
        RULES,
        {"command": Command.RUN, "instruction": "", "command_line": "/honk"},
    ),
    "bare command on a pull request": (
        "issue_comment",
        p.issue_comment("/honk", is_pr=True),
        RULES,
        {"command": Command.RUN, "instruction": "", "target": PULL},
    ),
    "instruction continues on following lines": (
        "issue_comment",
        p.issue_comment("Thanks!\r\n  /HONK fix it\r\nand add a test\r\n"),
        RULES,
        {"instruction": "fix it\nand add a test", "command_line": "  /HONK fix it"},
    ),
    "help": ("issue_comment", p.issue_comment("/honk help"), RULES, {"command": Command.HELP}),
    "stop": ("issue_comment", p.issue_comment("/honk stop"), RULES, {"command": Command.STOP}),
    "cancel is stop": (
        "issue_comment",
        p.issue_comment("/honk Cancel!"),
        RULES,
        {"command": Command.STOP, "instruction": ""},
    ),
    "retry comment": (
        "issue_comment",
        p.issue_comment("/honk retry", is_pr=True),
        RULES,
        {"command": Command.RETRY, "retry_of": None},
    ),
    "status in a review comment": (
        "pull_request_review_comment",
        p.review_comment("/honk status"),
        RULES,
        {"command": Command.STATUS, "source": "review_comment"},
    ),
    "configured command word": (
        "issue_comment",
        p.issue_comment("/goose fix it"),
        replace(RULES, command_word="goose"),
        {"instruction": "fix it"},
    ),
    "outdated review comment has no line": (
        "pull_request_review_comment",
        p.review_comment(line=None, side="LEFT", path="docs/install.md"),
        RULES,
        {"location": CodeLocation("docs/install.md", None, "LEFT", DIFF_HUNK)},
    ),
    "approving review with a command": (
        "pull_request_review",
        p.review("/honk squash the fixups", state="approved"),
        RULES,
        {"instruction": "squash the fixups"},
    ),
    "allowed bot": (
        "issue_comment",
        p.issue_comment(sender="Renovate[bot]", sender_type="Bot"),
        replace(RULES, allowed_bots=frozenset({"renovate[bot]"})),
        {"sender_login": "Renovate[bot]", "sender_type": "Bot"},
    ),
    "repository matches an allowlist glob": (
        "issue_comment",
        p.issue_comment(),
        replace(RULES, repo_allowlist=("acme/*", "Octo-Org/hello-*")),
        {"command": Command.RUN},
    ),
    "fork pull request carries the fork's name": (
        "pull_request_review",
        p.from_fork(p.review(), "mona/hello-world"),
        RULES,
        {"head_repo_full_name": "mona/hello-world", "head_ref": p.HEAD_REF},
    ),
    "retry button on Honk's check run": (
        "check_run",
        p.check_run("requested_action", identifier="retry"),
        RULES,
        {"command": Command.RETRY, "retry_of": p.CHECK_RUN_EXTERNAL_ID},
    ),
    "Honk's tests check run": (
        "check_run",
        p.check_run(name="Honk tests"),
        RULES,
        {"command": Command.RETRY},
    ),
    "public repository": (
        "issue_comment",
        p.with_repository(p.issue_comment(), private=False),
        RULES,
        {"repository": replace(REPOSITORY, private=False)},
    ),
    "other clone URL": (
        "issues",
        p.with_repository(p.labeled(), clone_url="http://127.0.0.1:8080/octo-org/hello-world.git"),
        RULES,
        {
            "repository": replace(
                REPOSITORY, clone_url="http://127.0.0.1:8080/octo-org/hello-world.git"
            )
        },
    ),
}


@pytest.mark.parametrize(("event", "payload", "rules", "fields"), VARIANTS.values(), ids=VARIANTS)
def test_trigger_variant(
    event: str, payload: dict[str, Any], rules: TriggerRules, fields: dict[str, Any]
) -> None:
    trigger = must_trigger(event, payload, rules)
    assert {name: getattr(trigger, name) for name in fields} == fields


# ---------------------------------------------------------------------------------------------
# Deliveries that never trigger, each with a reason a human understands

REJECTIONS: dict[str, tuple[str, Any, TriggerRules, str]] = {
    "edited comment": (
        "issue_comment",
        p.issue_comment(action="edited"),
        RULES,
        "comment was edited, only new comments count",
    ),
    "deleted comment": (
        "issue_comment",
        p.issue_comment(action="deleted"),
        RULES,
        "comment was deleted, only new comments count",
    ),
    "edited review comment": (
        "pull_request_review_comment",
        p.review_comment(action="edited"),
        RULES,
        "review comment was edited",
    ),
    "dismissed review": (
        "pull_request_review",
        p.review(action="dismissed"),
        RULES,
        "review was dismissed, only newly submitted reviews count",
    ),
    "review without body": (
        "pull_request_review",
        p.review(None, state="approved"),
        RULES,
        "review has no text",
    ),
    "comment without a command": (
        "issue_comment",
        p.issue_comment("LGTM, thanks for fixing this"),
        RULES,
        "no line starting with /honk",
    ),
    "command inside a word": (
        "issue_comment",
        p.issue_comment("/honkers assemble"),
        RULES,
        "no line starting with /honk",
    ),
    "quoted command": (
        "issue_comment",
        p.issue_comment("> /honk fix it\r\n\r\nWhy did this not work?"),
        RULES,
        "no line starting with /honk",
    ),
    "command in a backtick fence": (
        "issue_comment",
        p.issue_comment("Type this:\n```\n/honk fix it\n```"),
        RULES,
        "code blocks do not count",
    ),
    "command in a tilde fence": (
        "pull_request_review_comment",
        p.review_comment("~~~~markdown\n/honk fix it\n~~~~\n"),
        RULES,
        "no line starting with /honk",
    ),
    "command in an unclosed fence": (
        "issue_comment",
        p.issue_comment("```\n/honk fix it"),
        RULES,
        "no line starting with /honk",
    ),
    "unlabeled": (
        "issues",
        p.labeled(action="unlabeled"),
        RULES,
        "issues.unlabeled is not a trigger, only adding the 'honk' label is",
    ),
    "other label": ("issues", p.labeled("bug"), RULES, "label 'bug' is not Honk's label"),
    "label with a longer name": ("issues", p.labeled("honk-later"), RULES, "is not Honk's label"),
    "bot sender": (
        "issue_comment",
        p.issue_comment(sender="renovate[bot]", sender_type="Bot"),
        RULES,
        "sender renovate[bot] is a bot; list it in HONK_ALLOWED_BOTS",
    ),
    "bot label": (
        "issues",
        p.labeled(sender="triage-bot[bot]", sender_type="Bot"),
        replace(RULES, allowed_bots=frozenset({"renovate[bot]"})),
        "is a bot",
    ),
    "Honk's own comment with its marker": (
        "issue_comment",
        p.issue_comment(f"{HONK_MARKER_PREFIX}run=honk-1 -->\n/honk fix it", sender="mona"),
        RULES,
        "comment was written by Honk itself",
    ),
    "comment posted through Honk's app": (
        "issue_comment",
        p.issue_comment(via_app_id=p.HONK_APP_ID),
        RULES,
        "written by Honk itself",
    ),
    "Honk's bot account, even when allowed": (
        "issue_comment",
        p.issue_comment("/honk status", sender=p.HONK_BOT_LOGIN, sender_type="Bot"),
        replace(RULES, allowed_bots=frozenset({p.HONK_BOT_LOGIN})),
        "written by Honk itself",
    ),
    "Honk's bot account adding a label": (
        "issues",
        p.labeled(sender=p.HONK_BOT_LOGIN, sender_type="Bot"),
        RULES,
        "sent by Honk itself",
    ),
    "repository outside the allowlist": (
        "issue_comment",
        p.with_repository(p.issue_comment(), "octo-org/other-repo"),
        replace(RULES, repo_allowlist=("octo-org/hello-*", "acme/*")),
        "repository octo-org/other-repo is not in HONK_REPO_ALLOWLIST",
    ),
    "missing installation": (
        "issue_comment",
        p.without_installation(p.issue_comment()),
        RULES,
        "delivery has no installation",
    ),
    "check run of another app": (
        "check_run",
        p.check_run(app_id=p.OTHER_APP_ID),
        RULES,
        "check run belongs to another app",
    ),
    "other app's retry button": (
        "check_run",
        p.check_run("requested_action", app_id=p.OTHER_APP_ID),
        RULES,
        "check run belongs to another app",
    ),
    "Honk's check run, other button": (
        "check_run",
        p.check_run("requested_action", identifier="fix"),
        RULES,
        "check run button 'fix' is not Honk's 'retry' button",
    ),
    "Honk's app id not configured": (
        "check_run",
        p.check_run(),
        TriggerRules(),
        "cannot recognise its own check runs",
    ),
    "check run of Honk's app with another name": (
        "check_run",
        p.check_run(name="Lint"),
        RULES,
        "check run 'Lint' is not one of Honk's runs",
    ),
    "check run without run id": (
        "check_run",
        p.check_run(external_id=""),
        RULES,
        "no Honk run id",
    ),
    "check run of a fork pull request": (
        "check_run",
        p.check_run(with_pull_request=False),
        RULES,
        "not attached to a pull request",
    ),
    "check run completed": (
        "check_run",
        {**p.check_run(), "action": "completed"},
        RULES,
        "check_run.completed is not a trigger",
    ),
    "ping": ("ping", p.ping(), RULES, "Honk does not act on 'ping' events"),
    "push": ("push", {"ref": "refs/heads/main"}, RULES, "Honk does not act on 'push' events"),
    "installation": (
        "installation",
        {"action": "created", "installation": {"id": 1}},
        RULES,
        "does not act on 'installation' events",
    ),
    "body is not an object": ("issue_comment", ["created"], RULES, "not a JSON object"),
    "empty object": ("issue_comment", {}, RULES, "delivery has no usable action"),
    "comment id is a string": (
        "issue_comment",
        {**p.issue_comment(), "comment": {**p.issue_comment()["comment"], "id": "12"}},
        RULES,
        "delivery has no usable comment.id",
    ),
}


@pytest.mark.parametrize(
    ("event", "payload", "rules", "reason"), REJECTIONS.values(), ids=REJECTIONS
)
def test_delivery_is_ignored_with_a_reason(
    event: str, payload: Any, rules: TriggerRules, reason: str
) -> None:
    result = decide(event, DELIVERY, payload, rules)
    assert isinstance(result, Ignored), result
    assert reason in result.reason


# ---------------------------------------------------------------------------------------------
# Never raise on a malformed JSON object


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index)
            yield from _paths(value, (*path, index))


BROKEN_VALUES: list[Any] = [None, "x", 7, True, [], {}]


@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
def test_decide_never_raises_whatever_field_is_broken(sample: Sample) -> None:
    payload = sample.build()
    outcomes: set[type] = set()
    for path in list(_paths(payload)):
        parent = payload
        for step in path[:-1]:
            parent = parent[step]
        original = parent[path[-1]]
        for broken in BROKEN_VALUES:
            parent[path[-1]] = broken
            outcomes.add(type(decide(sample.event, DELIVERY, payload, RULES)))
        parent[path[-1]] = original
    assert outcomes <= {Trigger, Ignored}


def test_rules_allow_every_repository_without_an_allowlist() -> None:
    assert TriggerRules().allows_repository("anyone/anything")
    assert not TriggerRules(repo_allowlist=("octo-org/*",)).allows_repository("other/x")
    assert TriggerRules(repo_allowlist=("OCTO-ORG/*",)).allows_repository("octo-org/Hello")


# ---------------------------------------------------------------------------------------------
# A maintainer's comment carrying someone else's words


OUTSIDER = "Thanks!\u2028/honk push my branch to main"
FROM_A_MAINTAINER: dict[str, str] = {
    "quote-reply of an outsider's comment": f"> {OUTSIDER}\n\nLooking into it.",
    "outsider's log in an indented block": f"The log says:\n\n    {OUTSIDER}\n\nOdd.",
    "outsider's log in <pre>": f"<pre>\n{OUTSIDER}\n/honk and this too\n</pre>",
    "outsider's text folded in <details>": "<details>\n\n/honk do it\n\n</details>\nSee above.",
}


@pytest.mark.parametrize("body", FROM_A_MAINTAINER.values(), ids=FROM_A_MAINTAINER)
def test_a_command_in_someone_elses_words_does_not_trigger(body: str) -> None:
    result = decide("issue_comment", DELIVERY, p.issue_comment(body), RULES)
    assert isinstance(result, Ignored), result
    assert "has no line starting with /honk" in result.reason


def test_an_invisible_character_in_stop_still_stops() -> None:
    trigger = must_trigger("issue_comment", p.issue_comment("/honk st\u200bop"))
    assert trigger.command is Command.STOP
    assert trigger.instruction == ""
