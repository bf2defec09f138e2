"""Diff parsing and the policies that decide what Honk may push."""

from __future__ import annotations

import subprocess
from pathlib import Path

from honk_app.repo_config import RepoConfig
from honk_app.safety.policy import FileChange, evaluate, parse_unified_diff

TOKEN = "ghp_" + "A1b2C3d4E5" * 4  # a GitHub token shape, 44 characters

MODIFIED = """\
diff --git a/app/login.py b/app/login.py
index 4cb29ea..6addb9b 100644
--- a/app/login.py
+++ b/app/login.py
@@ -10,6 +10,7 @@ def login(request):
     user = authenticate(request)
     if user is None:
-        return redirect("/")
+        return redirect("/login?failed=1")
+    audit(user)
     session = start(user)
     return redirect(next_url(request))
\x20
@@ -40,3 +41,3 @@ def logout(request):
     end(request.session)
-    return redirect("/")
+    return redirect("/goodbye")
     # done
"""

NEW_FILE_NO_NEWLINE = """\
diff --git a/docs/usage.md b/docs/usage.md
new file mode 100644
index 0000000..0a207c0
--- /dev/null
+++ b/docs/usage.md
@@ -0,0 +1,3 @@
+# Usage
+
+Run `honk` and wait.
\\ No newline at end of file
"""

DELETED = """\
diff --git a/old/settings.ini b/old/settings.ini
deleted file mode 100644
index 286c5f5..0000000
--- a/old/settings.ini
+++ /dev/null
@@ -1,2 +0,0 @@
-[main]
-token = TOKEN_VALUE
""".replace("TOKEN_VALUE", TOKEN)

RENAMED_AND_EDITED = """\
diff --git a/lib/util.py b/lib/helpers.py
similarity index 91%
rename from lib/util.py
rename to lib/helpers.py
index 0ff3bbb..d4de868 100644
--- a/lib/util.py
+++ b/lib/helpers.py
@@ -18,3 +18,4 @@ def slug(text):
     text = text.lower()
     text = re.sub(r"\\W+", "-", text)
     return text.strip("-")
+# moved from util.py
"""

PURE_RENAME = """\
diff --git a/README b/README.md
similarity index 100%
rename from README
rename to README.md
"""

BINARY = """\
diff --git a/assets/logo.png b/assets/logo.png
new file mode 100644
index 0000000..f584f40
Binary files /dev/null and b/assets/logo.png differ
"""

BINARY_PATCH = """\
diff --git a/assets/icon.ico b/assets/icon.ico
index 1111111..2222222 100644
GIT binary patch
literal 6
NcmeZB&d<x_0{{Rp0pI`t

literal 4
LcmeZB&d<xX02TlP

"""

MODE_ONLY = """\
diff --git a/scripts/run b/scripts/run
old mode 100644
new mode 100755
"""

NO_NEWLINE_BOTH_SIDES = """\
diff --git a/VERSION b/VERSION
index c1b0730..e25f181 100644
--- a/VERSION
+++ b/VERSION
@@ -1 +1 @@
-1.2.3
\\ No newline at end of file
+1.2.4
\\ No newline at end of file
"""

QUOTED_AND_SPACED = """\
diff --git "a/data/caf\\303\\251 menu.txt" "b/data/caf\\303\\251 menu.txt"
index 1111111..2222222 100644
--- "a/data/caf\\303\\251 menu.txt"\t
+++ "b/data/caf\\303\\251 menu.txt"\t
@@ -1 +1 @@
-tea
+coffee
diff --git a/notes/my notes.txt b/notes/my notes.txt
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/notes/my notes.txt\t
@@ -0,0 +1 @@
+hello
"""

# Content lines that look like headers: a removed `-- comment` and an added `++ counter`.
HEADER_LOOKALIKES = """\
diff --git a/db/schema.sql b/db/schema.sql
index 1111111..2222222 100644
--- a/db/schema.sql
+++ b/db/schema.sql
@@ -1,3 +1,3 @@
--- the users table
+++ counter for users
 CREATE TABLE users (id int);
 -- end
"""


