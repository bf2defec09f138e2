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


def fix_add_in_any_order(runs: int) -> list[fa.Reply | Any]:
    """`fix_add` for runs that go at the same time: each conversation gets the edit first and the
    summary once its edit was answered, however the runs' requests interleave."""

    def answer(request: dict[str, Any]) -> fa.Reply:
        answered = any(
            isinstance(m.get("content"), list)
            and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in m["content"])
            for m in request.get("messages", [])
        )
        return fa.text("Fixed add.") if answered else edit("a - b", "a + b")

    return [answer] * (2 * runs)


def run_finished(rows: list[dict[str, Any]]) -> bool:
    """Every run Honk recorded on a target has ended."""
    return bool(rows) and all(r["status"] not in ("queued", "waiting", "running") for r in rows)
