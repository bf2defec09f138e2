"""Properties of the `/honk` grammar, of `decide` and of the permission check (Hypothesis).

For any comment body, parsing never fails and a command hidden in a quote or a code block never
counts; for any payload, `decide` never raises and never makes a Trigger of a bot's or Honk's own
comment; and for any permission short of write, `authorize` never lets the request through.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from honk_app.command_grammar import parse_command, split_lines
from honk_app.github.models import WRITE_PERMISSIONS
from honk_app.invisible_text import strip_invisible
from honk_app.models import Command, Ignored, Trigger
from honk_app.runs import intake
from honk_app.triggers import HONK_MARKER_PREFIX, TriggerRules, decide
from tests.fakes.github_auth import generate_private_key_pem
from tests.fixtures import payloads
from tests.runs.memory_world import REPO, make_world
from tests.strategies import with_one_field_replaced

RULES = TriggerRules(app_id=payloads.HONK_APP_ID, app_slug=payloads.HONK_APP_SLUG)
WORD = "honk"

# Comment text that is likely to contain commands, fences, quotes and HTML comments.
fragments = st.sampled_from(
    ["/honk", "/HONK", " /honk fix", "/honk stop", "/honk retry", "/honkish", "```", "~~~",
     "````py", ">", "> /honk", "<!--", "-->", "\t", " ", "fix it", "\n", "\r\n", "`"]
)  # fmt: skip
lines = st.lists(st.one_of(fragments, st.text(max_size=12)), max_size=6).map("".join)
bodies = st.lists(lines, max_size=8).map("\n".join)


def closes_a_fence(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= 3 and stripped in ("`" * len(stripped), "~" * len(stripped))


# ---- the grammar ---------------------------------------------------------------------------------


@hypothesis_settings(max_examples=300)
@given(body=st.one_of(bodies, st.text()))
def test_parsing_any_body_never_fails_and_finds_a_line_of_it(body: str) -> None:
    parsed = parse_command(body, WORD)
    if parsed is not None:
        assert parsed.line in split_lines(body)
        assert strip_invisible(parsed.line).strip().lower().startswith("/" + WORD)


@hypothesis_settings(max_examples=200)
@given(body=bodies)
def test_a_quoted_command_never_counts(body: str) -> None:
    quoted = "\n".join("> " + line for line in body.splitlines())
    assert parse_command(quoted, WORD) is None


@hypothesis_settings(max_examples=200)
@given(
    body=bodies,
    fences=st.sampled_from([("```", "```"), ("~~~", "~~~"), ("````", "````"), ("```py", "```")]),
)
def test_a_command_in_a_code_block_never_counts(body: str, fences: tuple[str, str]) -> None:
    opening, closing = fences
    inner = [line for line in body.splitlines() if not closes_a_fence(line)]
    block = "\n".join([opening, *inner, closing])
    assert parse_command(block, WORD) is None


@hypothesis_settings(max_examples=200)
@given(
    body=bodies,
    container=st.sampled_from(
        [("- item", "  "), ("1. item", "   "), ("* > quoted", "  "), ("[^1]: note", "    ")]
    ),
)
def test_a_command_in_a_list_item_or_a_footnote_never_counts(
    body: str, container: tuple[str, str]
) -> None:
    """Every line indented under a list item or a footnote belongs to it, not to a paragraph."""
    first, indent = container
    nested = "\n".join([first, *(indent + line for line in body.splitlines())])
    assert parse_command(nested, WORD) is None


@hypothesis_settings(max_examples=200)
@given(
    instruction=st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=40),
    indent=st.sampled_from(["", " ", "  ", "   "]),  # four columns make a code block
)
def test_a_command_line_of_its_own_always_counts(instruction: str, indent: str) -> None:
    parsed = parse_command(f"{indent}/honk {instruction}", WORD)
    assert parsed is not None
    if parsed.command is Command.RUN:
        assert parsed.instruction == strip_invisible(instruction).strip()


# ---- decide --------------------------------------------------------------------------------------

COMMENT_EVENTS = [
    ("issue_comment", "comment", lambda body: payloads.issue_comment(body)),
    ("issue_comment", "comment", lambda body: payloads.issue_comment(body, is_pr=True)),
    ("pull_request_review_comment", "comment", lambda body: payloads.review_comment(body)),
    ("pull_request_review", "review", lambda body: payloads.review(body)),
]


@st.composite
def tampered(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A real trigger with one field, anywhere in it, replaced by any JSON value."""
    kinds = [*COMMENT_EVENTS, ("issues", "", lambda _: payloads.labeled("honk"))]
    event, _, make = draw(st.sampled_from(kinds))
    return event, with_one_field_replaced(draw, make("/honk fix it"))


