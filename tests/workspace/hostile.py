"""What a hostile agent can plant in its work tree, for the workspace tests: nested repositories
whose config names commands, a `.git` directory in place of the work tree's `.git` file, config
in its HOME, and `.gitattributes` naming filters and diff drivers. Every planted command is a
script that touches a file in `markers/` (outside the workspace), so a test asserts that none
ran; each plant also has a control showing that plain git, unlike Honk's, would run it.

The repository behind it is a local bare one (`file://`), with a submodule at `sub` whose
gitlink points at a real commit of another repository: an agent that plants a repository with
that commit at `sub` makes git consider the submodule unchanged and look inside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from honk_app.workspace.clone import Workspace

FULL_NAME = "acme/widgets"
BOT = {"author_name": "honk[bot]", "author_email": "123+honk[bot]@users.noreply.github.com"}
TOKEN = "ghs_" + "T0kenValue" * 4
GIT_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "LC_ALL": "C",
    "GIT_AUTHOR_NAME": "A",
    "GIT_AUTHOR_EMAIL": "a@example.com",
    "GIT_COMMITTER_NAME": "A",
    "GIT_COMMITTER_EMAIL": "a@example.com",
}
HOOKS = (
    "pre-commit", "prepare-commit-msg", "commit-msg", "post-commit", "pre-push", "post-checkout",
    "post-index-change", "reference-transaction", "pre-auto-gc", "fsmonitor-watchman",
)  # fmt: skip


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """Plain git, as the agent (or a careless tool) would run it."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env or GIT_ENV, capture_output=True, text=True, check=check
    )
    return done.stdout


@dataclass
class Upstream:
    """The bare repository and the commit its submodule `sub` points at."""

    bare: Path
    sub_source: Path
    sub_sha: str

    @property
    def url(self) -> str:
        return f"file://{self.bare}"


def make_upstream(root: Path) -> Upstream:
    """`acme/widgets.git`: a few files, a `.gitmodules` and a gitlink `sub` to `sub-source`."""
    sub = root / "sub-source"
    sub.mkdir(parents=True)
    git(sub, "init", "-q", "-b", "main")
    (sub / "lib.c").write_text("int x;\n")
    git(sub, "add", "-A")
    git(sub, "commit", "-qm", "sub")
    sub_sha = git(sub, "rev-parse", "HEAD").strip()
    work = root / "upstream-work"
    (work / "src").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("# Widgets\n")
    (work / "src" / "app.py").write_text("def greet():\n    return 'hello'\n")
    (work / ".gitmodules").write_text(
        '[submodule "sub"]\n\tpath = sub\n\turl = https://example.invalid/sub.git\n'
    )
    git(work, "add", "-A")
    git(work, "update-index", "--add", "--cacheinfo", f"160000,{sub_sha},sub")
    git(work, "commit", "-qm", "base")
    bare = root / "repos" / "acme" / "widgets.git"
    bare.parent.mkdir(parents=True)
    git(root, "clone", "-q", "--bare", str(work), str(bare))
    return Upstream(bare, sub, sub_sha)


def gitlinks_on(bare: Path, ref: str) -> dict[str, str]:
    """Path → commit of every gitlink in `ref`'s tree."""
    found = {}
    for line in git(bare, "ls-tree", "-r", ref).splitlines():
        meta, _, path = line.partition("\t")
        mode, _, sha = meta.split()
        if mode == "160000":
            found[path] = sha
    return found


# ---- plants -------------------------------------------------------------------------------------


def script(ws: Workspace, markers: Path, name: str) -> str:
    """An executable the agent wrote in its work tree: touches `markers/<name>`, passes stdin
    through (so it also works as a clean or smudge filter)."""
    path = ws.path / "tools" / f"{name}.sh"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\ntouch '{markers / name}'\nexec cat\n")
    path.chmod(0o755)
    return str(path)


