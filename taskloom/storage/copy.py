"""``taskloom db copy --to postgresql://...``: a SQLite home's whole database, moved into an empty PostgreSQL one.

Both hold the same schema (:mod:`taskloom.storage.migrations`), so the copy is
row for row: the target is brought up to the schema first, then every table
is copied in an order that keeps every reference valid (documents before the
versions and runs that name them, a run before the runs it started), in one
transaction, so a failure leaves the target as it was. Identity counters
continue after the highest copied id. The counts of every table are compared
before the transaction commits. Secrets stay encrypted: copy the home's key
file (``secret.key``) to the hosts that will read them. Large outputs the home
spilled to ``outputs/`` move into the database's ``output_blobs`` (a
PostgreSQL store's hosts share no folder), and their references say so.

A target that holds any row already is refused: a copy never merges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from taskloom.storage.outputs import SPILL_KEY
from taskloom.storage.schema_state import DatabaseUrlError, connect_postgres, SCHEMA_LOCK, apply_changes
from taskloom.storage.sqlite import sqlite_utils

__all__ = ["TABLES", "copy_to_postgres", "CopyRefused"]

#: Every table, parents before the tables that reference them.
TABLES = (
    "documents", "workflows", "workflow_versions", "runs", "task_states", "attempts", "logs", "output_blobs", "runners",
    "secrets", "config", "task_memory", "firings", "scheduler_lease", "trigger_state", "webhook_tokens",
    "scheduler_api", "users", "api_tokens", "login_failures", "audit", "alerts",
)
#: Tables whose ``id`` is an identity column on PostgreSQL (AUTOINCREMENT on SQLite).
_IDENTITY = ("runs", "attempts", "logs", "firings", "api_tokens", "audit", "alerts")


class CopyRefused(DatabaseUrlError):
    """The target database already holds rows; a copy goes only into an empty database."""


def copy_to_postgres(source: str | Path, url: str) -> dict[str, int]:
    """Copy the SQLite database at ``source`` into the empty PostgreSQL database at ``url``; rows per table."""
    src = sqlite_utils.Database(Path(source))
    try:
        if not src["documents"].exists():
            raise DatabaseUrlError(f"{source} is not a Taskloom database (it has no documents table)")
        apply_changes(url)
        counts = {table: src.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
        with connect_postgres(url) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
            _refuse_unless_empty(conn, url)
            for table in TABLES:
                _copy_table(src, conn, table)
            for table in _IDENTITY:
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                             f" GREATEST((SELECT max(id) FROM {table}), 1), (SELECT max(id) FROM {table}) IS NOT NULL)")
            copied = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
            if copied != counts:
                wrong = {t: (counts[t], copied[t]) for t in TABLES if counts[t] != copied[t]}
                raise DatabaseUrlError(f"the copy does not match its source (table: source, copy): {wrong};"
                                       " nothing was kept")
            counts["output_blobs"] += _move_spilled_outputs(conn, Path(source).parent)
    finally:
        src.conn.close()
    return counts


#: Where outputs are stored, with the columns that key a row.
_OUTPUT_COLUMNS = (("attempts", "id"), ("task_states", "run_id, task_id"))


def _move_spilled_outputs(conn: Any, home: Path) -> int:
    """Large outputs the SQLite home keeps as files under ``home``: into ``output_blobs``, references rewritten.

    Returns how many files moved. A file already missing stays a file reference (reading it explains).
    """
    moved = 0
    for table, key in _OUTPUT_COLUMNS:
        rows = conn.execute(f"SELECT {key}, output FROM {table} WHERE output LIKE %s",
                            ['{"' + SPILL_KEY + '":%']).fetchall()
        for *ids, text in rows:
            ref = json.loads(text)[SPILL_KEY]
            if ref.get("stored") == "database":
                continue
            try:
                data = (home / ref["path"]).read_text(encoding="utf-8")
            except OSError:
                continue
            moved += conn.execute("INSERT INTO output_blobs (path, bytes, data) VALUES (%s, %s, %s)"
                                  " ON CONFLICT (path) DO NOTHING", [ref["path"], ref["bytes"], data]).rowcount
            where = " AND ".join(f"{column.strip()} = %s" for column in key.split(","))
            conn.execute(f"UPDATE {table} SET output = %s WHERE {where}",
                         [json.dumps({SPILL_KEY: {**ref, "stored": "database"}}, ensure_ascii=False,
                                     separators=(",", ":")), *ids])
    return moved


def _refuse_unless_empty(conn: Any, url: str) -> None:
    held = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}
    busy = {table: n for table, n in held.items() if n}
    if busy:
        listed = ", ".join(f"{n} {table}" for table, n in busy.items())
        raise CopyRefused(f"the target database is not empty ({listed}); a copy goes only into an empty"
                          " database: create a new one (createdb) and copy into it")


def _copy_table(src: sqlite_utils.Database, conn: Any, table: str) -> None:
    columns = [row[1] for row in src.execute(f'PRAGMA table_info("{table}")')]
    names = ", ".join(columns)
    order = "id" if "id" in columns and table in _IDENTITY else "rowid"
    rows = src.execute(f"SELECT {names} FROM {table} ORDER BY {order}")
    with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
