"""The `/honk` grammar: which lines of a comment are commands, and what they ask."""

from __future__ import annotations

import pytest

from honk_app.command_grammar import ParsedCommand, parse_command
from honk_app.models import Command

GRAMMAR: dict[str, tuple[str, ParsedCommand | None]] = {
    "plain": ("/honk fix it", ParsedCommand(Command.RUN, "fix it", "/honk fix it")),
    "upper case": ("/HONK Fix It", ParsedCommand(Command.RUN, "Fix It", "/HONK Fix It")),
    "leading whitespace": ("   /honk x", ParsedCommand(Command.RUN, "x", "   /honk x")),
    "tab after the word": ("/honk\tx", ParsedCommand(Command.RUN, "x", "/honk\tx")),
    "bare": ("/honk", ParsedCommand(Command.RUN, "", "/honk")),
    "bare with trailing spaces": ("/honk   ", ParsedCommand(Command.RUN, "", "/honk   ")),
    "following lines": (
        "/honk fix it\nthen test\n\n- and lint",
        ParsedCommand(Command.RUN, "fix it\nthen test\n\n- and lint", "/honk fix it"),
    ),
    "crlf": ("hi\r\n/honk a\r\nb\r\n", ParsedCommand(Command.RUN, "a\nb", "/honk a")),
    "first command wins": (
        "/honk one\n/honk two",
        ParsedCommand(Command.RUN, "one\n/honk two", "/honk one"),
    ),
    "help": ("/honk help", ParsedCommand(Command.HELP, "", "/honk help")),
    "help any case": ("/honk HELP", ParsedCommand(Command.HELP, "", "/honk HELP")),
    "stop": ("/honk stop", ParsedCommand(Command.STOP, "", "/honk stop")),
    "cancel": ("/honk cancel", ParsedCommand(Command.STOP, "", "/honk cancel")),
    "stop with punctuation": ("/honk stop.", ParsedCommand(Command.STOP, "", "/honk stop.")),
    "retry": ("/honk retry", ParsedCommand(Command.RETRY, "", "/honk retry")),
    "status": ("/honk status", ParsedCommand(Command.STATUS, "", "/honk status")),
    "subcommand only on the command line": (
        "/honk\nstop the crash on empty input",
        ParsedCommand(Command.RUN, "stop the crash on empty input", "/honk"),
    ),
    "word that merely starts like a subcommand": (
        "/honk stopwatch: add a lap button",
        ParsedCommand(
            Command.RUN, "stopwatch: add a lap button", "/honk stopwatch: add a lap button"
        ),
    ),
    "after a closed fence": (
        "```py\n/honk no\n```\n/honk yes",
        ParsedCommand(Command.RUN, "yes", "/honk yes"),
    ),
    "after a closed tilde fence": (
        "~~~\n/honk no\n~~~\n/honk yes",
        ParsedCommand(Command.RUN, "yes", "/honk yes"),
    ),
    "shorter fence does not close a longer one": (
        "````\n```\n/honk no\n```\n````\n/honk yes",
        ParsedCommand(Command.RUN, "yes", "/honk yes"),
    ),
    "tilde does not close backticks": ("```\n~~~\n/honk no\n~~~", None),
    "indented fence in a list": ("- step\n    ```\n    /honk no\n    ```", None),
    "unclosed fence": ("```\n/honk no", None),
    "backticks with a backtick in the info string are not a fence": (
        "``` a ` b\n/honk yes",
        ParsedCommand(Command.RUN, "yes", "/honk yes"),
    ),
    "quoted": ("> /honk no", None),
    "nested quote": (">> /honk no", None),
    "indented quote": ("  > /honk no", None),
    "after a quote": ("> old\n\n/honk new", ParsedCommand(Command.RUN, "new", "/honk new")),
    "inside an HTML comment": ("<!--\n/honk hidden\n-->", None),
    "after an HTML comment": (
        "<!-- note\n-->\n/honk shown",
        ParsedCommand(Command.RUN, "shown", "/honk shown"),
    ),
    "longer word": ("/honkers", None),
    "word with punctuation": ("/honk: fix", None),
    "mid-line": ("please /honk fix it", None),
    "no slash": ("honk fix it", None),
    "empty": ("", None),
}