def hostile_config(ws: Workspace, markers: Path, tag: str) -> str:
    """Git config naming a command everywhere git accepts one, a hooks dir full of hooks, and
    includes of more of the same."""
    run = {what: script(ws, markers, f"{tag}-{what}") for what in (
        "clean", "smudge", "process", "textconv", "diff-command", "merge", "fsmonitor", "pager",
        "editor", "external", "ssh", "askpass", "credential", "include",
    )}  # fmt: skip
    included = ws.path / "tools" / f"{tag}-included.cfg"
    included.write_text(f'[filter "y"]\n\tclean = {run["include"]}\n')
    return f"""[core]
\tfsmonitor = {run["fsmonitor"]}
\thooksPath = {hooks_dir(ws, markers, tag)}
\tpager = {run["pager"]}
\teditor = {run["editor"]}
\tsshCommand = {run["ssh"]}
\taskPass = {run["askpass"]}
[credential]
\thelper = !{run["credential"]}
[filter "x"]
\tclean = {run["clean"]}
\tsmudge = {run["smudge"]}
\tprocess = {run["process"]}
\trequired = true
[diff "x"]
\ttextconv = {run["textconv"]}
\tcommand = {run["diff-command"]}
[merge "x"]
\tdriver = {run["merge"]}
[diff]
\texternal = {run["external"]}
[include]
\tpath = {included}
[includeIf "gitdir:/"]
\tpath = {included}
"""


def hooks_dir(ws: Workspace, markers: Path, tag: str) -> Path:
    """Every hook git knows of, each touching `markers/<tag>-hook-<name>`."""
    hooks = ws.path / "tools" / f"{tag}-hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    for hook in HOOKS:
        (hooks / hook).write_text(f"#!/bin/sh\ntouch '{markers / f'{tag}-hook-{hook}'}'\n")
        (hooks / hook).chmod(0o755)
    return hooks


ATTRIBUTES = "* filter=x diff=x merge=x\n*.c filter=y\n"


def nested_repo(ws: Workspace, markers: Path, where: str, tag: str, clone: Path | None) -> Path:
    """A repository made at `where` (its `.git` a directory) with hostile config and hooks, and
    `.gitattributes` sending its changed file through the planted filter; HEAD at the commit of
    `clone`'s main when given, else at a commit of its own."""
    path = ws.path / where
    path.mkdir(parents=True, exist_ok=True)  # in place: a submodule's directory keeps its stat
    git(path, "init", "-q")
    if clone is not None:
        git(path, "fetch", "-q", str(clone), "main")
        git(path, "checkout", "-q", "FETCH_HEAD")
    else:
        (path / "lib.c").write_text("int x;\n")
        git(path, "add", "-A")
        git(path, "commit", "-qm", "nested")
    with (path / ".git" / "config").open("a") as file:
        file.write(hostile_config(ws, markers, tag))
    shutil.copytree(hooks_dir(ws, markers, tag), path / ".git" / "hooks", dirs_exist_ok=True)
    (path / ".gitattributes").write_text(ATTRIBUTES)
    (path / "lib.c").write_text("int y;\n")  # same size: git must read it, through the filter
    return path


Control = Callable[[Workspace], None]


def plain_status(ws: Workspace) -> None:
    git(ws.path, "status", check=False)


def plant_submodule_repo(ws: Workspace, up: Upstream, markers: Path) -> Control:
    """A repository at the submodule path, at the commit the gitlink names: git thinks the
    submodule is unchanged and runs `git status` inside it, with its config."""
    nested_repo(ws, markers, "sub", "sub", up.sub_source)
    return plain_status


def plant_submodule_gitfile(ws: Workspace, up: Upstream, markers: Path) -> Control:
    """The same through a `.git` file naming a git dir elsewhere in the work tree."""
    sub = nested_repo(ws, markers, "sub", "gitfile", up.sub_source)
    hidden = ws.path / ".hidden-gitdir"
    shutil.move(sub / ".git", hidden)
    (sub / ".git").write_text(f"gitdir: {hidden}\n")
    return plain_status


