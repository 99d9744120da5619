"""The layers are folders, and the arrows between them point inward.

Every module of ``taskloom/`` is read with :mod:`ast` (imports inside functions
included) and each import is held against the rules below; a failure names the
file, the line and the forbidden import. ``docs/architecture.md`` explains them.

    core     -> core only; the standard library (no I/O modules) and the pinned pure libraries
    storage  -> core, storage
    runtime  -> core, storage, runtime
    api      -> core, storage, api
    ui/cli   -> anything but api internals it does not need (it may run in the foreground)
    ui/web   -> core, storage, ui (never runtime)

Signals are sent by runtime alone: no ``os.kill``/``os.killpg``/``signal.pthread_kill``
in storage, api or the web pages (the failpoints' self-kill is the one exception: it
is how the fault tests crash a process at an exact line).
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "taskloom"

#: Third-party libraries the core may use: pure computation, no I/O.
PURE_LIBRARIES = {"networkx", "jsonschema", "jinja2", "markupsafe", "croniter", "schedule", "jmespath"}
#: Standard-library modules that do I/O, run processes or read the clock's environment for the core's purposes.
IO_STDLIB = {"subprocess", "socket", "sqlite3", "multiprocessing", "shutil", "tempfile", "signal", "asyncio",
             "http", "urllib.request", "smtplib", "ssl", "select", "selectors", "ctypes", "pty", "fcntl"}


#: layer -> Taskloom layers it must never import
FORBIDDEN = {
    "core": {"storage", "runtime", "api", "ui"},
    "storage": {"runtime", "api", "ui"},
    "runtime": {"api", "ui"},
    "api": {"runtime", "ui"},
    "ui.web": {"runtime", "api"},
    "ui": {"runtime", "api"},  # what the CLI and the web pages share
    "ui.cli": set(),
}

#: (importing file, imported module) pairs allowed across a forbidden arrow, each with why.
ALLOWED = {}

SIGNAL_CALLS = {("os", "kill"), ("os", "killpg"), ("signal", "pthread_kill")}
NO_SIGNALS = ("storage", "api", "ui.web", "core")
SIGNAL_EXEMPT = {"taskloom/storage/failpoints.py": "a failpoint crashes its own process at an exact line"}


@dataclass(frozen=True)
class Import:
    line: int
    module: str


def layer_of(module: str) -> str | None:
    """``taskloom.ui.web.views.runs`` -> ``ui.web``."""
    parts = module.split(".")
    if parts[0] != "taskloom" or len(parts) < 2:
        return None
    if parts[1] == "ui" and len(parts) > 2 and parts[2] in ("cli", "web"):
        return f"ui.{parts[2]}"
    return parts[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[Import]:
    """Every module ``path`` imports, lazy ones too; relative imports resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append(Import(node.lineno, module))
            # "from taskloom.runtime import execution" imports a module too
            found += [Import(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def violations(path: Path) -> list[str]:
    here = layer_of(module_name(path))
    problems = []
    rel = str(path.relative_to(PACKAGE.parent))
    for imp in imports(path):
        there = layer_of(imp.module)
        top = imp.module.split(".")[0]
        if there is not None:
            there_top = there.split(".")[0] if here == "core" else there
            if any(there == f or there.startswith(f + ".") for f in FORBIDDEN.get(here, set())) or \
                    (here == "core" and there_top != "core"):
                if (rel, imp.module) not in ALLOWED:
                    problems.append(f"{rel}:{imp.line}: {here} must not import {imp.module}")
        elif here == "core" and top != "taskloom":
            stdlib = top in sys.stdlib_module_names
            if (stdlib and (top in IO_STDLIB or imp.module in IO_STDLIB)) or (not stdlib and top not in PURE_LIBRARIES
                                                                               and top != "__future__"):
                problems.append(f"{rel}:{imp.line}: core must not import {imp.module} (I/O or not a pinned pure library)")
    return problems


def signal_calls(path: Path) -> list[str]:
    rel = str(path.relative_to(PACKAGE.parent))
    if rel in SIGNAL_EXEMPT:
        return []
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            if (node.func.value.id, node.func.attr) in SIGNAL_CALLS:
                found.append(f"{rel}:{node.lineno}: sends a signal ({node.func.value.id}.{node.func.attr}); only"
                             " runtime may")
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))

#: The start of an SQL statement, as this code base writes them (keywords in capitals).
SQL = re.compile(r"\s*(SELECT\s.+\sFROM\s|SELECT\s+\d|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s"
                 r"|CREATE\s+(TABLE|INDEX|UNIQUE)|ALTER\s+TABLE|BEGIN(\s+IMMEDIATE)?$|COMMIT$|ROLLBACK$|PRAGMA\s)", re.S)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_forbidden_import(path: Path) -> None:
    problems = violations(path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", [p for p in MODULES if layer_of(module_name(p)) in NO_SIGNALS],
                         ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_signal_outside_runtime(path: Path) -> None:
    problems = signal_calls(path)
    assert not problems, "\n".join(problems)


def test_every_layer_says_what_it_owns_and_may_import() -> None:
    for layer in ("", "core", "storage", "runtime", "api", "ui", "ui/cli", "ui/web"):
        init = PACKAGE / layer / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init} needs a docstring saying what the layer owns and may import"


def test_the_tree_is_the_layers() -> None:
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "core", "storage", "runtime", "api", "ui"}
    root = PACKAGE.parent
    for old in ("engine", "storage", "scheduler", "ui"):
        assert not list((root / old).glob("**/*.py")), f"{old}/ is left at the top of the tree"


def test_no_sql_outside_storage() -> None:
    """The store's public API is the only place SQL is written."""
    found = []
    for path in MODULES:
        rel = path.relative_to(PACKAGE.parent)
        if rel.parts[1] == "storage" or rel.parts[-2:] == ("tasks", "sql.py"):
            continue  # the sql task runs the user's own queries on the user's databases
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if SQL.match(node.value):
                    found.append(f"{rel}:{node.lineno}: {node.value.strip()[:50]!r}")
    assert not found, "SQL outside taskloom/storage:\n" + "\n".join(found)


@pytest.mark.parametrize(("layer_file", "line", "expected"), [
    ("core/bad.py", "from taskloom.storage.db import connect\n", "core must not import taskloom.storage.db"),
    ("core/bad.py", "def f():\n    import subprocess\n", "core must not import subprocess"),
    ("core/bad.py", "import httpx\n", "core must not import httpx"),
    ("storage/bad.py", "from taskloom.runtime.runner import Runner\n", "storage must not import taskloom.runtime"),
    ("runtime/bad.py", "from taskloom.api import app\n", "runtime must not import taskloom.api"),
    ("api/bad.py", "def f():\n    from taskloom.runtime import execution\n", "api must not import taskloom.runtime"),
    ("ui/web/bad.py", "from taskloom.runtime.process import kill_leftover_group\n",
     "ui.web must not import taskloom.runtime.process"),
    ("core/specs/bad.py", "from ...runtime.runner import x\n", "core must not import taskloom.runtime.runner"),
])
def test_the_checker_catches_a_forbidden_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layer_file: str,
                                                line: str, expected: str) -> None:
    """A forbidden import added anywhere is named with its file and line."""
    fake = tmp_path / "taskloom" / layer_file
    fake.parent.mkdir(parents=True)
    fake.write_text(line)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "taskloom")
    problems = violations(fake)
    assert any(expected in p and f"taskloom/{layer_file}:" in p for p in problems), problems
