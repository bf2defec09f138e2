"""The check run: its conclusion, output within GitHub's limits, annotations, the Retry button."""

from __future__ import annotations

from typing import Any

import pytest

from honk_app.models import Outcome, Phase, PhaseState, Target
from honk_app.repo_config import RepoConfig
from honk_app.report import checks
from honk_app.report.checks import (
    MAX_ANNOTATIONS,
    RETRY_ACTION,
    annotation_batches,
    check_conclusion,
    check_run_actions,
    check_run_output,
    failure_annotations,
)
from honk_app.report.comment import RunLimits, RunView, TestFailure, ValidationView
from honk_app.report.render import Site
from honk_app.report.text import GITHUB_TEXT_LIMIT
from honk_app.safety.policy import Annotation, evaluate, parse_unified_diff

RUN_ID = "honk-0b1e-c9"
GHS_TOKEN = "ghs_" + "Pq4Mn2Jk0G" * 3 + "h5Ef3C"  # built at runtime: no token-shaped literal
PRIVATE_KEY = "\n".join(
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAA",
        "-----END OPENSSH PRIVATE KEY-----",
    ]
)

PASSING = ValidationView("npm test", 0, 30.0, True, "Tests: 48 passed", total=48)
FAILING = ValidationView(
    "npm test",
    1,
    31.0,
    False,
    "FAIL src/cart.test.ts\n  ● totals › adds tax\n",
    failures=[
        TestFailure(
            "totals › adds tax",
            "src/cart.test.ts",
            17,
            "Expected 10.8, received 10",
            details="at Object.<anonymous> (src/cart.test.ts:17:5)",
        ),
        TestFailure("setup › loads fixtures", None, None, "ENOENT: fixtures.json"),
        TestFailure("absolute", "/tmp/ws/src/x.ts", 3, "outside the repository"),
    ],
    total=48,
)


def make_view(outcome: Outcome | None, **changes: object) -> RunView:
    view = RunView(
        run_id=RUN_ID,
        target=Target("acme", "shop", 42),
        phases=dict.fromkeys(Phase, PhaseState.DONE),
        outcome=outcome,
        turns=9,
        cost_usd=0.21,
        limits=RunLimits(40, 2.0, 30),
        duration_s=95,
        agent="claude-code",
        model="claude-sonnet-4-5",
    )
    if outcome in (Outcome.VALIDATED, Outcome.UNVALIDATED, Outcome.LIMIT):
        view.pr_number, view.pr_url = 57, "https://github.com/acme/shop/pull/57"
    for name, value in changes.items():
        setattr(view, name, value)
    return view


@pytest.mark.parametrize(
    ("outcome", "validation", "conclusion"),
    [
        (Outcome.VALIDATED, PASSING, "success"),
        (Outcome.UNVALIDATED, FAILING, "failure"),
        (Outcome.UNVALIDATED, None, "neutral"),
        (Outcome.LIMIT, None, "neutral"),
        (Outcome.LIMIT, FAILING, "failure"),
        (Outcome.NO_CHANGE, None, "neutral"),
        (Outcome.BLOCKED, None, "failure"),
        (Outcome.FAILED, None, "failure"),
        (Outcome.CANCELLED, None, "neutral"),
        (Outcome.UNAUTHORIZED, None, "neutral"),
        (Outcome.CONFIG_ERROR, None, "failure"),
    ],
)
def test_conclusions(outcome: Outcome, validation: ValidationView | None, conclusion: str) -> None:
    assert check_conclusion(outcome, validation) == conclusion


def test_every_outcome_has_an_output_within_limits() -> None:
    for outcome in [None, *Outcome]:
        output = check_run_output(make_view(outcome, outcome_detail="Something happened."))
        assert output.title and len(output.title) <= 120
        assert 1 <= len(output.summary.splitlines()) <= 3
        assert len(output.summary) <= GITHUB_TEXT_LIMIT and len(output.text) <= GITHUB_TEXT_LIMIT


@pytest.mark.parametrize(
    ("view", "title", "first_line"),
    [
        (
            make_view(Outcome.VALIDATED, validation=PASSING),
            "Tests pass · #57",
            "✅ Opened #57, tests pass.",
        ),
        (
            make_view(Outcome.UNVALIDATED, validation=FAILING),
            "Tests fail: 3 failures · #57",
            "🟡 Opened draft #57: tests fail.",
        ),
        (
            make_view(Outcome.UNVALIDATED),
            "Not verified: no test command configured · #57",
            "🟡 Opened draft #57: no tests ran.",
        ),
        (make_view(Outcome.NO_CHANGE), "No changes", "➖ Finished without changing anything."),
        (
            make_view(Outcome.CANCELLED, stopped_by="carol"),
            "Stopped by @carol",
            "⏹️ Stopped by @carol.",
        ),
        (
            make_view(None, phases={Phase.AGENT: PhaseState.ACTIVE}),
            "Working · 9 turns · $0.21",
            "🪿 Honk is working on this…",
        ),
    ],
)
def test_title_and_summary_say_what_happened(view: RunView, title: str, first_line: str) -> None:
    output = check_run_output(view)
    assert output.title == title
    assert output.summary.splitlines()[0] == first_line


