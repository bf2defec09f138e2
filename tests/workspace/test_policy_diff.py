"""The policy sees the bytes Honk pushes: `.gitattributes` (the repository's or the agent's)
cannot turn an added line into "Binary files differ" and hide it, or a secret in it, from the
scan; a binary file the agent adds is named for the reviewer; and what is pushed is what the
policy read. Real git, a real workspace cloned from a local bare repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from honk_app.repo_config import RepoConfig
from honk_app.safety.policy import FileChange, PolicyReport, evaluate, parse_unified_diff
from honk_app.workspace.clone import Workspace, prepare_workspace
from honk_app.workspace.inspection import inspect_workspace
from tests.safety.test_policy import BINARY, MODIFIED
from tests.workspace.hostile import BOT, FULL_NAME, TOKEN, Upstream, git, make_upstream

SECRET = "ghp_" + "Z9y8X7w6V5" * 3 + "u4T3s2"  # a GitHub token's shape: ghp_ and 36 characters
HIDING = {
    "-diff": "*.py -diff\n",
    "binary": "*.py binary\n*.bin binary\n",
    "a driver nobody defines": "*.py diff=hidden\n*.bin diff=hidden\n",
}


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    return make_upstream(tmp_path / "upstream")


async def prepare(tmp_path: Path, up: Upstream) -> Workspace:
    return await prepare_workspace(
        data_dir=tmp_path / "data", workspace_root=tmp_path / "ws", run_id="honk-run",
        full_name=FULL_NAME, clone_url=up.url, token=TOKEN, base_branch="main",
        branch="honk/1-policy",
    )  # fmt: skip


def commit_upstream(up: Upstream, files: dict[str, str]) -> None:
    """A commit on main by the repository's own people (not the agent)."""
    work = up.bare.parent.parent.parent / "upstream-work"
    for rel, text in files.items():
        (work / rel).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "attributes")
    git(work, "push", "-q", str(up.bare), "HEAD:main")


async def report_of(ws: Workspace) -> tuple[str, PolicyReport]:
    """The diff as git printed it, and the verdict Honk reaches on it (capped, in a thread)."""
    return (await ws.diff()).text, await inspect_workspace(ws, RepoConfig())


@pytest.mark.parametrize("whose", ["the repository's", "the agent's"])
@pytest.mark.parametrize("attributes", list(HIDING.values()), ids=list(HIDING))
async def test_attributes_cannot_hide_an_added_line_or_a_secret(
    tmp_path: Path, upstream: Upstream, whose: str, attributes: str
) -> None:
    if whose == "the repository's":
        commit_upstream(upstream, {".gitattributes": attributes})
    ws = await prepare(tmp_path, upstream)
    if whose == "the agent's":
        (ws.path / ".gitattributes").write_text(attributes)
    (ws.path / "src" / "config.py").write_text(f"API = 'https://example.com'\nTOKEN = '{SECRET}'\n")

    diff, report = await report_of(ws)

    assert f"+TOKEN = '{SECRET}'" in diff and "Binary files" not in diff
    [config] = [c for c in parse_unified_diff(diff) if c.path == "src/config.py"]
    assert (config.added, config.removed) == (2, 0)
    assert [(hit.path, hit.line, hit.kind) for hit in report.secrets] == [
        ("src/config.py", 2, "GitHub token")
    ]
    assert report.blocks_push and report.binary == []


@pytest.mark.parametrize("attributes", ["", "*.bin -diff\n", "*.bin -binary diff\n"])
async def test_a_binary_file_the_agent_adds_is_named_and_its_bytes_still_scanned(
    tmp_path: Path, upstream: Upstream, attributes: str
) -> None:
    ws = await prepare(tmp_path, upstream)
    (ws.path / ".gitattributes").write_text(attributes)
    blob = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) + b"\n"
    (ws.path / "assets").mkdir()
    (ws.path / "assets" / "logo.png").write_bytes(blob)
    (ws.path / "assets" / "payload.bin").write_bytes(b"\x00\x01header\n" + SECRET.encode() + b"\n")

    _, report = await report_of(ws)

    assert report.binary == ["assets/logo.png", "assets/payload.bin"]
    assert (
        "The change adds or changes binary files, `assets/logo.png` and `assets/payload.bin`: "
        "no diff can show their content, so check them by hand."
    ) in report.findings()
    assert [(hit.path, hit.line) for hit in report.secrets] == [("assets/payload.bin", 2)]
    assert {(a.path, a.title) for a in report.annotations()} >= {
        ("assets/logo.png", "Binary file"),
        ("assets/payload.bin", "Binary file"),
    }


async def test_what_is_pushed_is_what_the_policy_read(tmp_path: Path, upstream: Upstream) -> None:
    """An innocent binary file and a `-diff` Python file pass, and reach the remote byte for byte
    as the policy read them (no filter, no conversion on the way)."""
    ws = await prepare(tmp_path, upstream)
    (ws.path / ".gitattributes").write_text("*.py -diff\n*.png binary\n")
    blob = b"\x89PNG\x00\x01\x02\n\xff\xfe"
    (ws.path / "logo.png").write_bytes(blob)
    (ws.path / "src" / "app.py").write_text("def greet():\n    return 'hi'\n")

    diff, report = await report_of(ws)
    assert not report.blocks_push and report.binary == ["logo.png"]
    assert "+    return 'hi'" in diff
    await ws.commit("Logo", **BOT)
    await ws.push(TOKEN)

    pushed = git(upstream.bare, "show", "honk/1-policy:src/app.py")
    assert pushed == "def greet():\n    return 'hi'\n"
    raw = git(upstream.bare, "cat-file", "-s", "honk/1-policy:logo.png")
    assert int(raw) == len(blob)


