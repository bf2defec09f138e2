"""A diff as large as the agent likes costs the policy a bounded amount: lines are counted, not
kept; the secret scan runs once per block of lines, not once per line; hits beyond a cap are
only counted; a cut diff is not pushed; and a caller can stop the parse at its deadline."""

from __future__ import annotations

import tracemalloc

import pytest

from honk_app.repo_config import RepoConfig
from honk_app.safety import diff_parse, secret_scan
from honk_app.safety.diff_parse import MAX_SECRET_HITS, STOP_POLL_LINES
from honk_app.safety.policy import (
    DiffTotals,
    InspectionStopped,
    evaluate,
    inspect_diff,
    parse_unified_diff,
)
from honk_app.safety.secret_scan import SecretFinding

TOKEN = "ghp_" + "A1b2C3d4E5" * 4


def new_file(path: str, lines: int, text: str = "x") -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{lines} @@\n" + f"+{text}\n" * lines
    )


def test_short_lines_are_counted_and_not_kept() -> None:
    """200,000 added lines: the old parser kept a (number, text) pair for each, ~20 MB."""
    diff = new_file("big.txt", 200_000)
    tracemalloc.start()
    try:
        [change] = parse_unified_diff(diff)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (change.added, change.secrets, change.secrets_found) == (200_000, [], 0)
    assert peak < 1_000_000, f"the parse held {peak:,} bytes"


def test_the_secret_scan_runs_per_block_not_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    scanned: list[int] = []
    real = secret_scan.find_secrets

    def counting(text: str) -> list[SecretFinding]:
        scanned.append(len(text))
        return real(text)

    monkeypatch.setattr(diff_parse, "find_secrets", counting)
    big, key = parse_unified_diff(new_file("big.txt", 100_000) + new_file("key.txt", 1, TOKEN))
    assert (big.added, [(hit.path, hit.line) for hit in key.secrets]) == (100_000, [("key.txt", 1)])
    assert len(scanned) <= 100_000 // 4096 + 2
    assert sum(scanned) < 250_000  # every added character once, plus a newline each


def test_a_secret_deep_in_a_block_keeps_its_line_number() -> None:
    lines = ["x"] * 9_999 + [TOKEN] + ["y"] * 10
    body = "".join(f"+{line}\n" for line in lines)
    diff = new_file("a.txt", 0).replace("@@ -0,0 +1,0 @@\n", f"@@ -0,0 +5,{len(lines)} @@\n")
    [change] = parse_unified_diff(diff + body)
    assert [(hit.line, hit.kind) for hit in change.secrets] == [(5 + 9_999, "GitHub token")]


def test_twenty_thousand_secret_lines_keep_a_hundred_and_count_the_rest() -> None:
    report = evaluate(parse_unified_diff(new_file("keys.txt", 20_000, TOKEN)), RepoConfig())
    assert len(report.secrets) == MAX_SECRET_HITS
    assert report.secrets_found == 20_000
    assert report.blocks_push
    assert report.findings()[-1] == "19,990 more lines look like credentials."
    assert len(report.annotations()) == MAX_SECRET_HITS


def test_a_cut_diff_blocks_the_push_and_counts_from_the_totals() -> None:
    diff = new_file("big.txt", 1000).encode()[:2048]
    report = inspect_diff(
        diff, RepoConfig(), complete=False, totals=DiffTotals(files=3, added=5_000_000, removed=2)
    )
    assert report.blocks_push and not report.empty
    assert (report.files_changed, report.lines_changed) == (3, 5_000_002)
    assert report.findings()[0] == (
        "The change's diff is larger than the 2 KiB Honk reads, so Honk could not check all of it "
        "for credentials and did not push it."
    )
    assert report.secrets == []


def test_a_whole_diff_with_nothing_wrong_passes() -> None:
    report = inspect_diff(new_file("a.txt", 3).encode(), RepoConfig())
    assert (report.files_changed, report.lines_changed, report.blocks_push) == (1, 3, False)


def test_a_secret_of_the_server_is_found_anywhere_in_what_was_read() -> None:
    server_secret = "e2e-webhook-secret-4f1c2b9a7d"
    report = inspect_diff(
        new_file("notes.txt", 1, f"s={server_secret}").encode(),
        RepoConfig(),
        known_secrets=["", server_secret],
    )
    assert report.server_secret
    clean = inspect_diff(new_file("a.txt", 1).encode(), RepoConfig(), known_secrets=[""])
    assert not clean.server_secret


def test_the_caller_can_stop_the_parse_between_polls() -> None:
    polls: list[int] = []

    def stop_on_third() -> bool:
        polls.append(1)
        return len(polls) == 3

    with pytest.raises(InspectionStopped):
        parse_unified_diff(new_file("big.txt", 100_000), should_stop=stop_on_third)
    assert len(polls) == 3  # polled every STOP_POLL_LINES lines, and it stopped at once
    assert STOP_POLL_LINES * 3 < 100_000
