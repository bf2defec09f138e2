"""Hostile JUnit reports cost a bounded amount of work: counted in characters scanned, questions
asked of the file listing and bytes allocated, never in seconds."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Iterator

import pytest

from honk_app.verify import junit_paths
from honk_app.verify.junit import (
    CHUNK_BYTES,
    DETAILS_CHARS,
    MAX_FAILURES,
    MAX_XML_BYTES,
    TOO_LARGE,
    JUnitReader,
    parse_junit,
)
from honk_app.verify.junit_paths import (
    MAX_PROBES_PER_FAILURE,
    MAX_PROBES_PER_REPORT,
    PATH_LINE,
    SCAN_CHARS,
    frames_in,
)

BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    '<testsuite><testcase name="&lol2;"><failure message="&lol2;"/></testcase></testsuite>'
)
PLAIN = '<testsuite><testcase name="t" classname="c"><failure message="m"/></testcase></testsuite>'


class CountingFiles:
    """A repository listing that counts the questions asked of it."""

    def __init__(self, files: set[str]) -> None:
        self.files = files
        self.asked = 0

    def __contains__(self, path: object) -> bool:
        self.asked += 1
        return path in self.files


@pytest.mark.parametrize(
    ("data", "note"),
    [
        (
            BOMB.replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16"),
            "The JUnit report is encoded in UTF-16, not UTF-8; refused.",
        ),
        (
            b"\xfe\xff" + BOMB.encode("utf-16-be"),
            "The JUnit report is encoded in UTF-16, not UTF-8; refused.",
        ),
        (
            BOMB.encode("utf-16-le"),  # no byte order mark at all
            "The JUnit report is encoded in UTF-16 or UTF-32, not UTF-8; refused.",
        ),
        (
            BOMB.encode("utf-32"),
            "The JUnit report is encoded in UTF-32, not UTF-8; refused.",
        ),
        (
            PLAIN.replace(
                "<testsuite>", '<?xml version="1.0" encoding="ISO-8859-1"?><testsuite>'
            ).encode("latin-1"),
            "The JUnit report declares the encoding ISO-8859-1, not UTF-8; refused.",
        ),
        (
            # a declaration naming UTF-16 over UTF-8 bytes is refused too, not guessed at
            b'<?xml version="1.0" encoding="utf-16"?>' + PLAIN.encode(),
            "The JUnit report declares the encoding utf-16, not UTF-8; refused.",
        ),
        (
            # however far the declaration pads its encoding out, it is found
            b"<?xml version='1.0'" + b" " * 900 + b"encoding='cp1252'?>" + PLAIN.encode(),
            "The JUnit report declares the encoding cp1252, not UTF-8; refused.",
        ),
        (
            b'<?xml version="1.0" encoding="\x1b[31m"?>' + PLAIN.encode(),
            "The JUnit report declares an encoding other than UTF-8; refused.",
        ),
        (
            b"<?xml version='1.0'" + b" " * 2_000 + b"encoding='latin1'?>" + PLAIN.encode(),
            "The JUnit report's XML declaration is longer than 1,024 bytes; refused.",
        ),
        (BOMB.encode(), "The JUnit report declares a DOCTYPE or entities; refused."),
    ],
)
def test_only_utf8_without_a_doctype_is_read(data: bytes, note: str) -> None:
    report = parse_junit(data)
    assert report == type(report)(note=note)  # nothing expanded, nothing listed


@pytest.mark.parametrize(
    "prefix",
    [b"", b"\xef\xbb\xbf", b'<?xml version="1.0" encoding="UTF-8"?>', b"<?xml version='1.0'?>"],
)
def test_utf8_with_or_without_a_declaration_or_bom_is_read(prefix: bytes) -> None:
    report = parse_junit(prefix + PLAIN.replace('"m"', '"caf\u00e9"').encode())
    assert [f.message for f in report.failures] == ["caf\u00e9"] and report.note is None


def test_the_path_regex_has_only_bounded_quantifiers() -> None:
    # Unbounded repetition next to an optional suffix is what backtracks quadratically.
    assert not re.search(r"(?<!\\)[+*]", PATH_LINE.pattern)
    assert frames_in("a." * 50_000) == []
    assert frames_in("see tests/test_x.py:12 and (src/A.java:3)") == [
        ("tests/test_x.py", 12),
        ("src/A.java", 3),
    ]


def test_failure_text_is_cut_before_the_regex_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    scanned: list[int] = []

    class Spy:
        def finditer(self, text: str) -> Iterator[re.Match[str]]:
            scanned.append(len(text))
            return PATH_LINE.finditer(text)

    monkeypatch.setattr(junit_paths, "PATH_LINE", Spy())
    hostile = "a." * 12_000 + "a"  # 24 KB with no colon: quadratic for an unbounded pattern
    cases = "".join(
        f'<testcase name="t{i}"><failure>{hostile}</failure></testcase>' for i in range(80)
    )
    report = parse_junit(f"<testsuite>{cases}</testsuite>", known_files=set())
    assert len(report.failures) == MAX_FAILURES
    assert len(scanned) == MAX_FAILURES and max(scanned) <= SCAN_CHARS
    assert all(len(f.details) <= DETAILS_CHARS + 1 for f in report.failures)


@pytest.mark.parametrize(
    ("classname", "most_questions"),
    [
        (".".join(["a"] * 200), 0),  # no real class is 200 packages deep: no guess at all
        ("a.b.c.d.e.f.g.h.i.j.k.Test", MAX_PROBES_PER_FAILURE),
        ("../../etc/passwd", 0),
        ("com.acme.Calc Test", 0),
    ],
)
def test_classname_guesses_are_bounded_per_failure(classname: str, most_questions: int) -> None:
    files = CountingFiles({"README.md"})
    xml = f'<testsuite><testcase classname="{classname}" name="x"><failure/></testcase></testsuite>'
    (failure,) = parse_junit(xml, known_files=files).failures
    assert failure.file is None
    assert files.asked <= most_questions


def test_classname_guesses_are_bounded_per_report() -> None:
    files = CountingFiles(set())
    cases = "".join(
        f'<testcase classname="p{i}.q.r.Test{i}" name="x"><failure/></testcase>' for i in range(50)
    )
    report = parse_junit(f"<testsuite>{cases}</testsuite>", known_files=files)
    assert len(report.failures) == 50
    assert files.asked <= MAX_PROBES_PER_REPORT < 50 * MAX_PROBES_PER_FAILURE


def test_nested_classes_and_deep_packages_still_map_within_the_budget() -> None:
    files = CountingFiles({"app/src/test/java/org/acme/shop/cart/OuterTest.java"})
    xml = (
        '<testsuite><testcase classname="org.acme.shop.cart.OuterTest$Inner" name="adds">'
        "<failure>boom</failure></testcase></testsuite>"
    )
    (failure,) = parse_junit(xml, known_files=files).failures
    assert failure.file == "app/src/test/java/org/acme/shop/cart/OuterTest.java"
    assert files.asked <= MAX_PROBES_PER_FAILURE


@pytest.mark.parametrize("line", ["9" * 5_000, "\u00b2", "-3", "12x", ""])
def test_odd_line_numbers_are_no_line_rather_than_a_crash(line: str) -> None:
    xml = (
        f'<testsuite><testcase file="t/test_a.py" line="{line}" name="x">'
        f"<failure>no location {'7' * 5_000}</failure></testcase></testsuite>"
    )
    (failure,) = parse_junit(xml).failures
    assert (failure.file, failure.line) == ("t/test_a.py", None)


def test_a_report_over_the_byte_cap_keeps_what_its_beginning_says() -> None:
    head = '<testsuite><testcase name="early"><failure message="first"/></testcase>'
    passing = f'<testcase name="{"n" * 1_000}"/>'
    filler = passing * ((MAX_XML_BYTES - len(head)) // len(passing) + 10)
    report = parse_junit(head + filler + "</testsuite>")
    assert [f.message for f in report.failures] == ["first"]
    assert report.note == TOO_LARGE and report.tests > 1


def _stream(parts: Iterator[bytes]) -> Iterator[bytes]:
    """`parts` regrouped into chunks of CHUNK_BYTES, as the adapter reads a file."""
    buffer = b""
    for part in parts:
        buffer += part
        while len(buffer) >= CHUNK_BYTES:
            yield buffer[:CHUNK_BYTES]
            buffer = buffer[CHUNK_BYTES:]
    yield buffer


def _huge_report() -> Iterator[bytes]:
    yield b'<testsuites><testsuite><testcase name="big"><failure>'
    for _ in range(1_000):
        yield b"x" * 8_000 + b"\n"
    yield b"the cause</failure></testcase>"
    for i in range(60_000):
        yield b'<testcase name="t%d"><failure message="m"/></testcase>' % i
    yield b"</testsuite></testsuites>"


def test_memory_stays_small_however_much_is_read() -> None:
    reader = JUnitReader()
    tracemalloc.start()
    try:
        for chunk in _stream(_huge_report()):
            reader.feed(chunk)
        report = reader.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.tests == 60_001 and len(report.failures) == MAX_FAILURES
    assert report.failures[0].details.endswith("the cause")
    assert report.note == f"Only the first {MAX_FAILURES} of 60001 failures are listed."
    # ~11 MB went through; what stays is a chunk or two and the kept failures
    assert peak < 6 * CHUNK_BYTES


def test_feeding_stops_once_the_report_is_refused() -> None:
    reader = JUnitReader()
    reader.feed(BOMB.encode() + b" " * CHUNK_BYTES)
    assert reader.done
    reader.feed(PLAIN.encode())  # ignored
    assert reader.close().note == "The JUnit report declares a DOCTYPE or entities; refused."


def test_a_malformed_tail_keeps_the_failures_before_it() -> None:
    report = parse_junit(PLAIN.replace("</testsuite>", "<testcase name='u'><failure>"))
    assert [f.name for f in report.failures] == ["c.t"]
    assert report.note is not None and report.note.startswith(
        "The JUnit report is not well-formed XML (line 1, column"
    )
