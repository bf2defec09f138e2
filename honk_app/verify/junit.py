"""Pure: turn a JUnit XML report into the failures an agent (and a reviewer) can act on.

Test runners disagree on the details: pytest writes `file`/`line` on each testcase only with
`junit_family=xunit1`, others put the path in `classname` (dotted, Java style) or only mention it in
the traceback. So the location is found in that order: attributes, then classname, then the last
`path:line` in the failure text that points into the repository.

The XML is written by code from the repository under test, so it is untrusted: a DOCTYPE (the door
to entity expansion and external entities) is refused, the size is capped, and malformed input
gives an empty result with a readable note instead of an exception.

Not junitparser (5.0.3): it only finds a `<testcase>` inside a `<testsuite>`, so cases placed
directly under `<testsuites>` vanish without a word and namespaced or bare-`<testcase>` reports are
refused; it parses with lxml when that is importable and xml.etree otherwise, so its errors and
entity handling depend on what else is installed; and it has no `file`/`line`. Here it would
replace only the dozen lines that walk the tree.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Container, Iterator
from dataclasses import dataclass

MAX_XML_BYTES = 20_000_000
MAX_FAILURES = 50
DETAILS_CHARS = 4_000
SOURCE_SUFFIXES = (".py", ".java", ".kt", ".scala", ".ts", ".js", ".go", ".rb", ".cs", ".php")
# where a dotted classname's file lives, relative to the repository root (Maven/Gradle layouts)
SOURCE_ROOTS = ("", "src/", "test/", "tests/", "src/test/java/", "src/test/kotlin/",
                "src/test/scala/", "src/main/java/", "app/src/test/java/")  # fmt: skip

# `tests/test_x.py:12: AssertionError`, `File "tests/test_x.py", line 12`, `at Foo(Foo.java:12)`
_PATH_LINE = re.compile(
    r"""(?:File\ "(?P<py>[^"\n]+)",\ line\ (?P<pyline>\d+))"""
    r"""|(?P<path>(?:[A-Za-z]:)?[\w.\-/\\]+\.[A-Za-z]{1,5}):(?P<line>\d+)"""
)
_DOCTYPE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


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
    if not data.strip():
        return JUnitReport(note="The JUnit report is empty.")
    if len(data) > MAX_XML_BYTES:
        return JUnitReport(note=f"The JUnit report is larger than {MAX_XML_BYTES} bytes; ignored.")
    if _DOCTYPE.search(data):
        return JUnitReport(note="The JUnit report declares a DOCTYPE or entities; refused.")
    try:
        root = ET.fromstring(data)  # noqa: S314 - DOCTYPE refused above, so no entities
    except ET.ParseError as exc:
        return JUnitReport(note=f"The JUnit report is not well-formed XML ({exc}).")
    if _local(root.tag) not in ("testsuites", "testsuite", "testcase"):
        return JUnitReport(note=f"The file is not a JUnit report (root element <{root.tag}>).")

    mapper = _PathMapper(repo_root, known_files)
    failures: list[FailedTest] = []
    tests = skipped = 0
    for case in _testcases(root):
        tests += 1
        problem = _problem(case)
        if problem is None:
            if any(_local(child.tag) == "skipped" for child in case):
                skipped += 1
            continue
        if len(failures) < MAX_FAILURES:
            failures.append(_failed_test(case, problem, mapper))
    note = None
    if len(failures) == MAX_FAILURES:
        note = f"Only the first {MAX_FAILURES} failures are listed."
    return JUnitReport(tuple(failures), tests, skipped, note)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _testcases(root: ET.Element) -> Iterator[ET.Element]:
    if _local(root.tag) == "testcase":
        yield root
    for element in root.iter():
        if element is not root and _local(element.tag) == "testcase":
            yield element


def _problem(case: ET.Element) -> ET.Element | None:
    for child in case:
        if _local(child.tag) in ("failure", "error"):
            return child
    return None


def _failed_test(case: ET.Element, problem: ET.Element, mapper: _PathMapper) -> FailedTest:
    name = case.get("name", "").strip() or "(unnamed test)"
    classname = case.get("classname", "").strip()
    text = (problem.text or "").strip()
    message = (problem.get("message") or "").strip() or _first_line(text) or _local(problem.tag)
    file, line = mapper.locate(case.get("file"), case.get("line"), classname, text)
    return FailedTest(
        name=_test_id(name, classname, file),
        file=file,
        line=line,
        message=_first_line(message)[:500],
        details=text if len(text) <= DETAILS_CHARS else "…" + text[-DETAILS_CHARS:],
        kind=_local(problem.tag),
    )


def _first_line(text: str) -> str:
    for candidate in text.splitlines():
        if candidate.strip():
            return candidate.strip()
    return ""


def _test_id(name: str, classname: str, file: str | None) -> str:
    """pytest's node id when the file is known, so the agent can rerun just that test."""
    if file is None:
        return f"{classname}.{name}" if classname else name
    classes = [part for part in classname.split(".") if part[:1].isupper()]
    return "::".join([file, *classes, name])


class _PathMapper:
    def __init__(self, repo_root: str | None, known_files: Container[str] | None) -> None:
        self.root = repo_root.rstrip("/") + "/" if repo_root else None
        self.known = known_files

    def relative(self, raw: str) -> str | None:
        path = raw.strip().replace("\\", "/")
        if self.root and path.startswith(self.root):
            path = path[len(self.root) :]
        while path.startswith("./"):
            path = path[2:]
        if not path or path.startswith(("/", "../")) or re.match(r"^[A-Za-z]:/", path):
            return None
        if self.known is not None and path not in self.known:
            return None
        return path

    def from_classname(self, classname: str) -> str | None:
        parts = [p for p in classname.split(".") if p]
        known = self.known
        while parts and known is not None:
            stem = "/".join(parts)
            for candidate in (r + stem + s for r in SOURCE_ROOTS for s in SOURCE_SUFFIXES):
                if candidate in known:
                    return candidate
            parts.pop()
        if known is None:  # no listing to check against: pytest's convention
            modules = [p for p in classname.split(".") if p and not p[:1].isupper()]
            if modules and modules[-1].startswith("test"):
                return "/".join(modules) + ".py"
        return None

    def frames(self, text: str) -> list[tuple[str, int]]:
        found = []
        for match in _PATH_LINE.finditer(text):
            raw = match.group("py") or match.group("path")
            number = match.group("pyline") or match.group("line")
            path = self.relative(raw)
            if path is not None and "site-packages/" not in path:
                found.append((path, int(number)))
        return found

    def locate(
        self, file_attr: str | None, line_attr: str | None, classname: str, text: str
    ) -> tuple[str | None, int | None]:
        file = self.relative(file_attr) if file_attr else None
        file = file or self.from_classname(classname)
        frames = self.frames(text)
        if file is not None:
            same = [number for path, number in frames if path == file]
            if same:
                return file, same[-1]
            line = int(line_attr) + 1 if line_attr and line_attr.isdigit() else None
            return file, line  # pytest's `line` is 0-based
        if frames:
            return frames[-1]
        return None, None
