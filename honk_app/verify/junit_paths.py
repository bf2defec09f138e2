"""Pure: where in the repository a failing test lives, found with a bounded amount of work.

The report is written by code under test, so every input here is hostile: the failure text is cut
before any regex sees it, the regex is linear (a match can only start where a run of path
characters starts, and every quantifier is bounded), and the guesses from a classname ask the
repository's file listing at most `MAX_PROBES_PER_FAILURE` questions per failure and
`MAX_PROBES_PER_REPORT` per report; each question may cost the adapter a directory read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container

SCAN_CHARS = 4_000  # of a failure's text, from its end, that is searched for `path:line`
PATH_CHARS = 400
CLASSNAME_CHARS = 400
MAX_CLASSNAME_PARTS = 12  # deeper than any real package; a longer name is not guessed at all
MAX_PROBES_PER_FAILURE = 200
MAX_PROBES_PER_REPORT = 2_000
SOURCE_SUFFIXES = (".py", ".java", ".kt", ".scala", ".ts", ".js", ".go", ".rb", ".cs", ".php")
# where a dotted classname's file lives, relative to the repository root (Maven/Gradle layouts)
SOURCE_ROOTS = ("", "src/", "test/", "tests/", "src/test/java/", "src/test/kotlin/",
                "src/test/scala/", "src/main/java/", "app/src/test/java/")  # fmt: skip

# `tests/test_x.py:12: AssertionError`, `File "tests/test_x.py", line 12`, `at Foo(Foo.java:12)`
PATH_LINE = re.compile(
    r"""File\ "(?P<py>[^"\n]{1,400})",\ line\ (?P<pyline>[0-9]{1,9})"""
    r"""|(?<![\w.\-/\\])(?P<path>(?:[A-Za-z]:)?[\w.\-/\\]{1,400}\.[A-Za-z]{1,5}):"""
    r"""(?P<line>[0-9]{1,9})"""
)
_CLASSNAME_PART = re.compile(r"[\w\-]{1,100}")
_DRIVE = re.compile(r"[A-Za-z]:/")


class PathMapper:
    """Maps a failure to a repository path and line. `probes` counts questions to `known_files`."""

    def __init__(self, repo_root: str | None, known_files: Container[str] | None) -> None:
        self.root = repo_root.rstrip("/") + "/" if repo_root else None
        self.known = known_files
        self.probes = 0
        self._left_for_failure = MAX_PROBES_PER_FAILURE
        self._answers: dict[str, bool] = {}  # at most MAX_PROBES_PER_REPORT entries

    def locate(
        self, file_attr: str | None, line_attr: str | None, classname: str, text: str
    ) -> tuple[str | None, int | None]:
        """The file and line of one failure: attributes, then classname, then the traceback."""
        self._left_for_failure = MAX_PROBES_PER_FAILURE
        file = self.normalize(file_attr) if file_attr else None
        if not self._in_repository(file):
            file = self.from_classname(classname)
        frames = frames_in(text, self.normalize)
        if file is not None:
            same = [number for path, number in frames if path == file]
            if same:
                return file, same[-1]
            line = _number(line_attr)
            return file, None if line is None else line + 1  # pytest's `line` is 0-based
        for path, number in reversed(frames):  # the innermost frame inside the repository
            if "site-packages/" not in path and self._in_repository(path):
                return path, number
        return None, None

    def normalize(self, raw: str) -> str | None:
        """`raw` relative to the repository root, or None when it points outside it."""
        if len(raw) > PATH_CHARS:
            return None
        path = raw.strip().replace("\\", "/")
        if self.root and path.startswith(self.root):
            path = path[len(self.root) :]
        while path.startswith("./"):
            path = path[2:]
        if not path or path.startswith(("/", "../")) or _DRIVE.match(path) or "\0" in path:
            return None
        return path

    def from_classname(self, classname: str) -> str | None:
        """`com.acme.CalcTest` → `src/test/java/com/acme/CalcTest.java` when the repository has it.

        Only two stems are tried: up to the first capitalised part (the outer class, Java style)
        and the lowercase modules before it (pytest's `tests.test_x.TestY`).
        """
        parts = [part.split("$", 1)[0] for part in classname[:CLASSNAME_CHARS].split(".") if part]
        if not parts or len(parts) > MAX_CLASSNAME_PARTS:
            return None
        if not all(_CLASSNAME_PART.fullmatch(part) for part in parts):
            return None
        if self.known is None:  # no listing to check against: pytest's convention
            modules = [part for part in parts if not part[:1].isupper()]
            if modules and modules[-1].startswith("test"):
                return "/".join(modules) + ".py"
            return None
        first = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts) - 1)
        for stem in (s for s in (parts[: first + 1], parts[:first]) if s):
            joined = "/".join(stem)
            for candidate in (r + joined + s for r in SOURCE_ROOTS for s in SOURCE_SUFFIXES):
                if self._in_repository(candidate):
                    return candidate
        return None

    def _in_repository(self, path: str | None) -> bool:
        if path is None:
            return False
        if self.known is None:
            return True
        if path in self._answers:  # failures of one class ask the same questions
            return self._answers[path]
        if not self._budget_left():
            return False
        self.probes += 1
        self._left_for_failure -= 1
        answer = self._answers[path] = path in self.known
        return answer

    def _budget_left(self) -> bool:
        return self._left_for_failure > 0 and self.probes < MAX_PROBES_PER_REPORT


def frames_in(text: str, normalize: Callable[[str], str | None] = str) -> list[tuple[str, int]]:
    """Every `path:line` in the last `SCAN_CHARS` characters of `text`, as `normalize` maps it."""
    found = []
    for match in PATH_LINE.finditer(text[-SCAN_CHARS:]):
        path = normalize(match.group("py") or match.group("path"))
        if path is not None:
            found.append((path, int(match.group("pyline") or match.group("line"))))
    return found


def _number(raw: str | None) -> int | None:
    """A small non-negative integer attribute; anything else (`²`, 5,000 digits) is no number."""
    if raw is None or not re.fullmatch(r"[0-9]{1,9}", raw.strip()):
        return None
    return int(raw)
