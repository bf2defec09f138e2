"""Pure: turn a JUnit XML report into the failures an agent (and a reviewer) can act on.

Test runners disagree on the details: pytest writes `file`/`line` on each testcase only with
`junit_family=xunit1`, others put the path in `classname` (dotted, Java style) or only mention it in
the traceback. So the location is found in that order (see `junit_paths.py`).

The XML is written by code from the repository under test, so it is hostile. It is read as a
stream (`JUnitReader.feed`), so the adapter can stop at a byte cap or a time limit and keep what
was found; defusedxml's SAX parser refuses a DOCTYPE (the door to entity expansion and external
entities); only UTF-8 is read (a UTF-16 report once slipped its entities past a byte-level check,
and one encoding keeps every later check honest); no tree is built, and every kept text is cut
as it arrives, so memory stays small whatever the size; malformed input gives what came before
it and a readable note instead of an exception.

Not junitparser (5.0.3): it only finds a `<testcase>` inside a `<testsuite>`, builds the whole tree,
parses with lxml when that is importable and xml.etree otherwise (so its entity handling depends on
what else is installed), and has no `file`/`line`.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from typing import Any
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler
from xml.sax.xmlreader import AttributesImpl

from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser

from honk_app.verify.junit_paths import SCAN_CHARS, PathMapper

MAX_XML_BYTES = 10_000_000
CHUNK_BYTES = 1 << 20  # expat 2.5 rescans an unfinished token on every feed: few, large chunks
MAX_FAILURES = 50
DETAILS_CHARS = 4_000
MESSAGE_CHARS = 500
NAME_CHARS = 300
HEAD_BYTES = 1_024  # enough to see a byte order mark and the XML declaration
_HEAD_TEXT_CHARS = 1_000  # of a failure's text, for its first line when it has no message
_TAIL_TEXT_CHARS = max(DETAILS_CHARS, SCAN_CHARS) + 1_000
_ROOTS = ("testsuites", "testsuite", "testcase")
_DECLARATION = re.compile(rb"<\?xml\s")
_ENCODING = re.compile(rb"""\sencoding\s*=\s*(?:"([^"]*)"|'([^']*)')""")  # in <= HEAD_BYTES
_ENCODING_NAME = re.compile(r"[A-Za-z0-9._:\-]{1,40}")
TOO_LARGE = f"The JUnit report is larger than {MAX_XML_BYTES:,} bytes; only its beginning was read."


@dataclass(frozen=True)
class FailedTest:
    """One failing or erroring test case."""

    name: str  # `tests/test_x.py::TestY::test_z` when the file is known, else `classname.name`
    file: str | None  # relative to the repository root when it could be mapped
    line: int | None
    message: str  # one line
    details: str  # the traceback, capped (the tail is kept: the cause is at the end)
    kind: str = "failure"  # or "error"


@dataclass(frozen=True)
class JUnitReport:
    """What a report says. `note` explains an empty or partial result in one sentence."""

    failures: tuple[FailedTest, ...] = ()
    tests: int = 0
    skipped: int = 0
    note: str | None = None


def parse_junit(
    xml: str | bytes,
    *,
    repo_root: str | None = None,
    known_files: Container[str] | None = None,
) -> JUnitReport:
    """Failures in `xml`. `repo_root` makes absolute paths relative; `known_files` (relative
    paths that exist in the repository) confirms guesses and filters traceback frames."""
    data = xml.encode("utf-8", "replace") if isinstance(xml, str) else xml
    reader = JUnitReader(repo_root=repo_root, known_files=known_files)
    for start in range(0, min(len(data), MAX_XML_BYTES), CHUNK_BYTES):
        reader.feed(data[start : min(start + CHUNK_BYTES, MAX_XML_BYTES)])
        if reader.done:
            break
    if len(data) > MAX_XML_BYTES:
        return reader.cut_short(TOO_LARGE)
    return reader.close()


