"""One schema for both backends: the changes written once in SQLite's words give PostgreSQL the same tables.

The SQLite side is a real database file made by ``connect()``; the PostgreSQL
side is a real server started by the suite (``postgres_url``), on which every
change's translated statements are applied in order. The two are compared
table by table, column by column (name, order, type family, NOT NULL,
primary key) and index by index.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from taskloom.storage.db import connect
from taskloom.storage.dialect import DialectError, postgres_ddl
from taskloom.storage.migrations import SCHEMA, postgres_changes, statements

#: SQLite's declared type -> PostgreSQL's data_type as information_schema names it.
TYPES = {"TEXT": "text", "INTEGER": "bigint", "REAL": "double precision", "BLOB": "bytea"}


def sqlite_schema(path: Path) -> tuple[dict[str, list[tuple]], set[str]]:
    db = connect(path)
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'"
        " AND name NOT LIKE 'sqlite%' ORDER BY name")]
    columns = {}
    for table in tables:
        columns[table] = [(name, TYPES[decl.upper()], bool(notnull) or pk > 0, pk > 0)
                          for _, name, decl, notnull, _, pk in db.execute(f'PRAGMA table_info("{table}")')]
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                                        " AND tbl_name != '_sqlite_migrations'")}
    db.conn.close()
    return columns, indexes


def postgres_schema(url: str) -> tuple[dict[str, list[tuple]], set[str]]:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(url) as conn:
        with conn.transaction():
            for _, ddl in postgres_changes():
                for statement in ddl:
                    conn.execute(statement)
        keys = {(t, c) for t, c in conn.execute(
            "SELECT k.table_name, k.column_name FROM information_schema.table_constraints c"
            " JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name"
            " AND k.table_schema = c.table_schema WHERE c.constraint_type = 'PRIMARY KEY'"
            " AND c.table_schema = current_schema()")}
        columns: dict[str, list[tuple]] = {}
        for table, name, data_type, nullable in conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
            columns.setdefault(table, []).append((name, data_type, nullable == "NO", (table, name) in keys))
        indexes = {r[0] for r in conn.execute(
            "SELECT i.indexname FROM pg_indexes i WHERE i.schemaname = current_schema() AND NOT EXISTS ("
            " SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)")}
    return dict(sorted(columns.items())), indexes


def test_both_backends_get_the_same_tables_columns_and_indexes(tmp_path: Path, postgres_db: str) -> None:
    sqlite_columns, sqlite_indexes = sqlite_schema(tmp_path / "taskloom.db")
    pg_columns, pg_indexes = postgres_schema(postgres_db)
    assert list(pg_columns) == list(sqlite_columns)
    for table in sqlite_columns:
        assert pg_columns[table] == sqlite_columns[table], table
    assert pg_indexes == sqlite_indexes and {"logs_task", "logs_run_order", "runs_active"} <= pg_indexes


def test_identity_columns_number_rows_on_postgres_as_autoincrement_does_on_sqlite(postgres_db: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(postgres_db) as conn:
        for _, ddl in postgres_changes():
            for statement in ddl:
                conn.execute(statement)
        conn.execute("INSERT INTO documents (sha256, body, created) VALUES ('h', '{}', 0)")
        ids = [conn.execute("INSERT INTO runs (workflow, document, status, logical_time, created)"
                            " VALUES ('w', 'h', 'queued', 0, 0) RETURNING id").fetchone()[0] for _ in range(3)]
        assert ids == [1, 2, 3]
        conn.execute("INSERT INTO secrets (name, value, created, updated) VALUES ('K', %s, 0, 0)", [b"\x00\xff"])
        assert conn.execute("SELECT value FROM secrets").fetchone()[0] == b"\x00\xff"


def test_every_shipped_change_translates_and_the_names_stay_those_sqlite_recorded() -> None:
    assert [c.name for c in SCHEMA] == [
        "m001_core", "m002_recovery_and_secrets", "m003_config_and_task_memory", "m004_scheduler",
        "m005_log_pages", "m006_origin_and_folder", "m007_scheduler_api", "m008_task_order",
        "m009_output_blobs", "m010_accounts", "m011_alerts", "m012_run_log_order"]
    assert all(c.why for c in SCHEMA)
    for change in SCHEMA:
        for statement in statements(change.sql):
            assert "AUTOINCREMENT" not in postgres_ddl(statement)


@pytest.mark.parametrize("statement", [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT) WITHOUT ROWID",
    "CREATE TABLE t (x TEXT COLLATE NOCASE)",
    "PRAGMA user_version = 3",
    "CREATE TABLE t (id INTEGER AUTOINCREMENT)",
])
def test_a_statement_only_sqlite_understands_is_refused_not_passed_through(statement: str) -> None:
    with pytest.raises(DialectError, match="no PostgreSQL translation"):
        postgres_ddl(statement)
