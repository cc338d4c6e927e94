"""The domain imports only the standard library and eventsourcing.domain."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "domain"


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def allowed(module: str) -> bool:
    top = module.split(".", maxsplit=1)[0]
    return (
        top in sys.stdlib_module_names
        or top == "domain"
        or module == "eventsourcing.domain"
        or top == "__future__"
    )


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_domain_module_imports_only_stdlib_and_eventsourcing_domain(path: Path) -> None:
    io_modules = {"socket", "subprocess", "sqlite3", "http", "urllib", "asyncio", "os"}
    bad = [m for m in imported_modules(path) if not allowed(m) or m.split(".")[0] in io_modules]
    assert bad == [], f"{path.name} imports {bad}"
