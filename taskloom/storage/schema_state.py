"""Which schema changes a database has, and applying the missing ones: ``taskloom db status`` and ``db migrate``.

Both backends hold the same changes (:data:`taskloom.storage.migrations.SCHEMA`):

* a SQLite file records them in sqlite-utils' ``_sqlite_migrations`` table
  (every other command also applies them on opening);
* a PostgreSQL database records them in ``taskloom_migrations``. Applying takes
  a transaction-scoped advisory lock first, so schedulers on several hosts
  upgrading at once apply each change exactly once, and all pending changes
  commit together or not at all.

The PostgreSQL store (:mod:`taskloom.storage.postgres`) applies them through
:func:`apply_changes` when a process first opens the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskloom.core.errors import UserMistake
from taskloom.storage.migrations import MIGRATIONS, SCHEMA, postgres_changes
from taskloom.storage.sqlite import sqlite_utils

__all__ = ["SchemaState", "DatabaseUrlError", "schema_state", "apply_changes", "is_postgres_url", "connect_postgres",
           "SCHEMA_LOCK", "without_password"]

#: The advisory lock key that serialises schema changes on a PostgreSQL database ("tlschema").
SCHEMA_LOCK = 0x746C736368656D61

_PG_LEDGER = ("CREATE TABLE IF NOT EXISTS taskloom_migrations"
              " (name TEXT PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)")


class DatabaseUrlError(UserMistake, ValueError):
    """A ``--database`` value that names no database Taskloom can use; the message says what it takes."""


@dataclass(frozen=True)
class SchemaState:
    """Where the database is, which backend, and its applied and pending changes (by name, in order)."""

    backend: str  # "sqlite" | "postgresql"
    location: str  # a file path, or the URL without its password
    applied: tuple[str, ...]
    pending: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "database": self.location, "applied": list(self.applied),
                "pending": list(self.pending), "current": not self.pending}


def is_postgres_url(value: object) -> bool:
    """Whether ``value`` (a ``--database`` value, a path) is a PostgreSQL URL rather than a SQLite file."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def schema_state(database: str | Path) -> SchemaState:
    """The schema state of a SQLite file or a ``postgresql://`` database, changing nothing."""
    if isinstance(database, str) and is_postgres_url(database):
        return _postgres_state(database)
    return _sqlite_state(Path(database))


def apply_changes(database: str | Path) -> tuple[SchemaState, list[str]]:
    """Apply every pending change; return the state after and the names applied now."""
    if isinstance(database, str) and is_postgres_url(database):
        applied = _postgres_apply(database)
    else:
        from taskloom.storage.db import connect  # applies the changes on opening, under the write lock

        applied = list(_sqlite_state(Path(database)).pending)
        connect(Path(database)).conn.close()
    return schema_state(database), applied


def _sqlite_state(path: Path) -> SchemaState:
    names = [change.name for change in SCHEMA]
    if not path.exists():
        return SchemaState("sqlite", str(path), (), tuple(names))
    db = sqlite_utils.Database(path)
    try:
        applied = {m.name for m in MIGRATIONS.applied(db)} if db["_sqlite_migrations"].exists() else set()
    finally:
        db.conn.close()
    return SchemaState("sqlite", str(path), tuple(n for n in names if n in applied),
                       tuple(n for n in names if n not in applied))


def connect_postgres(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise DatabaseUrlError("a postgresql:// database needs the PostgreSQL driver: install taskloom[postgres]"
                               " (pip install 'taskloom[postgres]')") from None
    try:
        return psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise DatabaseUrlError(f"cannot connect to {without_password(url)}: {str(exc).strip()}; check the host,"
                               " port, user and database name, and that the server accepts this client") from None


def _postgres_state(url: str) -> SchemaState:
    with connect_postgres(url) as conn:
        applied = _applied(conn)
    return _state_of(url, applied)


def _applied(conn: Any) -> set[str]:
    """The changes the ledger of ``conn``'s database records (none when it has no ledger yet); writes nothing."""
    exists = conn.execute("SELECT to_regclass('taskloom_migrations') IS NOT NULL").fetchone()[0]
    return {r[0] for r in conn.execute("SELECT name FROM taskloom_migrations")} if exists else set()


def _state_of(url: str, applied: set[str]) -> SchemaState:
    names = [change.name for change in SCHEMA]
    return SchemaState("postgresql", without_password(url), tuple(n for n in names if n in applied),
                       tuple(n for n in names if n not in applied))


def _postgres_apply(url: str) -> list[str]:
    """Apply the pending changes under :data:`SCHEMA_LOCK`; with none pending, write nothing (a read-only
    database, a standby, still opens)."""
    import psycopg

    done = []
    try:
        with connect_postgres(url) as conn:
            if not _state_of(url, _applied(conn)).pending:
                return []
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [SCHEMA_LOCK])
                conn.execute(_PG_LEDGER)
                applied = _applied(conn)  # again under the lock: another host may have applied some meanwhile
                for name, statements in postgres_changes():
                    if name in applied:
                        continue
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO taskloom_migrations (name, applied) VALUES (%s, %s)",
                                 [name, time.time()])
                    done.append(name)
    except psycopg.Error as exc:
        from taskloom.storage.postgres import pg_storage_error  # it builds on this module

        raise (pg_storage_error(exc, without_password(url), "bring the schema up to date in") or exc) from None
    return done


def without_password(url: str) -> str:
    """``url`` as messages may show it: its password, if it has one, replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