class JUnitReader:
    """A JUnit report read chunk by chunk: `feed` until `done` or the input ends, then `close`
    (or `cut_short` with the reason when the caller stops early). Memory and work per chunk are
    bounded whatever the input; `feed` never raises."""

    def __init__(
        self, *, repo_root: str | None = None, known_files: Container[str] | None = None
    ) -> None:
        self.mapper = PathMapper(repo_root, known_files)
        self._cases = _Cases(self.mapper)
        self._parser: Any = create_parser(forbid_dtd=True)
        self._parser.setContentHandler(self._cases)
        self._head = b""
        self._started = False
        self._blank = True
        self._note: str | None = None
        self._done = False

    @property
    def done(self) -> bool:
        """True once more input would change nothing (refused, malformed, or complete)."""
        return self._done

    def feed(self, chunk: bytes) -> None:
        if self._done or not chunk:
            return
        self._blank = self._blank and not chunk.strip()
        if not self._started:
            self._head += chunk
            if len(self._head) < HEAD_BYTES:
                return
            chunk, self._head = self._head, b""
            if not self._start(chunk):
                return
        self._parse(chunk)

    def close(self) -> JUnitReport:
        """The report, once the whole input was fed."""
        if not self._done:
            if self._blank:
                return self._finish("The JUnit report is empty.")
            if not self._started:
                head, self._head = self._head, b""
                if self._start(head):
                    self._parse(head)
            if not self._done:
                self._parse(b"", final=True)
        return self._finish(None)

    def cut_short(self, note: str) -> JUnitReport:
        """What was found before the caller stopped reading, with its one-sentence reason."""
        return self._finish(self._note or note)

    def _start(self, head: bytes) -> bool:
        self._started = True
        refusal = encoding_refusal(head)
        if refusal is not None:
            self._stop(refusal)
        return refusal is None

    def _parse(self, chunk: bytes, *, final: bool = False) -> None:
        try:
            if final:
                self._parser.close()
            else:
                self._parser.feed(chunk)
        except _NotJUnit as stop:
            self._stop(f"The file is not a JUnit report (root element <{stop.root}>).")
        except DefusedXmlException:
            self._cases.failures.clear()
            self._stop("The JUnit report declares a DOCTYPE or entities; refused.")
        except SAXParseException as error:
            where = f"line {error.getLineNumber()}, column {error.getColumnNumber()}"
            self._stop(f"The JUnit report is not well-formed XML ({where}: {error.getMessage()}).")

    def _stop(self, note: str) -> None:
        self._note = self._note or note
        self._done = True

    def _finish(self, note: str | None) -> JUnitReport:
        self._done = True
        cases = self._cases
        note = note or self._note
        if note is None and cases.more_failures:
            total = MAX_FAILURES + cases.more_failures
            note = f"Only the first {MAX_FAILURES} of {total} failures are listed."
        return JUnitReport(tuple(cases.failures), cases.tests, cases.skipped, note)


def encoding_refusal(head: bytes) -> str | None:
    """Why the document's first bytes say it is not UTF-8, in one sentence; None when it is.

    Expat honours a byte order mark and the XML declaration (the only place an encoding can be
    named, and only at the very start), so both are checked here, before expat sees a byte.
    """
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "The JUnit report is encoded in UTF-32, not UTF-8; refused."
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "The JUnit report is encoded in UTF-16, not UTF-8; refused."
    if b"\x00" in head[:4]:
        return "The JUnit report is encoded in UTF-16 or UTF-32, not UTF-8; refused."
    head = head.removeprefix(b"\xef\xbb\xbf")
    if not _DECLARATION.match(head):
        return None
    end = head.find(b"?>", 0, HEAD_BYTES)
    if end < 0:
        return f"The JUnit report's XML declaration is longer than {HEAD_BYTES:,} bytes; refused."
    declared = _ENCODING.search(head, 0, end)
    if declared is None:
        return None
    name = (declared.group(1) or declared.group(2) or b"").decode("ascii", "replace")
    if name.lower() in ("utf-8", "utf8"):
        return None
    if not _ENCODING_NAME.fullmatch(name):
        return "The JUnit report declares an encoding other than UTF-8; refused."
    return f"The JUnit report declares the encoding {name}, not UTF-8; refused."


class _NotJUnit(Exception):
    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.root = root