def only(diff: str) -> FileChange:
    changes = parse_unified_diff(diff)
    assert len(changes) == 1
    return changes[0]


def added_line_numbers(diff: str) -> list[tuple[str, int]]:
    """Where the policy points for each added line: the diff with a token put on every added
    line, and the (path, line in the new file) of each hit. Lines are counted, never kept, so a
    secret's place is how a line's place shows."""
    headers = ("+++ b/", "+++ /dev/null", '+++ "b/')
    marked = "\n".join(
        f"{line} {TOKEN}" if line.startswith("+") and not line.startswith(headers) else line
        for line in diff.split("\n")
    )
    return [(hit.path, hit.line) for c in parse_unified_diff(marked) for hit in c.secrets]


def test_a_modified_file_numbers_added_lines_in_the_new_file() -> None:
    change = only(MODIFIED)
    assert (change.path, change.status, change.old_path, change.binary) == (
        "app/login.py",
        "modified",
        None,
        False,
    )
    assert added_line_numbers(MODIFIED) == [
        ("app/login.py", 12),
        ("app/login.py", 13),
        ("app/login.py", 42),
    ]
    assert change.removed == 2
    assert change.added == 3


def test_a_new_file_without_a_final_newline() -> None:
    change = only(NEW_FILE_NO_NEWLINE)
    assert (change.path, change.status) == ("docs/usage.md", "added")
    assert change.added == 3
    assert added_line_numbers(NEW_FILE_NO_NEWLINE) == [("docs/usage.md", n) for n in (1, 2, 3)]
    assert change.removed == 0


def test_a_deleted_file_counts_removed_lines_only() -> None:
    change = only(DELETED)
    assert (change.path, change.status, change.added, change.removed) == (
        "old/settings.ini",
        "deleted",
        0,
        2,
    )


def test_renames_keep_both_paths() -> None:
    edited = only(RENAMED_AND_EDITED)
    assert (edited.path, edited.old_path, edited.status) == (
        "lib/helpers.py",
        "lib/util.py",
        "renamed",
    )
    assert added_line_numbers(RENAMED_AND_EDITED) == [("lib/helpers.py", 21)]
    pure = only(PURE_RENAME)
    assert (pure.path, pure.old_path, pure.status, pure.added, pure.removed) == (
        "README.md",
        "README",
        "renamed",
        0,
        0,
    )


def test_binary_files_are_flagged_without_lines() -> None:
    logo = only(BINARY)
    assert (logo.path, logo.status, logo.binary, logo.added, logo.removed) == (
        "assets/logo.png",
        "added",
        True,
        0,
        0,
    )
    icon = only(BINARY_PATCH)
    assert (icon.path, icon.status, icon.binary, icon.added) == (
        "assets/icon.ico",
        "modified",
        True,
        0,
    )


def test_a_mode_change_is_a_modified_file_with_no_lines() -> None:
    change = only(MODE_ONLY)
    assert (change.path, change.status, change.added, change.removed) == (
        "scripts/run",
        "modified",
        0,
        0,
    )


def test_no_newline_markers_are_not_content() -> None:
    change = only(NO_NEWLINE_BOTH_SIDES)
    assert change.added == 1
    assert added_line_numbers(NO_NEWLINE_BOTH_SIDES) == [("VERSION", 1)]
    assert change.removed == 1


def test_quoted_and_spaced_file_names() -> None:
    cafe, notes = parse_unified_diff(QUOTED_AND_SPACED)
    assert cafe.path == "data/café menu.txt"
    assert (notes.path, notes.status, cafe.added, notes.added) == (
        "notes/my notes.txt",
        "added",
        1,
        1,
    )
    assert added_line_numbers(QUOTED_AND_SPACED) == [
        ("data/café menu.txt", 1),
        ("notes/my notes.txt", 1),
    ]


def test_content_that_looks_like_a_header_stays_content() -> None:
    change = only(HEADER_LOOKALIKES)
    assert change.path == "db/schema.sql"
    assert change.added == 1
    assert added_line_numbers(HEADER_LOOKALIKES) == [("db/schema.sql", 1)]
    assert change.removed == 1