def plant_untracked_repo(ws: Workspace, up: Upstream, markers: Path) -> Control:
    """A new nested repository with a commit: `git add -A` would record it as a gitlink."""
    nested_repo(ws, markers, "vendor/lib", "nested", None)

    def control(ws: Workspace) -> None:
        env = {**GIT_ENV, "GIT_INDEX_FILE": str(ws.root / "control.index")}
        git(ws.path, "add", "-A", env=env)
        if "160000" in git(ws.path, "ls-files", "-s", "vendor/lib", env=env):
            (markers / "control-gitlink").touch()

    return control


def plant_unborn_repo(ws: Workspace, up: Upstream, markers: Path) -> Control:
    """A nested repository without a commit: plain `git add -A` fails on it."""
    (ws.path / "scratchpad").mkdir()
    git(ws.path / "scratchpad", "init", "-q")
    (ws.path / "scratchpad" / "notes.txt").write_text("x\n")

    def control(ws: Workspace) -> None:
        env = {**GIT_ENV, "GIT_INDEX_FILE": str(ws.root / "control.index")}
        added = subprocess.run(["git", "add", "-A"], cwd=ws.path, env=env, capture_output=True)
        if added.returncode:
            (markers / "control-add-failed").touch()

    return control


def plant_dot_git_dir(ws: Workspace, up: Upstream, markers: Path) -> Control:
    """A repository of the agent's own in place of the work tree's `.git` file."""
    (ws.path / ".git").unlink()
    git(ws.scratch_dir, "init", "-q", "fake")
    shutil.move(ws.scratch_dir / "fake" / ".git", ws.path / ".git")
    with (ws.path / ".git" / "config").open("a") as file:
        file.write(hostile_config(ws, markers, "dotgit"))
    shutil.copytree(
        hooks_dir(ws, markers, "dotgit"), ws.path / ".git" / "hooks", dirs_exist_ok=True
    )
    (ws.path / ".gitattributes").write_text(ATTRIBUTES)
    (ws.path / "README.md").write_text("# Widgets, changed\n")
    return plain_status


def plant_home_config(ws: Workspace, up: Upstream, markers: Path) -> Control:
    """Config where git looks for a user's (the sandbox's HOME is the scratch dir; XDG; the
    work tree), `.gitattributes` naming the filter and drivers it defines, and a `.gitmodules`
    whose URL and update command are commands."""
    config = hostile_config(ws, markers, "home")
    home = ws.scratch_dir / "home"
    for base in (home, ws.path):
        base.mkdir(parents=True, exist_ok=True)
        (base / ".gitconfig").write_text(config)
        (base / ".config" / "git").mkdir(parents=True, exist_ok=True)
        (base / ".config" / "git" / "config").write_text(config)
        (base / ".config" / "git" / "attributes").write_text(ATTRIBUTES)
    (ws.path / ".gitattributes").write_text(ATTRIBUTES)
    (ws.path / "README.md").write_text("# Widgets, changed\n")
    (ws.path / ".gitmodules").write_text(
        f'[submodule "sub"]\n\tpath = sub\n\turl = ext::sh -c touch% {markers}/ext\n'
        f"\tupdate = !{script(ws, markers, 'submodule-update')}\n"
    )

    def control(ws: Workspace) -> None:
        env = {key: value for key, value in GIT_ENV.items() if key != "GIT_CONFIG_GLOBAL"}
        git(ws.path, "status", env={**env, "HOME": str(home)}, check=False)

    return control


Plant = Callable[[Workspace, Upstream, Path], Control]
PLANTS: dict[str, Plant] = {
    "a repository at the submodule path": plant_submodule_repo,
    "a gitfile repository at the submodule path": plant_submodule_gitfile,
    "an untracked nested repository": plant_untracked_repo,
    "a nested repository without a commit": plant_unborn_repo,
    "a .git directory in place of the .git file": plant_dot_git_dir,
    "config in HOME, XDG and the work tree": plant_home_config,
}
