"""One exception tree (``taskloom.core.errors``), and each boundary's one way of showing it.

* Every exception class defined in ``taskloom/`` (found by reading each module with
  :mod:`ast`, classes nested in functions included) derives from ``TaskloomError``.
* The tree drawn in ``core/errors.py``'s docstring is the real one: each class it names
  is where it says and derives from its parent there; its families are the module's;
  every public exception class is drawn; classes that had a built-in base keep it.
* ``Fenced`` is one class, wherever it is imported from.
* The command line prints a user mistake and a storage error as one ``error:`` line,
  exit 1, no traceback (the real console script); other families keep their traceback.
* The API answers each family with its status and the documented body.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from fastapi.testclient import TestClient

import taskloom
from taskloom.core import errors
from taskloom.core.errors import Fenced, InternalError, StorageError, TaskFailure, TaskloomError, UserMistake
from taskloom.core.issues import Issue

from clitools import TASKLOOM, env_for, taskloom as run_taskloom, write_flow
from conftest import make_doc

PACKAGE = Path(taskloom.__file__).resolve().parent
ROOT = PACKAGE.parent
MODULES = sorted(PACKAGE.rglob("*.py"))

#: Modules that are scripts: importing one runs it (the web app's pages, ``python -m taskloom.ui.cli``).
#: Their classes are checked from the source alone.
SCRIPTS = {"taskloom/ui/cli/__main__.py", "taskloom/ui/web/app.py"} | {
    str(p.relative_to(ROOT)) for p in (PACKAGE / "ui" / "web" / "views").glob("*.py")}

FAMILIES = {UserMistake, StorageError, Fenced, TaskFailure, InternalError}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.expr, namespace: dict) -> object:
    """The object a base-class expression (``Name`` or ``a.b.Name``) names in ``namespace``, or None."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id, getattr(builtins, node.id, None))
    if isinstance(node, ast.Attribute):
        owner = _resolve(node.value, namespace)
        return getattr(owner, node.attr, None) if owner is not None else None
    return None


def _reachable(module: object, path: list[str]) -> object:
    obj = module
    for name in path:
        obj = getattr(obj, name, None)
    return obj


def _class_defs(tree: ast.Module) -> list[tuple[list[str], ast.ClassDef]]:
    """Every class definition with the path of names that reaches it (None in the path: inside a function)."""
    found: list[tuple[list[str], ast.ClassDef]] = []

    def visit(node: ast.AST, path: list[str], reachable: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                here = path + [child.name]
                found.append((here if reachable else [], child))
                visit(child, here, reachable)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, path, False)
            else:
                visit(child, path, reachable)

    visit(tree, [], True)
    return found


def exception_classes() -> tuple[list[type[BaseException]], list[str]]:
    """Every exception class defined under taskloom/, and those that could only be read from the source
    (as ``file:line Name(bases)`` for the ones whose bases are exceptions outside the tree)."""
    classes: list[type[BaseException]] = []
    unreachable: list[str] = []
    for path in MODULES:
        rel = str(path.relative_to(ROOT))
        defs = _class_defs(ast.parse(path.read_text(), rel))
        if not defs:
            continue
        if rel in SCRIPTS:
            namespace: dict = {}
            for node in ast.walk(ast.parse(path.read_text())):  # the script's imports, without running it
                if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    try:
                        source = importlib.import_module(node.module)
                    except ImportError:
                        continue
                    namespace.update({a.asname or a.name: getattr(source, a.name, None) for a in node.names})
        else:
            module = importlib.import_module(_module_name(path))
            namespace = vars(module)
        for reach, node in defs:
            obj = _reachable(module, reach) if reach and rel not in SCRIPTS else None
            if isinstance(obj, type):
                if issubclass(obj, BaseException):
                    classes.append(obj)
                continue
            for base in node.bases:
                value = _resolve(base, namespace)
                if isinstance(value, type) and issubclass(value, BaseException) and not issubclass(value, TaskloomError):
                    unreachable.append(f"{rel}:{node.lineno} {node.name}({ast.unparse(base)})")
    return classes, unreachable


CLASSES, UNREACHABLE = exception_classes()


def test_the_walk_finds_the_exceptions_it_should() -> None:
    """A guard on the walk itself: it sees classes of every layer, private ones included."""
    names = {c.__qualname__ for c in CLASSES}
    assert {"StorageError", "UserError", "NotFound", "DocumentError", "ApiError", "_Fail", "_Unreadable",
            "SqlFailure", "_Stopped", "InvalidTransition", "PluginWarning"} <= names, names
    assert len(CLASSES) >= 30