def test_the_summary_links_the_pull_request_and_the_spend() -> None:
    output = check_run_output(make_view(Outcome.VALIDATED, validation=PASSING))
    assert output.summary.splitlines()[-1] == (
        "[#57](https://github.com/acme/shop/pull/57) · 9 of 40 turns · $0.21 of $2.00 · 1m 35s"
    )


def test_the_text_lists_failures_and_folds_the_output() -> None:
    text = check_run_output(make_view(Outcome.UNVALIDATED, validation=FAILING)).text
    assert text.startswith(
        "### Tests\n\n❌ `npm test` exited with 1 after 31s, 3 of 48 tests failed.\n\n"
        "- `totals › adds tax` (`src/cart.test.ts:17`): Expected 10.8, received 10\n"
        "- `setup › loads fixtures`: ENOENT: fixtures.json\n"
    )
    assert "<details><summary>Test output (last lines)</summary>" in text
    assert "Run `honk-0b1e-c9` · agent `claude-code` · model `claude-sonnet-4-5`" in text


def test_test_failures_become_annotations_when_their_file_is_in_the_repository() -> None:
    assert failure_annotations(FAILING) == [
        {
            "path": "src/cart.test.ts",
            "start_line": 17,
            "end_line": 17,
            "annotation_level": "failure",
            "title": "Test failed: totals › adds tax",
            "message": "Expected 10.8, received 10",
            "raw_details": "at Object.<anonymous> (src/cart.test.ts:17:5)",
        }
    ]
    assert failure_annotations(None) == []
    dotted = ValidationView("t", 1, 1, False, failures=[TestFailure("x", "./a/../../b.py", 0)])
    assert failure_annotations(dotted) == []


def test_policy_findings_become_annotations_without_the_secret() -> None:
    diff = f"""\
diff --git a/deploy/key.txt b/deploy/key.txt
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/deploy/key.txt
@@ -0,0 +1,2 @@
+token: {GHS_TOKEN}
+ok
"""
    report = evaluate(parse_unified_diff(diff), RepoConfig())
    view = make_view(
        Outcome.BLOCKED,
        policy_findings=report.findings(),
        policy_annotations=report.annotations(),
    )
    output = check_run_output(view)
    assert output.annotations == [
        {
            "path": "deploy/key.txt",
            "start_line": 1,
            "end_line": 1,
            "annotation_level": "failure",
            "title": "Possible GitHub token",
            "message": "This line adds what looks like a GitHub token (ghs_… (40 chars)). "
            "Honk does not push credentials: remove it and load the value from a secret store.",
        }
    ]
    assert output.title == "Blocked by policy"
    assert (
        "### Policy\n\n- `deploy/key.txt` line 1 adds what looks like a GitHub token" in output.text
    )
    assert GHS_TOKEN not in repr(output)


def test_everything_in_the_output_is_redacted() -> None:
    leaky = FAILING.failures[0]
    validation = ValidationView(
        "npm test",
        1,
        2.0,
        False,
        f"env: GITHUB_TOKEN={GHS_TOKEN}\n{PRIVATE_KEY}\n",
        failures=[TestFailure(leaky.name, leaky.file, leaky.line, f"got {GHS_TOKEN}", PRIVATE_KEY)],
    )
    view = make_view(Outcome.FAILED, validation=validation, error_detail=f"push: {GHS_TOKEN}")
    output = check_run_output(view)
    everything = repr(output)
    assert GHS_TOKEN not in everything and "b3BlbnNzaC1rZXkt" not in everything
    assert output.annotations[0]["message"] == "got [REDACTED]"
    assert output.annotations[0]["raw_details"] == "[REDACTED]"


def test_known_secret_values_are_redacted_in_the_output_and_annotations() -> None:
    api_key = "plain-looking-value-9f8e7d"
    failure = TestFailure("t", "a.py", 1, f"saw {api_key}")
    validation = ValidationView("make test", 2, 1.0, False, f"key={api_key}", failures=[failure])
    view = make_view(Outcome.UNVALIDATED, validation=validation, outcome_detail=api_key)
    output = check_run_output(view, known_secrets=[api_key])
    assert api_key not in repr(output)
    assert output.annotations[0]["message"] == "saw [REDACTED]"


