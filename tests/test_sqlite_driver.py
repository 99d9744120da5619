"""Taskloom's own database goes through a SQLite without the WAL-reset bug where a wheel brings one,
and through the same driver as sqlite-utils; elsewhere the scheduler says plainly what to do."""

from __future__ import annotations

import ast
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils.utils

from taskloom.storage.db import connect, sqlite_version_note
from taskloom.storage.sqlite import DRIVER, sqlite3

from clitools import TASKLOOM, env_for, wait_for

#: Where pyproject.toml's marker installs pysqlite3 (its wheels bundle a fixed SQLite).
WHEEL_HERE = platform.machine() in ("x86_64", "AMD64") or sys.platform == "darwin"

ROOT = Path(__file__).resolve().parent.parent


def _imports_stdlib_sqlite3(path: Path) -> list[int]:
    """The lines where ``path`` imports the standard library's sqlite3."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        if any(m == "sqlite3" or m.startswith("sqlite3.") for m in modules):
            lines.append(node.lineno)
    return lines


def test_what_opens_the_taskloom_database_imports_no_other_sqlite3() -> None:
    """Storage, the scheduler, the UI, the benchmarks and any test that names taskloom.db take the driver from
    taskloom.storage.sqlite (the engine's sql task and tests of it on the user's own files keep the standard library's)."""
    offenders = []
    for folder in ("taskloom/storage", "taskloom/runtime", "taskloom/api", "taskloom/ui", "bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in ("taskloom/storage/sqlite.py", "taskloom/runtime/tasks/sql.py") or (
                    folder == "tests" and name != "tests/clitools.py"
                                               and "taskloom.db" not in path.read_text(encoding="utf-8")):
                continue
            offenders += [f"{name}:{line}" for line in _imports_stdlib_sqlite3(path)]
    assert not offenders, f"open the Taskloom database with taskloom.storage.sqlite's driver instead: {offenders}"


@pytest.mark.skipif(not WHEEL_HERE, reason="no pysqlite3 wheel for this machine: the linked SQLite is used")
def test_taskloom_connections_run_on_a_sqlite_without_the_wal_reset_bug(tmp_path: Path) -> None:
    db = connect(tmp_path / "taskloom.db")
    try:
        linked = db.execute("SELECT sqlite_version()").fetchone()[0]
        assert sqlite_version_note(linked) is None, f"Taskloom's connections run on SQLite {linked}"
        assert DRIVER == "pysqlite3" and type(db.conn).__module__ == "pysqlite3.dbapi2"
        assert sqlite_version_note() is None
    finally:
        db.conn.close()


def test_taskloom_and_sqlite_utils_use_one_driver_and_its_error_classes(tmp_path: Path) -> None:
    assert sqlite3 is sqlite_utils.utils.sqlite3
    db = connect(tmp_path / "taskloom.db")
    try:
        assert isinstance(db.conn, sqlite3.Connection)
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            db.execute("SELECT * FROM no_such_table")
    finally:
        db.conn.close()


@pytest.mark.skipif(not WHEEL_HERE, reason="no pysqlite3 wheel for this machine: the warning is expected here")
def test_the_scheduler_starts_without_the_one_writing_process_warning(tmp_path: Path, home: Path) -> None:
    err_path = tmp_path / "scheduler.err"
    with open(err_path, "w") as err:
        service = subprocess.Popen([TASKLOOM, "scheduler", "--no-api"], env=env_for(home), cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        wait_for(lambda: "scheduler started" in err_path.read_text(), timeout=30, what="the scheduler to start")
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=30) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    log = err_path.read_text()
    assert "scheduler started" in log
    assert "one writing process" not in log and "WAL-reset" not in log, log


@pytest.mark.parametrize(("version", "affected"), [
    ("3.6.23", False), ("3.7.0", True), ("3.40.1", True), ("3.44.5", True), ("3.44.6", False), ("3.45.0", True),
    ("3.50.6", True), ("3.50.7", False), ("3.51.2", True), ("3.51.3", False), ("3.53.4", False), ("4.0.0", False),
])
def test_the_warning_for_an_affected_sqlite_says_which_sqlite_is_needed(version: str, affected: bool) -> None:
    note = sqlite_version_note(version, "sqlite3")
    if not affected:
        assert note is None
        return
    assert note is not None and note.startswith(f"SQLite {version} (through the sqlite3 module) has the WAL-reset bug")
    for words in ("Keep to one writing process per database", "Taskloom needs SQLite 3.51.3 or later",
                  "3.50.7+, 3.44.6+", "pysqlite3", "sqlite.org/wal.html#walresetbug"):
        assert words in note, words
