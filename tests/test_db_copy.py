"""``taskloom db copy --to postgresql://...``: a real home (examples, runs, logs, a secret) into a real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clitools import query, taskloom
from conftest import ROOT
from taskloom.storage.copy import TABLES


@pytest.fixture
def used_home(home: Path) -> Path:
    """A home with the examples imported, two runs of hello with their logs, a secret and a setting."""
    examples = sorted(str(p) for p in (ROOT / "assets" / "examples").glob("*.json"))
    assert taskloom(home, "import", *examples).returncode == 0
    for who in ("Ada", "Grace"):
        assert taskloom(home, "run", "hello", "-p", f"who={who}").returncode == 0
    assert taskloom(home, "secrets", "set", "API_TOKEN", input="tok-1234").returncode == 0
    assert taskloom(home, "config", "set", "logs.max_line_bytes", "50000").returncode == 0
    return home


def test_a_home_is_copied_row_for_row_and_a_second_copy_is_refused(used_home: Path, postgres_db: str) -> None:
    import psycopg

    copied = taskloom(used_home, "db", "copy", "--to", postgres_db, "--json")
    assert copied.returncode == 0, copied.stderr
    rows = json.loads(copied.stdout)["rows"]
    for table in TABLES:
        assert rows[table] == query(used_home, f"SELECT count(*) FROM {table}")[0][0], table
    assert rows["runs"] == 2 and rows["logs"] > 0 and rows["workflow_versions"] == 5 and rows["secrets"] == 1
    with psycopg.connect(postgres_db) as conn:
        logs = conn.execute("SELECT run_id, task_id, line FROM logs ORDER BY id").fetchall()
        secret = conn.execute("SELECT value FROM secrets").fetchone()[0]
        new_id = conn.execute("INSERT INTO runs (workflow, document, status, logical_time, created)"
                              " SELECT workflow, document, 'queued', 0, 0 FROM runs LIMIT 1 RETURNING id").fetchone()[0]
        conn.rollback()
    assert logs == [tuple(r) for r in query(used_home, "SELECT run_id, task_id, line FROM logs ORDER BY id")]
    assert bytes(secret) == query(used_home, "SELECT value FROM secrets")[0][0]  # still encrypted, byte for byte
    assert b"tok-1234" not in bytes(secret)
    assert new_id == 3  # ids go on after the copied ones

    again = taskloom(used_home, "db", "copy", "--to", postgres_db)
    assert again.returncode == 1 and "the target database is not empty (" in again.stderr and "2 runs" in again.stderr
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2  # nothing added, nothing lost


def test_copy_needs_a_postgresql_target_and_an_existing_source(home: Path, tmp_path: Path) -> None:
    wrong = taskloom(home, "db", "copy", "--to", str(tmp_path / "x.db"))
    assert wrong.returncode == 1 and "--to a postgresql:// URL" in wrong.stderr
    missing = taskloom(tmp_path / "no-home", "db", "copy", "--to", "postgresql://u@127.0.0.1:1/d")
    assert missing.returncode == 1 and "does not exist: nothing to copy" in missing.stderr


def test_after_the_copy_runs_logs_and_export_print_the_same_on_both_stores(used_home: Path, postgres_db: str) -> None:
    """The round trip a user makes when moving over: the same commands, the same answers, from the new store."""
    assert taskloom(used_home, "db", "copy", "--to", postgres_db).returncode == 0
    commands = [("runs",), ("runs", "--json"), ("logs", "1"), ("logs", "2"), ("export", "hello"),
                ("list",), ("secrets", "list")]
    for command in commands:
        on_sqlite = taskloom(used_home, *command)
        on_postgres = taskloom(used_home, "--database", postgres_db, *command)
        assert on_sqlite.returncode == on_postgres.returncode == 0, (command, on_postgres.stderr)
        assert on_postgres.stdout == on_sqlite.stdout, command
    # the copy is a working store: a new run on it continues the ids and shows its logs
    ran = taskloom(used_home, "--database", postgres_db, "run", "hello", "-p", "who=Linus")
    assert ran.returncode == 0, ran.stderr
    assert "Linus" in taskloom(used_home, "--database", postgres_db, "logs", "3").stdout
    assert "Linus" not in taskloom(used_home, "logs", "2").stdout