@hypothesis_settings(max_examples=400)
@given(delivery=tampered(), event=st.sampled_from([None, "issues", "issue_comment", "check_run"]))
def test_decide_never_raises_on_any_payload(
    delivery: tuple[str, dict[str, Any]], event: str | None
) -> None:
    original, payload = delivery
    assert isinstance(decide(event or original, "d-1", payload, RULES), Trigger | Ignored)


@st.composite
def written_by_a_bot_or_honk(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A comment with a command, sent by a bot not allowed, or written by Honk itself."""
    event, key, make = draw(st.sampled_from(COMMENT_EVENTS))
    body = draw(st.sampled_from(["/honk", "/honk fix it", "/honk retry"]))
    how = draw(st.sampled_from(["bot", "honk's bot account", "honk's app", "honk's marker"]))
    login = draw(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
    if how == "honk's marker":
        body += f"\n{HONK_MARKER_PREFIX}run=x -->"
    payload = make(body)
    if how == "bot":
        payload["sender"] = payloads.user(login + "[bot]", "Bot")
    elif how == "honk's bot account":
        payload["sender"] = payloads.user(payloads.HONK_BOT_LOGIN, "Bot")
        payload[key]["user"] = payloads.user(payloads.HONK_BOT_LOGIN, "Bot")
    elif how == "honk's app":
        payload[key]["performed_via_github_app"] = payloads.honk_app()
    return event, payload


@hypothesis_settings(max_examples=150)
@given(delivery=written_by_a_bot_or_honk())
def test_no_trigger_from_a_bot_or_from_honk_itself(delivery: tuple[str, dict[str, Any]]) -> None:
    event, payload = delivery
    assert isinstance(decide(event, "d-1", payload, RULES), Ignored)


@hypothesis_settings(max_examples=150)
@given(kind=st.sampled_from(COMMENT_EVENTS), body=bodies)
def test_a_comment_whose_commands_are_all_quoted_never_triggers(kind: Any, body: str) -> None:
    event, _, make = kind
    quoted = "\n".join("> " + line for line in body.splitlines()) or "> /honk"
    assert isinstance(decide(event, "d-1", make(quoted), RULES), Ignored)


# ---- authorize -----------------------------------------------------------------------------------

permissions = st.one_of(
    st.sampled_from(["admin", "maintain", "write", "triage", "read", "none", "Write", "WRITE"]),
    st.text(max_size=10),
    st.none(),
)


@hypothesis_settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    permission=permissions,
    body=st.sampled_from(["/honk", "/honk fix it", "/honk retry", "/honk stop", "/honk status"]),
    sender=st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True).filter(lambda s: s != "mona"),
)
def test_a_sender_without_write_access_is_never_authorized(
    permission: str | None, body: str, sender: str
) -> None:
    """The request passes exactly when GitHub answers admin, maintain or write for the sender."""
    with tempfile.TemporaryDirectory() as tmp:
        world = make_world(Path(tmp), PRIVATE_KEY)
        try:
            if permission is not None:
                world.github.set_permission(REPO, sender, permission)
            trigger = world.trigger("issue_comment", payloads.issue_comment(body, sender=sender))

            async def ask() -> str | None:
                return await intake.authorize(world.rt, await world.recorded(trigger))

            refusal = asyncio.run(ask())
        finally:
            world.store.engine.dispose()
    if permission in WRITE_PERMISSIONS:
        assert refusal is None
    else:
        assert refusal == "unauthorized"


PRIVATE_KEY = generate_private_key_pem()