def test_a_whole_diff_of_many_files_in_order() -> None:
    diff = "".join([MODIFIED, NEW_FILE_NO_NEWLINE, DELETED, RENAMED_AND_EDITED, BINARY, MODE_ONLY])
    changes = parse_unified_diff(diff)
    assert [(c.path, c.status) for c in changes] == [
        ("app/login.py", "modified"),
        ("docs/usage.md", "added"),
        ("old/settings.ini", "deleted"),
        ("lib/helpers.py", "renamed"),
        ("assets/logo.png", "added"),
        ("scripts/run", "modified"),
    ]


def test_empty_diff_and_stray_text_give_nothing() -> None:
    assert parse_unified_diff("") == []
    assert parse_unified_diff("warning: LF will be replaced by CRLF\n") == []


def test_real_git_output_parses_as_expected(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    git("init", "-q")
    (tmp_path / "keep.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "gone.txt").write_text("bye\n")
    (tmp_path / "old name.txt").write_text("".join(f"{i}\n" for i in range(20)))
    git("add", "-A")
    git("commit", "-qm", "init")
    (tmp_path / "keep.txt").write_text("one\nTWO\nthree\nfour")
    (tmp_path / "gone.txt").unlink()
    git("mv", "old name.txt", "new namé.txt")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\x00\x01\x02")
    git("add", "-A")
    diff = git(
        "-c",
        "core.quotePath=true",
        "diff",
        "--cached",
        "-M",
        "--no-color",
        "--no-ext-diff",
        "--src-prefix=a/",
        "--dst-prefix=b/",
    )
    changes = {c.path: c for c in parse_unified_diff(diff)}
    assert set(changes) == {"keep.txt", "gone.txt", "new namé.txt", "logo.png"}
    assert changes["keep.txt"].added == 2
    assert [(c, n) for c, n in added_line_numbers(diff) if c == "keep.txt"] == [
        ("keep.txt", 2),
        ("keep.txt", 4),
    ]
    assert changes["keep.txt"].removed == 1
    assert changes["gone.txt"].status == "deleted"
    assert (changes["new namé.txt"].status, changes["new namé.txt"].old_path) == (
        "renamed",
        "old name.txt",
    )
    assert changes["logo.png"].binary


# --- evaluate ----------------------------------------------------------------------------------


def change(path: str, added: int = 0, removed: int = 0, **kwargs: object) -> FileChange:
    return FileChange(path=path, added=added, removed=removed, **kwargs)  # type: ignore[arg-type]


def test_a_small_clean_change_passes() -> None:
    report = evaluate(parse_unified_diff(MODIFIED + NEW_FILE_NO_NEWLINE), RepoConfig())
    assert (report.files_changed, report.lines_changed) == (2, 8)
    assert not report.blocks_push
    assert report.protected == []
    assert report.findings() == []
    assert report.annotations() == []


def test_protected_paths_are_listed_for_the_caller_to_restore_but_do_not_block() -> None:
    diff = """\
diff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml
index b83836e..7eb333f 100644
--- a/.github/workflows/ci.yml
+++ b/.github/workflows/ci.yml
@@ -1 +1 @@
-on: push
+on: pull_request
"""
    report = evaluate(parse_unified_diff(diff + MODIFIED), RepoConfig())
    assert report.protected == [".github/workflows/ci.yml"]
    assert not report.blocks_push
    assert report.findings() == [
        "Honk does not change protected paths (matched by `.github/workflows/**`), so it left out "
        "its changes to `.github/workflows/ci.yml`."
    ]
    assert report.findings(include_protected=False) == []
    [note] = report.annotations()
    assert (note.path, note.line, note.level, note.title) == (
        ".github/workflows/ci.yml",
        1,
        "warning",
        "Protected path",
    )


def test_a_rename_names_each_protected_side() -> None:
    config = RepoConfig(protected_paths=["infra/", "**/*.lock"])
    changes = [
        change("docs/terraform.md", status="renamed", old_path="infra/main.tf"),
        change("b/yarn.lock", 1, 1),
        change("infra/new.tf", 3, status="added"),
        change("src/app.py", 1, 1),
    ]
    report = evaluate(changes, config)
    assert report.protected == ["infra/main.tf", "b/yarn.lock", "infra/new.tf"]
    assert report.protected_patterns["b/yarn.lock"] == "**/*.lock"


def test_size_limits_block_the_push() -> None:
    config = RepoConfig(max_changed_files=2, max_changed_lines=10)
    at_limit = evaluate([change("a", 4, 1), change("b", 5)], config)
    assert (at_limit.too_many_files, at_limit.too_many_lines, at_limit.blocks_push) == (
        False,
        False,
        False,
    )
    over = evaluate([change("a", 4, 1), change("b", 5), change("c", 0, 1)], config)
    assert (over.files_changed, over.lines_changed) == (3, 11)
    assert over.too_many_files and over.too_many_lines and over.blocks_push
    assert over.findings() == [
        "The change touches 3 files, more than the limit of 2 (`max_changed_files`).",
        "The change adds or removes 11 lines, more than the limit of 10 (`max_changed_lines`).",
    ]


def test_binary_files_count_as_files_not_lines() -> None:
    report = evaluate(parse_unified_diff(BINARY + BINARY_PATCH), RepoConfig(max_changed_lines=1))
    assert (report.files_changed, report.lines_changed, report.blocks_push) == (2, 0, False)


def test_a_secret_on_an_added_line_blocks_and_is_never_shown() -> None:
    diff = f"""\
diff --git a/config/app.env b/config/app.env
index 1111111..2222222 100644
--- a/config/app.env
+++ b/config/app.env
@@ -3,2 +3,4 @@ DEBUG=0
 PORT=8080
+GITHUB_TOKEN={TOKEN}
+-----BEGIN RSA PRIVATE KEY-----
 NAME=app
"""
    report = evaluate(parse_unified_diff(diff), RepoConfig())
    assert report.blocks_push
    assert [(hit.path, hit.line, hit.kind) for hit in report.secrets] == [
        ("config/app.env", 4, "GitHub token"),
        ("config/app.env", 5, "private key block"),
    ]
    findings = report.findings()
    assert findings[0] == (
        "`config/app.env` line 4 adds what looks like a GitHub token (`ghp_… (44 chars)`); "
        "Honk does not push credentials."
    )
    notes = report.annotations()
    assert [(n.path, n.line, n.level, n.title) for n in notes] == [
        ("config/app.env", 4, "failure", "Possible GitHub token"),
        ("config/app.env", 5, "failure", "Possible private key block"),
    ]
    everything = repr(report) + " ".join(findings) + repr(notes)
    assert TOKEN not in everything
    assert TOKEN[4:20] not in everything


def test_removing_a_secret_or_leaving_one_in_context_does_not_block() -> None:
    context_diff = f"""\
diff --git a/README.md b/README.md
index 1111111..2222222 100644
--- a/README.md
+++ b/README.md
@@ -1,2 +1,3 @@
 old example token {TOKEN}
+A new line of docs.
 end
"""
    report = evaluate(parse_unified_diff(DELETED + context_diff), RepoConfig())
    assert report.secrets == []
    assert not report.blocks_push


def new_file(path: str, lines: list[str]) -> str:
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def test_many_secrets_are_counted_after_the_first_ten() -> None:
    leaky = new_file("keys.txt", [TOKEN] * 13)
    findings = evaluate(parse_unified_diff(leaky), RepoConfig()).findings()
    assert len(findings) == 11
    assert findings[-1] == "3 more lines look like credentials."


def test_many_protected_paths_are_summarised() -> None:
    changes = [change(f".github/workflows/w{i}.yml", 1) for i in range(13)]
    [finding] = evaluate(changes, RepoConfig()).findings()
    assert finding.endswith("`.github/workflows/w9.yml` and 3 more.")
