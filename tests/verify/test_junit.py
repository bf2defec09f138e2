"""junit.py is pure: real reports in, failures out."""

from __future__ import annotations

from honk_app.verify.junit import MAX_FAILURES, FailedTest, parse_junit

# What pytest 9 writes with `-o junit_family=xunit1` (file and 0-based line on each testcase).
PYTEST_XUNIT1 = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">\
<testsuite name="pytest" errors="0" failures="2" skipped="1" tests="4" time="0.142">\
<testcase classname="tests.test_calc" name="test_add" file="tests/test_calc.py" line="5">
<failure message="assert 0 == 4&#10; +  where 0 = add(2, 2)">def test_add():
&gt;       assert add(2, 2) == 4
E       assert 0 == 4
E        +  where 0 = add(2, 2)

tests/test_calc.py:7: AssertionError</failure></testcase>\
<testcase classname="tests.test_calc.TestThings" name="test_div" file="tests/test_calc.py" line="9">
<failure message="ZeroDivisionError: division by zero">self = &lt;TestThings&gt;

    def test_div(self):
        x = 0
&gt;       assert 1 / x
E       ZeroDivisionError: division by zero

tests/test_calc.py:12: ZeroDivisionError</failure></testcase>\
<testcase classname="tests.test_calc" name="test_ok" file="tests/test_calc.py" line="13" />\
<testcase classname="tests.test_calc" name="test_skip" file="tests/test_calc.py" line="16">\
<skipped type="pytest.skip" message="no">/tmp/jx/tests/test_calc.py:17: no</skipped></testcase>\
</testsuite></testsuites>"""

# pytest's default (xunit2): no file/line attributes, the location is only in the traceback.
PYTEST_XUNIT2 = PYTEST_XUNIT1.replace(' file="tests/test_calc.py"', "").replace(' line="5"', "")


def test_pytest_xunit1_failures_point_at_the_failing_line() -> None:
    report = parse_junit(PYTEST_XUNIT1)
    assert (report.tests, report.skipped, report.note) == (4, 1, None)
    assert report.failures == (
        FailedTest(
            name="tests/test_calc.py::test_add",
            file="tests/test_calc.py",
            line=7,
            message="assert 0 == 4",
            details=report.failures[0].details,
            kind="failure",
        ),
        FailedTest(
            name="tests/test_calc.py::TestThings::test_div",
            file="tests/test_calc.py",
            line=12,
            message="ZeroDivisionError: division by zero",
            details=report.failures[1].details,
            kind="failure",
        ),
    )
    assert report.failures[0].details.startswith("def test_add():\n>       assert add(2, 2) == 4")


def test_pytest_xunit2_derives_the_file_from_classname_and_traceback() -> None:
    report = parse_junit(PYTEST_XUNIT2)
    assert [(f.name, f.file, f.line) for f in report.failures] == [
        ("tests/test_calc.py::test_add", "tests/test_calc.py", 7),
        ("tests/test_calc.py::TestThings::test_div", "tests/test_calc.py", 12),
    ]


def test_without_a_line_in_the_traceback_the_testcase_line_is_used_one_based() -> None:
    xml = (
        '<testsuite><testcase classname="t.test_a" name="test_x" file="t/test_a.py" line="9">'
        "<error message=\"fixture missing\">fixture 'db' not found</error></testcase></testsuite>"
    )
    (failure,) = parse_junit(xml).failures
    assert (failure.file, failure.line, failure.kind) == ("t/test_a.py", 10, "error")
    assert failure.message == "fixture missing"


def test_absolute_paths_become_relative_to_the_repository() -> None:
    xml = (
        '<testsuite><testcase classname="x" name="test_y" file="/work/ws/repo/pkg/test_y.py">'
        '<failure>Traceback:\n  File "/usr/lib/python3.11/site-packages/lib.py", line 3\n'
        '  File "/work/ws/repo/pkg/test_y.py", line 21, in test_y\nAssertionError</failure>'
        "</testcase></testsuite>"
    )
    (failure,) = parse_junit(xml, repo_root="/work/ws/repo").failures
    assert (failure.file, failure.line) == ("pkg/test_y.py", 21)
    assert failure.message == "Traceback:"


def test_java_classnames_map_to_files_the_repository_has() -> None:
    xml = """<testsuites><testsuite name="com.acme.CalcTest" tests="2" failures="1">
      <testcase name="adds" classname="com.acme.CalcTest" time="0.01">
        <failure message="expected: &lt;4&gt; but was: &lt;0&gt;" type="AssertionFailedError">
