"""The shipped and operator code stays in rooms of its own: no module over 500 lines, no class over 250."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("functions", "schemas", "infra", "aurora_restore")
SOURCES = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_a_module_fits_in_500_lines_and_a_class_in_250(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 500
    long = {
        node.name: node.end_lineno - node.lineno + 1  # type: ignore[operator]
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 250  # type: ignore[operator]
    }
    assert long == {}


def test_every_module_says_what_it_is_for_in_its_first_line() -> None:
    silent = [
        str(path.relative_to(ROOT)) for path in SOURCES if not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert silent == []