@pytest.mark.parametrize("cls", [c for c in CLASSES if not issubclass(c, Warning)],
                         ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_exception_class_is_a_taskloom_error_of_one_family(cls: type[BaseException]) -> None:
    assert issubclass(cls, TaskloomError), f"{cls.__module__}.{cls.__qualname__} does not derive from TaskloomError"
    if cls is not TaskloomError and cls not in FAMILIES:
        assert len([f for f in FAMILIES if issubclass(cls, f)]) == 1, cls.__mro__


def test_no_exception_is_defined_where_the_walk_cannot_import_it() -> None:
    assert not UNREACHABLE, "exceptions outside the tree:\n" + "\n".join(UNREACHABLE)


def test_warnings_are_categories_not_errors() -> None:
    """A warning category (``warnings.warn(..., PluginWarning)``) is not raised as an error: outside the tree."""
    assert [c.__qualname__ for c in CLASSES if issubclass(c, Warning)] == ["PluginWarning"]


# -- the tree in the docstring ----------------------------------------------------------------------

_NODE = re.compile(r"^(?P<indent>[│├└─ ]*)(?P<name>\w+) \[(?P<module>[\w.]+)\]")


def drawn_tree() -> list[tuple[int, type, type | None]]:
    """``(depth, class, parent)`` for each line of the tree in core/errors.py's docstring."""
    doc = errors.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]
    rows: list[tuple[int, type, type | None]] = []
    stack: list[type] = []
    for line in block.splitlines():
        match = _NODE.match(line.strip("\n")[4:])  # the block is indented by four spaces
        assert match, f"not a node of the tree: {line!r}"
        depth = len(match["indent"]) // 4
        cls = getattr(importlib.import_module(f"taskloom.{match['module']}"), match["name"])
        del stack[depth:]
        rows.append((depth, cls, stack[-1] if stack else None))
        stack.append(cls)
    return rows


def test_the_drawn_tree_is_the_real_one() -> None:
    rows = drawn_tree()
    assert rows[0] == (0, TaskloomError, None)
    for depth, cls, parent in rows[1:]:
        assert parent is not None and issubclass(cls, parent), f"{cls.__name__} is drawn under {parent}"
        assert cls.__bases__[0] is parent or parent in cls.__bases__, \
            f"{cls.__name__} is drawn under {parent.__name__} but derives from {cls.__bases__}"


def test_the_families_are_the_ones_documented() -> None:
    drawn = {cls for depth, cls, _ in drawn_tree() if depth == 1}
    defined = {v for v in vars(errors).values() if isinstance(v, type) and TaskloomError in v.__bases__}
    assert drawn == defined == FAMILIES
    assert {c.__name__ for c in FAMILIES | {TaskloomError}} <= set(errors.__all__)


def test_every_public_exception_class_is_drawn() -> None:
    drawn = {cls for _, cls, _ in drawn_tree()}
    public = {c for c in CLASSES if not c.__name__.startswith("_") and not issubclass(c, Warning)}
    assert public - drawn == set(), "not in the tree of core/errors.py: " + ", ".join(
        f"{c.__module__}.{c.__name__}" for c in public - drawn)


def _cls(path: str) -> type:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(f"taskloom.{module}"), name)


@pytest.mark.parametrize(("path", "builtin"), [
    ("storage.workflows.NotFound", LookupError), ("core.params.ParamError", ValueError),
    ("core.templates.TemplateError", ValueError), ("core.issues.DocumentError", ValueError),
    ("core.importers.report.ConversionError", ValueError), ("core.firing.FiringError", ValueError),
    ("storage.config.ConfigError", ValueError), ("core.states.InvalidTransition", ValueError),
    ("core.fastschema.Unsupported", ValueError), ("core.importers.wdl.Untranslatable", ValueError),
    ("runtime.tasks.http.SpecError", ValueError), ("runtime.pollers.PollError", RuntimeError),
    ("core.errors.StorageError", RuntimeError), ("core.errors.Fenced", RuntimeError),
    ("ui.cli.common._Fail", click.ClickException),
])
def test_a_built_in_base_is_kept_so_no_existing_except_breaks(path: str, builtin: type) -> None:
    assert issubclass(_cls(path), builtin)