def test_the_largest_output_still_fits_githubs_limits() -> None:
    long_dir = "tests/" + "nested/" * 30
    failures = [
        TestFailure(
            f"test_{i}_{'n' * 300}", f"{long_dir}test_{i}.py", i + 1, "m" * 5_000, "d" * 9_000
        )
        for i in range(60)
    ]
    validation = ValidationView("pytest", 1, 9.0, False, "o" * 300_000, failures=failures)
    view = make_view(
        Outcome.UNVALIDATED,
        validation=validation,
        changed_files=[(f"src/m{i}/" + "deep/" * 40 + "f.py", i, i) for i in range(2_000)],
        policy_findings=["A finding that is long. " * 20] * 100,
        error_detail="e" * 100_000,
    )
    output = check_run_output(view)
    assert len(output.text) <= GITHUB_TEXT_LIMIT and len(output.summary) <= GITHUB_TEXT_LIMIT
    assert output.text.startswith(
        "### Tests\n\n❌ `pytest` exited with 1 after 9s, 60 tests failed."
    )
    assert "- … and 40 more" in output.text  # failures past the first twenty are counted
    assert "- … and 1900 more" in output.text  # so are changed files past the first hundred
    assert "earlier characters not shown" in output.text  # the output keeps its tail
    assert len(output.annotations) == 50
    assert output.summary.endswith(" · 50 annotations shown, 10 left out")
    assert all(len(note["message"]) <= 4_000 for note in output.annotations)
    assert all(len(note["raw_details"]) <= 16_100 for note in output.annotations)


def test_annotations_go_out_in_batches_of_fifty() -> None:
    notes = [
        {"path": f"f{i}.py", "start_line": 1, "end_line": 1, "annotation_level": "warning"}
        for i in range(120)
    ]
    batches = annotation_batches(notes)
    assert [len(batch) for batch in batches] == [50, 50, 20]
    assert [note for batch in batches for note in batch] == notes
    assert annotation_batches([]) == []
    with pytest.raises(ValueError):
        annotation_batches(notes, size=0)


def test_the_payload_carries_one_batch() -> None:
    output = check_run_output(make_view(Outcome.UNVALIDATED, validation=FAILING))
    payload = output.payload(annotation_batches(output.annotations)[0])
    assert set(payload) == {"title", "summary", "text", "annotations"}
    assert payload["annotations"] == output.annotations


def test_a_finished_run_offers_retry_within_githubs_limits() -> None:
    assert check_run_actions(make_view(None)) == []
    [action] = check_run_actions(make_view(Outcome.FAILED))
    assert action == RETRY_ACTION
    assert action["identifier"] == "retry"
    assert len(action["label"]) <= 20 and len(action["description"]) <= 40
    assert len(action["identifier"]) <= 20


def test_policy_annotations_outside_the_repository_are_dropped() -> None:
    view = make_view(
        Outcome.BLOCKED,
        policy_annotations=[
            Annotation("/etc/passwd", 1, "warning", "t", "m"),
            Annotation("ok.txt", 0, "warning", "t", "m"),
        ],
    )
    notes = check_run_output(view).annotations
    assert [(n["path"], n["start_line"]) for n in notes] == [("ok.txt", 1)]


def test_a_flood_of_findings_costs_one_request_and_says_how_many_were_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rendered: list[str] = []
    render = checks._annotation

    def counting(
        path: str, line: int, level: str, title: str, message: str, where: Site
    ) -> dict[str, Any]:
        rendered.append(path)
        return render(path, line, level, title, message, where)

    monkeypatch.setattr(checks, "_annotation", counting)
    secrets = [
        Annotation(f"leak{i}.txt", i + 1, "failure", "Possible GitHub token", "remove it")
        for i in range(20_000)
    ]
    binary = [Annotation("logo.png", 1, "warning", "Binary file", "check it by hand")]
    view = make_view(
        Outcome.BLOCKED,
        validation=FAILING,
        policy_annotations=binary + secrets,
    )
    output = check_run_output(view)
    # policy failures first (they block the push), then failing tests, then warnings
    assert len(output.annotations) == MAX_ANNOTATIONS == 50
    assert [note["path"] for note in output.annotations[:2]] == ["leak0.txt", "leak1.txt"]
    assert len(rendered) == MAX_ANNOTATIONS  # the other 19,952 were counted, not rendered
    assert len(annotation_batches(output.annotations)) == 1  # one request to GitHub
    assert output.summary.splitlines()[-1].endswith(" · 50 annotations shown, 19,952 left out")
    assert len(output.summary.splitlines()) <= 3


def test_failing_tests_come_before_policy_warnings() -> None:
    warnings = [Annotation(f"f{i}.bin", 1, "warning", "Binary file", "m") for i in range(60)]
    view = make_view(Outcome.UNVALIDATED, validation=FAILING, policy_annotations=warnings)
    output = check_run_output(view)
    assert output.annotations[0]["path"] == "src/cart.test.ts"
    assert [n["annotation_level"] for n in output.annotations[:2]] == ["failure", "warning"]
    assert output.summary.endswith(" · 50 annotations shown, 11 left out")