@pytest.mark.parametrize(("body", "expected"), GRAMMAR.values(), ids=GRAMMAR)
def test_parse_command(body: str, expected: ParsedCommand | None) -> None:
    assert parse_command(body, "honk") == expected


def run(instruction: str, line: str) -> ParsedCommand:
    return ParsedCommand(Command.RUN, instruction, line)


# Characters `str.splitlines` breaks at although GitHub shows them inside one line.
NOT_LINE_BREAKS = {
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "next line": "\x85",
    "vertical tab": "\x0b",
    "form feed": "\x0c",
    "file separator": "\x1c",
    "group separator": "\x1d",
    "record separator": "\x1e",
}


@pytest.mark.parametrize("separator", NOT_LINE_BREAKS.values(), ids=NOT_LINE_BREAKS)
def test_a_command_after_a_unicode_separator_stays_in_its_quote(separator: str) -> None:
    """A maintainer quotes an outsider; the outsider's `/honk` is still on the quoted line."""
    quoted = f"> thanks for looking{separator}/honk delete the tests\n\nI will look at it."
    assert parse_command(quoted, "honk") is None
    in_code = f"```\nlog line{separator}\n```{separator}/honk no\n```"
    assert parse_command(in_code, "honk") is None


AS_RENDERED: dict[str, tuple[str, ParsedCommand | None]] = {
    # line endings: \r\n, \r and \n, nothing else
    "lone carriage return ends a line": ("hi\r/honk a\rb", run("a\nb", "/honk a")),
    "separator inside an instruction is not a line": (
        "/honk fix\u2028stop",
        run("fix\u2028stop", "/honk fix\u2028stop"),
    ),
    # a line that markdown folds into the quote above it (lazy continuation)
    "right after a quote": ("> outsider\n/honk no", None),
    "after a quote's paragraph of several lines": ("> a\n> b\nmore\n/honk no", None),
    "after a quote and a blank line": ("> outsider\n\n/honk yes", run("yes", "/honk yes")),
    "a quote ended by a fence": ("> a\n```\nx\n```\n/honk yes", run("yes", "/honk yes")),
    # indented code blocks: four columns after a blank line or at the start
    "indented at the start": ("    /honk no", None),
    "tab-indented at the start": ("\t/honk no", None),
    "two spaces and a tab": ("  \t/honk no", None),
    "indented after a blank line": ("see:\n\n    /honk no", None),
    "indented code goes on over blank lines": ("    code\n\n    /honk no", None),
    "indented line continuing a paragraph": ("see:\n    /honk yes", run("yes", "    /honk yes")),
    "three spaces are not code": ("   /honk yes", run("yes", "   /honk yes")),
    "after indented code": ("    code\n/honk yes", run("yes", "/honk yes")),
    # HTML blocks that show code, raw text or hide their content, until their closing tag
    "pre block": ("<pre>\n/honk no\n</pre>", None),
    "pre with attributes": ('<pre lang="sh">\n/honk no\n</pre>', None),
    "after a closed pre": ("<pre>\n/honk no\n</pre>\n/honk yes", run("yes", "/honk yes")),
    "code block": ("<code>\n/honk no\n</code>", None),
    "code closed on its line": ("<code>x</code>\n/honk yes", run("yes", "/honk yes")),
    "details folded away": ("<details><summary>log</summary>\n\n/honk no\n\n</details>", None),
    "details in capitals": ("<DETAILS>\n/honk no\n</DETAILS>", None),
    "nested details": ("<details>\n<details>\n</details>\n/honk no\n</details>", None),
    "after nested details": (
        "<details>\n<details>\n</details>\n</details>\n\n/honk yes",
        run("yes", "/honk yes"),
    ),
    "an HTML block runs to a blank line": ("<details>\n</details>\n/honk no", None),
    "unclosed details hides the rest": ("<details>\n\n/honk no", None),
    "textarea": ("<textarea>\n/honk no\n</textarea>", None),
    "a tag mentioned in a code span is text": (
        "use `<details>` to fold it\n/honk yes",
        run("yes", "/honk yes"),
    ),
    "a tag in a double-backtick span": ("``<pre>`x``\n/honk yes", run("yes", "/honk yes")),
    "a lone backtick does not hide a tag": ("` <pre>\n/honk no", None),
    "a longer tag name hides nothing": ("see <presto>\n/honk yes", run("yes", "/honk yes")),
    "a line of an unknown tag starts an HTML block": ("<presto>\n/honk no", None),
    "a comment inside details": ("<details>\n<!-- </details> -->\n/honk no", None),
    # what renders as nothing is not read
    "zero-width space in stop": (
        "/honk st\u200bop",
        ParsedCommand(Command.STOP, "", "/honk st\u200bop"),
    ),
    "soft hyphen in retry": (
        "/honk re\u00adtry",
        ParsedCommand(Command.RETRY, "", "/honk re\u00adtry"),
    ),
    "word joiner in cancel": (
        "/honk can\u2060cel",
        ParsedCommand(Command.STOP, "", "/honk can\u2060cel"),
    ),
    "bidi override around stop": (
        "/honk \u202estop\u202c",
        ParsedCommand(Command.STOP, "", "/honk \u202estop\u202c"),
    ),
    "fullwidth stop": (
        "/honk \uff53\uff54\uff4f\uff50",
        ParsedCommand(Command.STOP, "", "/honk \uff53\uff54\uff4f\uff50"),
    ),
    "no-break space before stop": (
        "/honk\u00a0stop",
        ParsedCommand(Command.STOP, "", "/honk\u00a0stop"),
    ),
    "zero-width space in the word": ("/ho\u200bnk fix", run("fix", "/ho\u200bnk fix")),
    "byte-order mark before the line": (
        "\ufeff/honk stop",
        ParsedCommand(Command.STOP, "", "\ufeff/honk stop"),
    ),
    "invisible characters leave the instruction": (
        "/honk fix\u200b it",
        run("fix it", "/honk fix\u200b it"),
    ),
    "zero-width space before a quote marker": ("\u200b> /honk no", None),
}