def test_except_user_error_still_catches_only_what_the_workspace_raises() -> None:
    """UserError is one user mistake among others, not the family: no existing handler catches more than before."""
    from taskloom.storage.store import UserError

    assert issubclass(UserError, UserMistake)
    assert [c for c in CLASSES if c is not UserError and issubclass(c, UserError)] == []


def test_a_user_error_keeps_its_signature_and_gains_place_and_hint() -> None:
    from taskloom.storage.store import UserError

    storage = StorageError("cannot write", path="/x.db", kind="full", reason="the disk is full", fix="free space")
    exc = UserError("bad", [Issue("/tasks/0", "m", "h")], storage=storage, place="/tasks/0", hint="fix it")
    assert (str(exc), exc.issues, exc.storage, exc.place, exc.hint) == (
        "bad", [Issue("/tasks/0", "m", "h")], storage, "/tasks/0", "fix it")
    assert (storage.path, storage.kind, storage.reason, storage.fix) == ("/x.db", "full", "the disk is full", "free space")
    assert errors.storage_failure(exc) is storage and errors.storage_failure(storage) is storage
    assert errors.storage_failure(UserError("no database involved")) is None


def test_storage_errors_from_sqlite_carry_the_fix_alone(tmp_path: Path) -> None:
    from taskloom.storage.db import storage_error
    from taskloom.storage.sqlite import sqlite3

    exc = storage_error(sqlite3.OperationalError("database or disk is full"), tmp_path / "taskloom.db")
    assert exc is not None and exc.kind == "full" and exc.fix and str(exc).endswith(exc.fix)


# -- Fenced is one class ----------------------------------------------------------------------------


def test_fenced_is_one_class() -> None:
    from taskloom.core import journal
    from taskloom.runtime import runner, scheduler
    from taskloom.storage import journal as sqlite_journal

    assert journal.Fenced is runner.Fenced is scheduler.Fenced is sqlite_journal.Fenced is Fenced
    assert not hasattr(scheduler, "_Fenced")
    named = [f"{rel}:{node.lineno}" for rel, node in (
        (str(p.relative_to(ROOT)), n) for p in MODULES for n in ast.walk(ast.parse(p.read_text())))
        if isinstance(node, ast.ClassDef) and "Fenced" in node.name]
    assert named == ["taskloom/core/errors.py:" + str(_line_of("Fenced"))], named


