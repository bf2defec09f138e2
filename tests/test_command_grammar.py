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


def test_command_word_is_matched_literally() -> None:
    assert parse_command("/h.nk fix", "h.nk") == ParsedCommand(Command.RUN, "fix", "/h.nk fix")
    assert parse_command("/honk fix", "h.nk") is None
