"""The pure core does no I/O: its modules may not import storage, processes, SQLite or UI code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "engine"

# Everything in engine/ is pure unless listed here: a new module is held to the rule by default.
IMPURE = {"runner", "process", "logbuffer", "tasks"}
PURE_MODULES = sorted(
    p.stem for p in ENGINE.glob("*.py") if p.stem not in IMPURE and p.stem != "__init__"
)
FORBIDDEN = {"storage", "subprocess", "sqlite3", "sqlite_utils", "streamlit", "ui", "socket", "multiprocessing"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the engine package
                module = (node.module or "").split(".")[0]
                roots.add(f"engine.{module}" if module else "engine")
            elif node.module:
                roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_nothing_impure(module):
    roots = imported_roots(ENGINE / f"{module}.py")
    assert not roots & FORBIDDEN, f"engine/{module}.py imports {sorted(roots & FORBIDDEN)}"
    impure_engine = {r for r in roots if r.startswith("engine.") and r.split(".")[1] not in PURE_MODULES}
    assert not impure_engine, f"engine/{module}.py imports impure engine modules {sorted(impure_engine)}"


def test_engine_never_imports_storage_or_ui():
    for path in ENGINE.rglob("*.py"):
        roots = imported_roots(path)
        assert not roots & {"storage", "ui", "streamlit"}, f"{path} imports {roots & {'storage', 'ui'}}"


def test_the_checker_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom ..storage import db\n")
    assert {"sqlite3", "engine.storage"} <= imported_roots(bad)
