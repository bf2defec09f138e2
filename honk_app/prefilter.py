"""Pure: a cheap look at a delivery's raw bytes, so most deliveries are never parsed as JSON.

Parsing the JSON of every delivery was the largest cost on the webhook path (about a third of
the CPU per request, measured by bench/webhook_ingest.py). `may_trigger` answers False only when
`triggers.decide` would certainly ignore the delivery: it looks for the bytes every trigger must
contain. GitHub writes ASCII text unescaped in its JSON, so `/honk` in a comment appears as is;
for a non-ASCII command word or label (which JSON may escape) it always answers True.
"""

from __future__ import annotations

from functools import cache

from honk_app.triggers import TriggerRules

COMMENT_EVENTS = frozenset({"issue_comment", "pull_request_review_comment", "pull_request_review"})


@cache
def _ascii(text: str) -> bytes | None:
    try:
        return text.lower().encode("ascii")
    except UnicodeEncodeError:
        return None


def may_trigger(event: str, body: bytes, rules: TriggerRules) -> bool:
    """False only for a delivery `decide` would ignore; True means "parse it and decide"."""
    if event in COMMENT_EVENTS:
        word = _ascii(rules.command_word)
        return word is None or b"/" + word in body.lower()
    if event == "issues":
        label = _ascii(rules.label)
        return b'"labeled"' in body and (label is None or label in body.lower())
    if event == "check_run":
        return b'"rerequested"' in body or b'"requested_action"' in body
    return False


def looks_like_json_object(body: bytes) -> bool:
    """The first non-blank byte opens an object; a body that does not is refused with 400."""
    return body.lstrip()[:1] == b"{"