def _line_of(name: str) -> int:
    tree = ast.parse((PACKAGE / "core" / "errors.py").read_text())
    return next(n.lineno for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


# -- the command line -------------------------------------------------------------------------------


def _one_error_line(result: subprocess.CompletedProcess[str], *, logged: bool = False) -> str:
    """The one ``error:`` line of a command that exited 1; with ``logged``, after the warnings it logged."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    errors_ = [line for line in lines if line.startswith("error: ")]
    assert len(errors_) == 1 and lines[-1] == errors_[0], result.stderr
    assert logged or len(lines) == 1, result.stderr
    return errors_[0]


def test_the_cli_prints_a_user_error_as_one_line(tmp_path: Path) -> None:
    line = _one_error_line(run_taskloom(tmp_path / "home", "export", "nosuch"))
    assert "nosuch" in line


def test_the_cli_prints_a_storage_error_as_one_line(tmp_path: Path) -> None:
    """A database that cannot be opened (here: a busy timeout that is not a number), through the workspace."""
    home = tmp_path / "home"
    result = subprocess.run([TASKLOOM, "list"], env=env_for(home, TASKLOOM_BUSY_TIMEOUT_MS="soon"), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert _one_error_line(result) == ("error: TASKLOOM_BUSY_TIMEOUT_MS='soon' is not a number; set it to a number of"
                                       " milliseconds or unset it")


def test_the_cli_prints_a_storage_error_that_reaches_main_as_one_line(tmp_path: Path) -> None:
    """A full disk at the heartbeat of ``taskloom run``: the StorageError reaches main() itself (after the
    warning that the heartbeat row could not be removed either)."""
    home = tmp_path / "home"
    assert run_taskloom(home, "list").returncode == 0  # creates the database
    flow = write_flow(tmp_path, make_doc([{"id": "a", "type": "noop"}]))
    result = subprocess.run([TASKLOOM, "run", flow], env=env_for(home, TASKLOOM_FAILPOINTS="storage.commit=full"),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    line = _one_error_line(result, logged=True)
    assert str(home / "taskloom.db") in line and "the disk is full" in line


_RAISE_IN_MAIN = """
import sys
from taskloom.core.issues import Issue
from taskloom.ui.cli import main as entry
kind = sys.argv[1]

def cli(**kwargs):
    from taskloom.core.errors import InternalError, StorageError
    from taskloom.storage.store import UserError
    from taskloom.storage.workflows import NotFound
    raise {"user": UserError("not valid", [Issue("/tasks/0/id", "bad id", "use letters")], hint="see the docs"),
           "notfound": NotFound("no workflow 'x'"),
           "storage": StorageError("cannot write to database /h/taskloom.db: the disk is full; free space"),
           "bug": InternalError("run 1 cannot go from succeeded to running")}[kind]

entry.cli = cli
entry.main()
"""


@pytest.mark.parametrize(("kind", "expected"), [
    ("user", ["/tasks/0/id: bad id", "    hint: use letters", "error: not valid", "    hint: see the docs"]),
    ("notfound", ["error: no workflow 'x'"]),
    ("storage", ["error: cannot write to database /h/taskloom.db: the disk is full; free space"]),
])
def test_main_prints_any_user_mistake_or_storage_error_that_gets_past_the_commands(
        tmp_path: Path, kind: str, expected: list[str]) -> None:
    result = subprocess.run([sys.executable, "-c", _RAISE_IN_MAIN, kind], env=env_for(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr.splitlines()) == (1, expected), result.stderr


def test_main_keeps_the_traceback_of_a_bug(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", _RAISE_IN_MAIN, "bug"], env=env_for(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "Traceback" in result.stderr and "InternalError" in result.stderr


# -- the API ----------------------------------------------------------------------------------------

INTERNAL = {"error": "internal error; the scheduler's log has the details"}


def _raising_app(home: Path):
    from taskloom.api.app import ApiError, create_app
    from taskloom.core.params import ParamError
    from taskloom.storage.store import UserError
    from taskloom.storage.workflows import NotFound

    raised = {
        "api": ApiError(409, "taken", field="body.name"),
        "notfound": NotFound("no workflow 'x'; import one with 'taskloom import FILE'"),
        "user": UserError("not valid", [Issue("/tasks/0/id", "bad id", "use letters")]),
        "params": ParamError(["parameter 'n' (integer): 'x' is not of type integer"]),
        "storage": StorageError("cannot write to database /h/taskloom.db: the disk is full"),
        "fenced": Fenced("run 1 is now owned by another process"),
        "task": TaskFailure("the attempt failed"),
        "bug": InternalError("run 1 cannot go from succeeded to running"),
    }
    app = create_app(home)

    def boom(kind: str) -> None:
        raise raised[kind]

    app.add_api_route("/boom/{kind}", boom)
    return app


@pytest.mark.parametrize(("kind", "status", "body"), [
    ("api", 409, {"error": "taken", "field": "body.name"}),
    ("notfound", 404, {"error": "no workflow 'x'"}),
    ("user", 422, {"error": "not valid", "issues": [{"path": "/tasks/0/id", "message": "bad id", "hint": "use letters"}]}),
    ("params", 422, {"error": "parameter 'n' (integer): 'x' is not of type integer", "issues": []}),
    ("storage", 500, INTERNAL),
    ("fenced", 500, INTERNAL),
    ("task", 500, INTERNAL),
    ("bug", 500, INTERNAL),
])
def test_the_api_maps_each_family_to_its_status(tmp_path: Path, kind: str, status: int, body: dict) -> None:
    with TestClient(_raising_app(tmp_path / "home"), raise_server_exceptions=False) as client:
        response = client.get(f"/boom/{kind}")
    assert (response.status_code, response.json()) == (status, body)


# -- the web pages ----------------------------------------------------------------------------------


def test_the_web_pages_word_an_error_in_one_place() -> None:
    from taskloom.storage.store import UserError
    from taskloom.storage.workflows import NotFound
    from taskloom.ui.web.state import error_text

    assert error_text(NotFound("no workflow 'x'")) == "no workflow 'x'"
    assert error_text(UserError("not valid", [Issue("/a", "m", "h"), Issue("/b", "n")])) == "not valid: /a: m (h); /b: n"
    assert error_text(UserError("not valid", hint="check the name")) == "not valid (check the name)"
