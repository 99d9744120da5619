"""The pure core does no I/O: its modules may not import storage, processes, SQLite or UI code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "engine"

# Everything in engine/ is pure unless listed here: a new module is held to the rule by default.
IMPURE = {"runner", "process", "logbuffer", "tasks", "plugins", "executors", "preflight"}
PURE_MODULES = sorted(
    ".".join(p.relative_to(ENGINE).with_suffix("").parts)
    for p in ENGINE.rglob("*.py")
    if p.relative_to(ENGINE).parts[0].removesuffix(".py") not in IMPURE
)
FORBIDDEN = {"storage", "subprocess", "sqlite3", "sqlite_utils", "streamlit", "ui", "socket", "multiprocessing"}


def imported_roots(path: Path) -> set[str]:
    """Top-level names ``path`` imports; relative imports resolve to ``engine.<module>``."""
    package = path.relative_to(ENGINE).parts[:-1] if path.is_relative_to(ENGINE) else ()
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package inside engine
                base = list(package[: len(package) - (node.level - 1)])
                parts = base + (node.module.split(".") if node.module else [])
                roots.add("engine." + ".".join(parts) if parts else "engine")
            elif node.module:
                roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_nothing_impure(module):
    path = ENGINE.joinpath(*module.split(".")).with_suffix(".py")
    roots = imported_roots(path)
    assert not roots & FORBIDDEN, f"{path} imports {sorted(roots & FORBIDDEN)}"
    impure_engine = {r for r in roots if r.startswith("engine.") and r.split(".")[1] in IMPURE}
    assert not impure_engine, f"{path} imports impure engine modules {sorted(impure_engine)}"


def test_engine_never_imports_storage_or_ui():
    for path in ENGINE.rglob("*.py"):
        roots = imported_roots(path)
        assert not roots & {"storage", "ui", "streamlit"}, f"{path} imports {roots & {'storage', 'ui'}}"


def test_the_checker_catches_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlite3\nfrom .runner import Runner\n")
    assert {"sqlite3", "engine.runner"} <= imported_roots(bad)
