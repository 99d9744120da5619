"""docs/guarantees.md names the test behind each promise: every one it names must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUARANTEES = ROOT / "docs" / "guarantees.md"


def test_every_test_the_guarantees_page_names_exists():
    text = GUARANTEES.read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_\w+\.py)(?:::(\w+))?", text))
    assert len(named) > 40, "the page should name the tests behind its promises"
    missing = []
    for file, function in sorted(named):
        path = ROOT / "tests" / file
        if not path.exists():
            missing.append(file)
            continue
        if function:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            if function not in names:
                missing.append(f"{file}::{function}")
    assert not missing, f"docs/guarantees.md names tests that do not exist: {missing}"
