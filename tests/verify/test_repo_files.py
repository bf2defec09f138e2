"""RepoFiles answers junit's guesses from a few directory reads, never through a symlink."""

from __future__ import annotations

from pathlib import Path

import pytest

from honk_app.verify.junit import parse_junit
from honk_app.verify.junit_paths import MAX_PROBES_PER_REPORT
from honk_app.verify.repo_files import MAX_DIR_READS, RepoFiles


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src/test/java/com/acme").mkdir(parents=True)
    (root / "src/test/java/com/acme/CalcTest.java").write_text("class CalcTest {}\n")
    (root / "tests").mkdir()
    (root / "tests/test_a.py").write_text("def test_a(): pass\n")
    (tmp_path / "secret.txt").write_text("outside\n")
    (root / "linked.txt").symlink_to(tmp_path / "secret.txt")
    (root / "linkdir").symlink_to(tmp_path)
    return root


@pytest.mark.parametrize(
    ("path", "known"),
    [
        ("tests/test_a.py", True),
        ("src/test/java/com/acme/CalcTest.java", True),
        ("tests", False),  # a directory is not a file
        ("tests/missing.py", False),
        ("linked.txt", False),  # a link, even to a real file
        ("linkdir/secret.txt", False),  # nothing is followed through a linked directory
        ("../secret.txt", False),
        ("/etc/passwd", False),
        ("tests//test_a.py", False),
        ("tests/test_a.py\0", False),
        ("a/" * 50 + "b.py", False),
    ],
)
def test_only_real_files_inside_the_workspace_are_known(repo: Path, path: str, known: bool) -> None:
    assert (path in RepoFiles(repo)) is known


def test_each_directory_is_read_once(repo: Path) -> None:
    files = RepoFiles(repo)
    for _ in range(100):
        assert "src/test/java/com/acme/CalcTest.java" in files
        assert "src/test/java/com/acme/Other.java" not in files
    assert files.reads == 6  # the root, src, test, java, com, acme


def test_a_report_of_hostile_guesses_reads_a_bounded_number_of_directories(repo: Path) -> None:
    deep = repo / "/".join("abcdefghijkl")
    deep.mkdir(parents=True)
    cases = "".join(
        f'<testcase classname="{".".join("abcdefghijk")}.T{i}" name="x">'
        f"<failure>{' '.join(f'q{j}/w{i}.py:1' for j in range(300))}</failure></testcase>"
        for i in range(50)
    )
    files = RepoFiles(repo)
    report = parse_junit(f"<testsuite>{cases}</testsuite>", known_files=files)
    assert len(report.failures) == 50 and all(f.file is None for f in report.failures)
    assert files.reads <= MAX_DIR_READS < MAX_PROBES_PER_REPORT


def test_a_java_report_maps_with_a_handful_of_reads(repo: Path) -> None:
    cases = "".join(
        f'<testcase classname="com.acme.CalcTest" name="t{i}"><failure/></testcase>'
        for i in range(50)
    )
    files = RepoFiles(repo)
    report = parse_junit(f"<testsuite>{cases}</testsuite>", known_files=files)
    assert {f.file for f in report.failures} == {"src/test/java/com/acme/CalcTest.java"}
    assert files.reads <= 8