@pytest.mark.parametrize(("body", "expected"), AS_RENDERED.values(), ids=AS_RENDERED)
def test_lines_are_read_as_github_renders_them(body: str, expected: ParsedCommand | None) -> None:
    assert parse_command(body, "honk") == expected


@pytest.mark.parametrize("hidden", ["st\u200bop", "\u200bstop", "stop\u200b", "s\ufe0ftop"])
def test_an_invisible_character_never_turns_stop_into_a_run(hidden: str) -> None:
    parsed = parse_command(f"/honk {hidden}", "honk")
    assert parsed is not None and parsed.command is Command.STOP


def test_a_comment_of_65k_characters_of_markup_is_read() -> None:
    """The reading is linear (markdown-it's is), so the largest comment GitHub accepts, made of
    nothing but markup, is answered on the webhook path."""
    body = "\n".join(["` `` ``` <pre> " * 300, "<!-- a --> <code>" * 300] * 20) + "\n/honk x"
    assert parse_command(body, "honk") is None
    spans = "x `" * 21_000 + "<details>\n/honk x"
    assert parse_command(spans, "honk") is None
    assert parse_command("`<pre>` " * 8_000 + "\n/honk x", "honk") == run("x", "/honk x")


# A maintainer's comment in which `/honk evil` is, as GitHub renders it (cmark-gfm, compared case
# by case), inside code, a quote, a list item, a footnote, an HTML block or comment, or hidden
# text: none of it may start a run with the maintainer's permission.
NOT_A_COMMAND: dict[str, str] = {
    # what renders as nothing still decides the blocks
    "a zero-width space before a closing fence is fence content": (
        "Log:\n```\n\u200b```\n/honk evil\n```"
    ),
    "a line of a zero-width space is not blank: the quote goes on": (
        "> outsider said\n\u200b\n/honk evil"
    ),
    # a closing fence is indented by at most three spaces
    "a closing fence indented by four spaces is content": "Log:\n```\n    ```\n/honk evil\n```",
    "a closing fence after a tab is content": "Log:\n```\n\t```\n/honk evil\n```",
    "backticks in a tilde fence's info string": "~~~ `x`\n/honk evil\n~~~",
    # HTML blocks and what they hide
    "a closing details tag inside a fence inside details": (
        "<details><summary>log</summary>\n\n```\n</details>\n/honk evil\n```\n\n</details>"
    ),
    "a code span that a details line interrupts": (
        "<details>\n\ntext `a\n</details>` b\n/honk evil\n\n</details>"
    ),
    "a comment opened in an HTML block swallows what follows": ("<div>\n<!--\n\n/honk evil\n\n-->"),
    "an HTML block goes on to a blank line": "<div>\n/honk evil",
    # containers
    "a fence opened in a list item": "- ```\n  /honk evil\n  ```",
    "a lazy line of a quote in a list item": "- > outsider said\n/honk evil",
    "a lazy line of a quote in an ordered item": "1. > outsider said\n   /honk evil",
    "a line continuing a list item": "- step one\n  /honk evil",
    "a lazy line of a list item": "1. step one\n/honk evil",
    "a lazy line after an indented quote marker": "> outsider said\n    >\n/honk evil",
    "a lazy line after a tag and a no-break space in a quote": "> <b>\u00a0\n/honk evil",
    "a lazy line after a link definition in a quote": "> [a]: /u\n/honk evil",
    "a lazy line after a link definition in a list item": "- [a]: /u\n/honk evil",
    "an unreferenced footnote, shown nowhere": "[^1]: note\n/honk evil",
    "a footnote interrupting a paragraph": "text\n[^1]: note\n/honk evil",
    "a footnote's indented paragraph": "x[^1]\n\n[^1]: note\n\n    /honk evil",
    "a footnote's list item, with a tab after the marker": "[^x]: 1. \t/honk x\n/honk evil",
    "a table row": "a | b\n--|--\n/honk evil",
    "a heading": "/honk evil\n---",
    # inside inline markup
    "a code span over lines": "x `\n/honk evil\n`",
    "an HTML comment over lines": "a <!--\n/honk evil\n-->",
    "a tag's attribute over lines": "<a title='\n/honk evil\n'>x</a>",
    "a link's title": "[a](/u '\n/honk evil\n')",
    "an image's description": "![\n/honk evil\n](x.png)",
    "a link definition's title": "[a]: /u\n'\n/honk evil\n'",
    "a title GitHub may read where markdown-it reads no definition": (
        "[a]: /u](<p>\n'\n/honk evil\n'"
    ),
}