org.opentest4j.AssertionFailedError: expected: &lt;4&gt; but was: &lt;0&gt;
	at com.acme.CalcTest.adds(CalcTest.java:14)</failure>
      </testcase>
      <testcase name="subtracts" classname="com.acme.CalcTest" time="0.01"/>
    </testsuite></testsuites>"""
    known = {"src/test/java/com/acme/CalcTest.java", "pom.xml"}
    (failure,) = parse_junit(xml, known_files=known).failures
    assert failure.file == "src/test/java/com/acme/CalcTest.java"
    assert failure.name == "src/test/java/com/acme/CalcTest.java::CalcTest::adds"
    assert failure.message == "expected: <4> but was: <0>"


def test_unknown_locations_stay_unknown_rather_than_guessed_wrong() -> None:
    xml = (
        '<testsuite><testcase classname="Suite" name="does things">'
        "<failure>boom at lib/x.rb:3</failure></testcase></testsuite>"
    )
    (failure,) = parse_junit(xml, known_files=set()).failures
    assert (failure.name, failure.file, failure.line) == ("Suite.does things", None, None)


def test_a_single_testcase_root_and_namespaced_tags_are_read() -> None:
    xml = '<j:testcase xmlns:j="urn:x" name="t"><j:failure message="bad"/></j:testcase>'
    (failure,) = parse_junit(xml).failures
    assert (failure.name, failure.message) == ("t", "bad")


def test_long_details_keep_the_end_where_the_cause_is() -> None:
    text = "x" * 10_000 + "\nthe real cause"
    xml = f'<testsuite><testcase name="t"><failure message="m">{text}</failure></testcase>'
    xml += "</testsuite>"
    (failure,) = parse_junit(xml).failures
    assert failure.details.endswith("the real cause") and len(failure.details) <= 4_001


def test_the_number_of_failures_is_capped_with_a_note() -> None:
    cases = "".join(f'<testcase name="t{i}"><failure/></testcase>' for i in range(80))
    report = parse_junit(f"<testsuite>{cases}</testsuite>")
    assert len(report.failures) == MAX_FAILURES and report.tests == 80
    assert report.note == f"Only the first {MAX_FAILURES} of 80 failures are listed."


def test_malformed_xml_gives_no_failures_and_a_readable_note() -> None:
    report = parse_junit("<testsuite><testcase name='t'><failure>")
    assert report.failures == ()
    assert report.note is not None and report.note.startswith("The JUnit report is not well-formed")


def test_doctype_and_entities_are_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><testsuite><testcase name="&lol2;">'
        "<failure/></testcase></testsuite>"
    )
    external = (
        '<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<testsuite><testcase name="t"><failure>&x;</failure></testcase></testsuite>'
    )
    for xml in (bomb, external):
        report = parse_junit(xml)
        assert report.failures == ()
        assert report.note == "The JUnit report declares a DOCTYPE or entities; refused."


def test_empty_and_foreign_documents_are_explained() -> None:
    assert parse_junit(b"  ").note == "The JUnit report is empty."
    assert parse_junit("<html><body/></html>").note == (
        "The file is not a JUnit report (root element <html>)."
    )


def test_nested_suites_and_cases_directly_under_testsuites_are_all_counted() -> None:
    xml = """<testsuites>
      <testcase name="loose" classname="tests.test_a"><failure message="loose one"/></testcase>
      <testsuite name="outer"><testsuite name="inner">
        <testcase name="deep" classname="tests.test_b"><error message="deep one">boom</error>
        </testcase>
        <testcase name="fine" classname="tests.test_b"/>
      </testsuite></testsuite>
      <testsuites><testsuite><testcase name="skip"><skipped/></testcase></testsuite></testsuites>
    </testsuites>"""
    report = parse_junit(xml)
    assert (report.tests, report.skipped) == (4, 1)
    assert [(f.name, f.kind, f.message) for f in report.failures] == [
        ("tests/test_a.py::loose", "failure", "loose one"),
        ("tests/test_b.py::deep", "error", "deep one"),
    ]
