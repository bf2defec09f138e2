"""Safe text: untrusted input cannot ping, close, inject markup or leak, and fits GitHub."""

from __future__ import annotations

import pytest

from honk_app.report.text import (
    GITHUB_TEXT_LIMIT,
    code,
    cut,
    duration,
    fenced,
    inline,
    link,
    login,
    money,
    shorten,
    tail,
    tokens,
)

GHS_TOKEN = "ghs_" + "Zq7Lm2Np9R" * 3 + "t4Vx6Y"  # built at runtime: no token-shaped literal


def test_cut_ends_with_a_note_and_fits_exactly() -> None:
    text = "\n".join("z" * 99 for _ in range(1000))  # 99,999 characters
    result = cut(text)
    assert len(result) <= GITHUB_TEXT_LIMIT
    assert result.endswith("characters over GitHub's 65,535 limit)")
    assert cut("short") == "short"


def test_inline_keeps_code_spans_as_written() -> None:
    assert inline("run `a < b` then <b>") == "run `a < b` then &lt;b>"
    assert inline("line one\nline two") == "line one line two"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.4, "59s"), (192, "3m 12s"), (3725, "1h 02m")]
)
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(("usd", "text"), [(0, "$0.00"), (0.004, "<$0.01"), (1234.5, "$1,234.50")])
def test_money(usd: float, text: str) -> None:
    assert money(usd) == text


def test_inline_defuses_mentions_and_closing_keywords_but_not_email_or_code() -> None:
    text = "thanks @alice and @acme/team, fixes #12 and closes acme/shop#3; mail a@b.c `@x`"
    assert inline(text) == (
        "thanks `@alice` and `@acme/team`, fixes issue #12 and closes issue `acme/shop#3`; "
        "mail a@b.c `@x`"
    )


def test_code_spans_and_fences_cannot_be_broken_by_their_own_backticks() -> None:
    assert code("a `b` c") == "``a `b` c``"
    assert code("`x") == "`` `x ``"
    assert fenced("a\n````\nb") == "`````text\na\n````\nb\n`````"


def test_secrets_are_redacted_by_every_helper() -> None:
    assert inline(f"token {GHS_TOKEN}") == "token \\[REDACTED\\]"
    assert code(GHS_TOKEN) == "`[REDACTED]`"
    assert GHS_TOKEN not in fenced(GHS_TOKEN) + tail("x" * 100 + "\n" + GHS_TOKEN, 60)


def test_shorten_and_tail_keep_the_start_and_the_end() -> None:
    assert shorten("abcdef", 4) == "abc…"
    assert shorten("abc", 4) == "abc"
    assert tail("0123456789" * 3, 10) == "… (20 earlier characters not shown)\n0123456789"
    assert tail("short", 10) == "short"


def test_only_plain_http_links_become_links_and_logins_lose_markup() -> None:
    assert link("https://x.test/a", "L") == "[L](https://x.test/a)"
    assert [link(url, "L") for url in ("javascript:alert(1)", "https://x/a b)", None)] == ["L"] * 3
    assert [login(name) for name in ("eve<script>", "dependabot[bot]", None)] == [
        "evescript",
        "dependabot[bot]",
        "",
    ]


def test_token_counts_read_short() -> None:
    assert [tokens(n) for n in (999, 1000, 41_234, 2_345_678)] == ["999", "1.0k", "41.2k", "2.35M"]