# ---- the parser, on what `git diff --text` prints: every byte as lines ------------------------


@pytest.mark.parametrize("separator", ["\u2028", "\x0c", "\x1c", "\x85", "\r"])
def test_only_newlines_end_a_line_so_content_cannot_end_a_hunk_early(separator: str) -> None:
    """`str.splitlines` would split these too: the hunk would end early and the secret after
    it would be read as a header, unscanned."""
    sep = separator
    diff = f"""\
diff --git a/notes.txt b/notes.txt
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/notes.txt
@@ -0,0 +1,3 @@
+a{sep} b{sep} c{sep} d{sep} e
+plain
+token = {SECRET}
"""
    [notes] = parse_unified_diff(diff)
    assert notes.added == 3
    report = evaluate([notes], RepoConfig())
    assert [(hit.path, hit.line) for hit in report.secrets] == [("notes.txt", 3)]


NUL_FILE = f"""\
diff --git a/assets/blob.bin b/assets/blob.bin
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/assets/blob.bin
@@ -0,0 +1,2 @@
+\x89PNG\x00\x01
+{SECRET}
"""


def test_a_line_with_a_nul_byte_marks_a_binary_file_that_is_named_and_still_scanned() -> None:
    [blob] = parse_unified_diff(NUL_FILE)
    assert blob.binary and blob.added == 2
    report = evaluate([blob], RepoConfig(max_changed_lines=1))
    assert report.binary == ["assets/blob.bin"]
    assert report.lines_changed == 0 and not report.too_many_lines
    assert [(hit.path, hit.line) for hit in report.secrets] == [("assets/blob.bin", 2)]
    assert report.findings()[-1] == (
        "The change adds or changes a binary file, `assets/blob.bin`: no diff can show its "
        "content, so check it by hand."
    )
    assert ("assets/blob.bin", 1, "warning", "Binary file") in [
        (n.path, n.line, n.level, n.title) for n in report.annotations()
    ]


def test_binary_files_are_named_but_never_block_and_deleted_ones_are_not_named() -> None:
    gone = FileChange("old.bin", "deleted", removed=1, binary=True)
    report = evaluate([*parse_unified_diff(BINARY), gone], RepoConfig())
    assert report.binary == ["assets/logo.png"] and not report.blocks_push


SUBMODULE = """\
diff --git a/vendor/lib b/vendor/lib
new file mode 160000
index 0000000..1111111
--- /dev/null
+++ b/vendor/lib
@@ -0,0 +1 @@
+Subproject commit 1111111111111111111111111111111111111111
diff --git a/sub b/sub
index 2222222..3333333 160000
--- a/sub
+++ b/sub
@@ -1 +1 @@
-Subproject commit 2222222222222222222222222222222222222222
+Subproject commit 3333333333333333333333333333333333333333
"""


def test_a_submodule_pointer_added_or_moved_blocks_the_push() -> None:
    changes = parse_unified_diff(SUBMODULE + MODIFIED)
    assert [(c.path, c.submodule) for c in changes] == [
        ("vendor/lib", True),
        ("sub", True),
        ("app/login.py", False),
    ]
    report = evaluate(changes, RepoConfig())
    assert report.submodules == ["vendor/lib", "sub"] and report.blocks_push
    assert report.findings() == [
        "The change adds or moves submodule pointers (`vendor/lib` and `sub`); Honk does not "
        "push commits of other repositories."
    ]
    assert [(n.path, n.level, n.title) for n in report.annotations()] == [
        ("vendor/lib", "failure", "Submodule"),
        ("sub", "failure", "Submodule"),
    ]


def test_real_git_text_diff_shows_a_minus_diff_file_and_marks_a_binary_one(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "core.quotePath=true", *args],
            cwd=tmp_path, check=True, capture_output=True,
        )  # fmt: skip
        return done.stdout.decode("utf-8", "replace")  # as Honk's run_git reads it

    git("init", "-q")
    (tmp_path / ".gitattributes").write_text("*.py -diff\n*.png binary\n")
    (tmp_path / "app.py").write_text(f"KEY = '{SECRET}'\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\x00\x01\x02\n")
    git("add", "-A")
    plain = git("diff", "--cached", "--no-color", "--src-prefix=a/", "--dst-prefix=b/")
    assert "Binary files /dev/null and b/app.py differ" in plain  # what `--text` prevents
    args = ("--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/")
    changes = {c.path: c for c in parse_unified_diff(git("diff", "--cached", "--text", *args))}
    assert changes["app.py"].added == 1
    assert [(hit.line, hit.kind) for hit in changes["app.py"].secrets] == [(1, "GitHub token")]
    assert not changes["app.py"].binary and changes["logo.png"].binary
    report = evaluate(list(changes.values()), RepoConfig())
    assert [hit.path for hit in report.secrets] == ["app.py"]
    assert report.binary == ["logo.png"]
