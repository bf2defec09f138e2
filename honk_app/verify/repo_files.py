"""`path in RepoFiles(root)`: is there a regular file at `path` inside the workspace?

junit's path mapping asks this up to a few hundred times per report with guesses built from
hostile text. Each question is answered from cached directory listings, so the file system sees
one read per distinct directory, at most `MAX_DIR_READS` per report and `MAX_DIR_ENTRIES` entries
each, whatever the guesses. Nothing is followed through a symlink: a path counts only when every
directory on the way and the file itself are real, so a link cannot point a guess outside.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

MAX_DIR_READS = 64
MAX_DIR_ENTRIES = 5_000
MAX_PATH_PARTS = 40
MAX_PATH_CHARS = 1_000

# a directory's entries: name → True for a directory, False for a regular file
_Listing = dict[str, bool]


class RepoFiles:
    """A Container of the workspace's relative file paths; `reads` counts directory reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.reads = 0
        self._listings: dict[str, _Listing | None] = {}

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str) or not path or len(path) > MAX_PATH_CHARS or "\0" in path:
            return False
        parts = path.split("/")
        if len(parts) > MAX_PATH_PARTS or any(part in ("", ".", "..") for part in parts):
            return False
        directory = ""
        for name in parts[:-1]:
            listing = self._listing(directory)
            if listing is None or listing.get(name) is not True:
                return False
            directory = f"{directory}/{name}" if directory else name
        listing = self._listing(directory)
        return listing is not None and listing.get(parts[-1]) is False

    def _listing(self, directory: str) -> _Listing | None:
        if directory in self._listings:
            return self._listings[directory]
        if self.reads >= MAX_DIR_READS:
            return None
        self.reads += 1
        listing: _Listing = {}
        try:
            with os.scandir(self.root / directory) as entries:
                for entry in itertools.islice(entries, MAX_DIR_ENTRIES):
                    if entry.is_dir(follow_symlinks=False):
                        listing[entry.name] = True
                    elif entry.is_file(follow_symlinks=False):
                        listing[entry.name] = False
        except OSError:
            self._listings[directory] = None
            return None
        self._listings[directory] = listing
        return listing
