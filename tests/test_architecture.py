"""Honk uses only the public API of its dependencies: a DBOS or githubkit upgrade must not be
able to break it silently by renaming something private."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import honk_app

PACKAGE = Path(honk_app.__file__).parent
# `dbos._core`, `githubkit._x`: a private module or attribute reached through a dependency's name
PRIVATE_ATTRIBUTE = re.compile(
    r"\b(?:dbos|githubkit|starlette|uvicorn|httpx|anthropic|sqlalchemy|pydantic|claude_agent_sdk)"
    r"(?:\.\w+)*\._[a-z]\w*"
)


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def private_imports(source: str) -> list[str]:
    """Every import of a module, from another package, with a part that starts with `_`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            if module.startswith(("honk_app", "__future__")):
                continue
            if any(part.startswith("_") for part in module.split(".")):
                found.append(module)
    return found


def test_the_check_finds_what_it_looks_for() -> None:
    source = "from dbos._core import x\nimport githubkit._y\nfrom dbos import _error\n"
    assert private_imports(source) == ["dbos._core", "dbos._core.x", "githubkit._y", "dbos._error"]
    assert private_imports("from dbos import DBOS\nfrom __future__ import annotations\n") == []
    assert PRIVATE_ATTRIBUTE.search("dbos._sys_db.thing")
    assert not PRIVATE_ATTRIBUTE.search("dbos.error.DBOSException")


def test_honk_imports_no_private_module_of_a_dependency() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): found
        for path in _sources()
        if (found := private_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_honk_reaches_no_private_attribute_of_a_dependency() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): PRIVATE_ATTRIBUTE.findall(text)
        for path in _sources()
        if PRIVATE_ATTRIBUTE.search(text := path.read_text(encoding="utf-8"))
    }
    assert offenders == {}