class _Text:
    """A failure's text as it streams in: its first characters and its last ones, nothing more.

    `add` runs once per line of the report (expat reports each newline apart), so it does little.
    """

    def __init__(self) -> None:
        self._head: str | None = None
        self._parts: list[str] = []
        self._size = 0
        self._dropped = 0

    def add(self, piece: str) -> None:
        self._parts.append(piece)
        self._size += len(piece)
        if self._size > 2 * _TAIL_TEXT_CHARS:
            self._compact()

    def _compact(self) -> None:
        whole = "".join(self._parts)
        if self._head is None:
            self._head = whole[:_HEAD_TEXT_CHARS]
        kept = whole[-_TAIL_TEXT_CHARS:]
        self._dropped += len(whole) - len(kept)
        self._parts, self._size = [kept], len(kept)

    @property
    def head(self) -> str:
        return self._head if self._head is not None else "".join(self._parts)[:_HEAD_TEXT_CHARS]

    def details(self) -> str:
        """The whole text when it was short, else its tail marked as cut."""
        tail = "".join(self._parts)
        if not self._dropped and len(tail.strip()) <= DETAILS_CHARS:
            return tail.strip()
        return "…" + tail.rstrip()[-DETAILS_CHARS:]


@dataclass
class _Case:
    depth: int
    name: str
    classname: str
    file: str | None
    line: str | None
    kind: str | None = None
    message: str = ""
    problem_depth: int = 0  # > 0 while inside the <failure>/<error> element
    skipped: bool = False
    text: _Text | None = None


class _Cases(ContentHandler):
    """SAX events → counts and failures. Only the test case being read is held."""

    def __init__(self, mapper: PathMapper) -> None:
        super().__init__()
        self.mapper = mapper
        self.failures: list[FailedTest] = []
        self.more_failures = 0
        self.tests = 0
        self.skipped = 0
        self._depth = 0
        self._root_seen = False
        self._case: _Case | None = None
        self._text: _Text | None = None  # the failure text being read, if any

    def startElement(self, name: str, attrs: AttributesImpl) -> None:
        self._depth += 1
        tag = _local(name)
        if not self._root_seen:
            self._root_seen = True
            if tag not in _ROOTS:
                raise _NotJUnit(name[:80])
        case = self._case
        if case is None:
            if tag == "testcase":
                self._case = _Case(
                    depth=self._depth,
                    name=_attr(attrs, "name", NAME_CHARS),
                    classname=_attr(attrs, "classname", NAME_CHARS + 100),
                    file=attrs.get("file"),
                    line=attrs.get("line"),
                )
        elif self._depth == case.depth + 1 and case.kind is None:
            if tag in ("failure", "error"):
                case.kind, case.problem_depth, case.text = tag, self._depth, _Text()
                self._text = case.text
                case.message = _attr(attrs, "message", MESSAGE_CHARS * 4)
            elif tag == "skipped":
                case.skipped = True

    def characters(self, content: str) -> None:
        if self._text is not None:
            self._text.add(content)

    def endElement(self, name: str) -> None:
        case = self._case
        if case is not None:
            if self._depth == case.problem_depth:
                case.problem_depth, self._text = 0, None
            elif self._depth == case.depth:
                self._case = None
                self._finish(case)
        self._depth -= 1

    def _finish(self, case: _Case) -> None:
        self.tests += 1
        if case.kind is None:
            self.skipped += case.skipped
        elif len(self.failures) < MAX_FAILURES:
            self.failures.append(self._failed_test(case))
        else:
            self.more_failures += 1

    def _failed_test(self, case: _Case) -> FailedTest:
        assert case.kind is not None and case.text is not None
        details = case.text.details()
        message = _first_line(case.message) or _first_line(case.text.head) or case.kind
        file, line = self.mapper.locate(case.file, case.line, case.classname, details)
        return FailedTest(
            name=_test_id(case.name.strip() or "(unnamed test)", case.classname.strip(), file),
            file=file,
            line=line,
            message=message[:MESSAGE_CHARS],
            details=details,
            kind=case.kind,
        )


def _attr(attrs: AttributesImpl, name: str, chars: int) -> str:
    value = attrs.get(name)
    return value[:chars] if isinstance(value, str) else ""


def _local(tag: str) -> str:
    return tag.rsplit(":", 1)[-1]


def _first_line(text: str) -> str:
    for candidate in text.split("\n"):
        if candidate.strip():
            return candidate.strip()
    return ""


def _test_id(name: str, classname: str, file: str | None) -> str:
    """pytest's node id when the file is known, so the agent can rerun just that test."""
    if file is None:
        return f"{classname}.{name}" if classname else name
    classes = [part for part in classname.split(".") if part[:1].isupper()]
    return "::".join([file, *classes, name])
