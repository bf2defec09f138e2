"""The small repository the end-to-end tests work on, and the scripted agent's moves in it.

`calc.py` has a bug (`add` subtracts) that `test_calc.py` (stdlib unittest, so the sandbox needs
nothing installed) catches; the scripted model fixes it with Anthropic's standard tools.
"""

from __future__ import annotations

from typing import Any

from tests.fakes import anthropic as fa

CALC = "def add(a, b):\n    return a - b\n"
TEST = (
    "import unittest\n\nfrom calc import add\n\n\n"
    "class AddTest(unittest.TestCase):\n"
    "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n"
)
FILES = {"calc.py": CALC, "test_calc.py": TEST}
HONK_YML = "test: python3 -m unittest -q\n"


def edit(old: str, new: str, path: str = "calc.py") -> fa.Reply:
    return fa.tool_use(
        "str_replace_based_edit_tool",
        {"command": "str_replace", "path": path, "old_str": old, "new_str": new},
    )


def create(path: str, text: str) -> fa.Reply:
    return fa.tool_use(
        "str_replace_based_edit_tool", {"command": "create", "path": path, "file_text": text}
    )


def bash(command: str) -> fa.Reply:
    return fa.tool_use("bash", {"command": command})


def fix_add(summary: str = "Fixed add.") -> list[fa.Reply]:
    """The shortest good session: one edit, then a summary."""
    return [edit("a - b", "a + b"), fa.text(summary)]


def run_finished(rows: list[dict[str, Any]]) -> bool:
    """Every run Honk recorded on a target has ended."""
    return bool(rows) and all(r["status"] not in ("queued", "waiting", "running") for r in rows)
