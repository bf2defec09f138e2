"""git.py's pure helpers (branch names, numstat parsing, readable errors, mirror paths), and what
every git command Honk runs ignores: config from Honk's environment, and transports it does not use.

The mirrors and their locks are exercised against real git over smart HTTP in test_clone.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from honk_app.workspace.git import (
    DiffStat,
    FileStat,
    GitError,
    branch_name,
    check_branch,
    explain,
    mirror_path,
    parse_numstat,
    run_git,
)

TOKEN = "ghs_" + "T0kenValue" * 4  # looks like a real installation token (40 chars)


# ---- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "title", "expected"),
    [
        (42, "Fix the login bug!", "honk/42-fix-the-login-bug"),
        (7, "Café crème: handle ünïcode", "honk/7-cafe-creme-handle-unicode"),
        (3, "🚀🔥", "honk/3"),
        (9, "  --Leading and trailing--  ", "honk/9-leading-and-trailing"),
    ],
)
def test_branch_name_is_a_readable_slug(number: int, title: str, expected: str) -> None:
    assert branch_name(number, title) == expected


def test_branch_name_slug_is_at_most_40_chars_and_never_ends_with_a_dash() -> None:
    name = branch_name(12, "Refactor the very long module name that goes on and on forever")
    slug = name.removeprefix("honk/12-")
    assert len(slug) <= 40
    assert not slug.endswith("-")
    assert check_branch(name) == name


@pytest.mark.parametrize("bad", ["", "-delete", "a..b", "has space", "x.lock", "a//b", "q?", "@{x"])
def test_check_branch_refuses_names_git_would_refuse_or_read_as_options(bad: str) -> None:
    with pytest.raises(GitError, match="not a valid branch name"):
        check_branch(bad)


def test_parse_numstat_counts_text_and_binary_files() -> None:
    stat = parse_numstat("3\t1\tsrc/app.py\x00-\t-\tlogo.png\x000\t4\told.txt\x00")
    assert stat == DiffStat(
        (FileStat("src/app.py", 3, 1), FileStat("logo.png", None, None), FileStat("old.txt", 0, 4))
    )
    assert (stat.files_changed, stat.added, stat.removed) == (3, 3, 5)


def test_explain_gives_one_sentence_with_the_token_redacted() -> None:
    stderr = f"remote: bad {TOKEN}\nfatal: Authentication failed for 'https://github.com/a/b'\n"
    message = explain(stderr, "fetch a/b", [TOKEN])
    assert message == "GitHub refused the installation token while trying to fetch a/b."
    other = explain(f"fatal: weird failure near {TOKEN}\n", "fetch a/b", [TOKEN])
    assert TOKEN not in other
    assert other.startswith("git could not fetch a/b: weird failure near [REDACTED]")


def test_mirror_path_is_lowercase_under_data_dir(tmp_path: Path) -> None:
    assert mirror_path(tmp_path, "Acme/Widgets") == tmp_path / "mirrors" / "acme" / "widgets.git"


@pytest.mark.parametrize("bad", ["acme", "acme/widgets/x", "../widgets", "acme/..", "a b/c", ""])
def test_mirror_path_refuses_anything_but_owner_slash_repo(tmp_path: Path, bad: str) -> None:
    with pytest.raises(GitError, match="not a repository name of the form owner/repo"):
        mirror_path(tmp_path, bad)


# ---- what every git command ignores --------------------------------------------------------------


async def test_git_reads_only_its_own_config_whatever_honks_environment_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Config and attributes from HOME, XDG, GIT_CONFIG_* or GIT_DIR in Honk's environment never
    reach git: only the command line (Honk's flags) and the repository's own config."""
    home = tmp_path / "home"
    (home / ".config" / "git").mkdir(parents=True)
    for path in (home / ".gitconfig", home / ".config" / "git" / "config"):
        path.write_text('[filter "x"]\n\tclean = touch /tmp/never\n')
    for name, value in {
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GIT_DIR": str(tmp_path),
        "GIT_CONFIG_PARAMETERS": "'core.fsmonitor'='touch /tmp/never'", "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "diff.external", "GIT_CONFIG_VALUE_0": "touch /tmp/never",
        "GIT_EXTERNAL_DIFF": "touch /tmp/never", "GIT_CONFIG_SYSTEM": str(home / ".gitconfig"),
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    repo = tmp_path / "repo"
    await run_git("init", "--quiet", str(repo), action="init")

    _, listing = await run_git("config", "--list", "--show-origin", action="list", cwd=repo)

    origins = {line.split("\t")[0] for line in listing.splitlines()}
    assert origins == {"command line:", "file:.git/config"}
    assert "touch /tmp/never" not in listing
    settings = dict(line.split("\t")[1].split("=", 1) for line in listing.splitlines())
    assert settings["protocol.allow"] == "never" and settings["diff.ignoresubmodules"] == "all"


async def test_git_speaks_no_ext_or_ssh_and_file_only_when_told(tmp_path: Path) -> None:
    marker = tmp_path / "ext-ran"
    source = tmp_path / "source.git"
    await run_git("init", "--quiet", "--bare", str(source), action="init")

    for url in (f"ext::sh -c touch% {marker}", "ssh://example.invalid/x.git", str(source)):
        with pytest.raises(GitError):
            await run_git("ls-remote", url, action="list refs")
    assert not marker.exists()
    await run_git("ls-remote", str(source), action="list refs", allow_file=True)
    file_url = f"file://{source}"
    await run_git("ls-remote", file_url, action="list refs", token="t", url=file_url)