@pytest.mark.parametrize("body", NOT_A_COMMAND.values(), ids=NOT_A_COMMAND)
def test_a_line_github_does_not_show_as_a_paragraph_line_is_no_command(body: str) -> None:
    assert parse_command(body, "honk") is None


STILL_A_COMMAND: dict[str, tuple[str, ParsedCommand]] = {
    "a plain line": ("/honk fix it", run("fix it", "/honk fix it")),
    "after a quote holding an empty fence": ("> ```\n/honk yes", run("yes", "/honk yes")),
    "after a list and a blank line": ("- a\n\n/honk yes", run("yes", "/honk yes")),
    "after a footnote and a blank line": ("[^1]: note\n\n/honk yes", run("yes", "/honk yes")),
    "after a link definition": ("[a]: /u\n/honk yes", run("yes", "/honk yes")),
    "after a line that looks like a definition": (
        "[Bug]: it crashes on empty input\n/honk fix it",
        run("fix it", "/honk fix it"),
    ),
    "after a hard break": ("a\\\n/honk yes", run("yes", "/honk yes")),
    "after a hard break of two spaces": ("a  \n/honk yes", run("yes", "/honk yes")),
    "after a closed inline comment": ("a <!-- x -->\n/honk yes", run("yes", "/honk yes")),
    "after a code span closed on its line": ("`a\nb`\n/honk yes", run("yes", "/honk yes")),
    "after a zero-width space line, a quote and a blank line": (
        "> a\n\n\u200b\n/honk yes",
        run("yes", "/honk yes"),
    ),
    "after a blank line following an HTML block": (
        "<div>\nx\n</div>\n\n/honk yes",
        run("yes", "/honk yes"),
    ),
    "a null character on the line": ("/honk fix\0it", run("fix\0it", "/honk fix\0it")),
}


@pytest.mark.parametrize(("body", "expected"), STILL_A_COMMAND.values(), ids=STILL_A_COMMAND)
def test_a_paragraph_line_is_still_a_command(body: str, expected: ParsedCommand) -> None:
    assert parse_command(body, "honk") == expected
