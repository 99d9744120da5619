"""Opening the SQLite database: pragmas, write transactions, migrations.

Every connection runs in autocommit mode (``isolation_level=None``) and every
write goes through :func:`write_txn`, which starts with ``BEGIN IMMEDIATE``:
the write lock is taken up front, so a write never fails half-way with
SQLITE_BUSY because a read snapshot went stale (sqlite.org/lang_transaction.html
§2.1); waiting for the lock is bounded by the busy timeout.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def _import_sqlite_utils() -> Any:
    """Import sqlite_utils without the pandas and numpy it loads whenever they are installed.

    It only uses them for DataFrame and numpy-typed inserts, which Taskloom
    never makes, and loading them (with pyarrow) took 0.3 s of every command's
    start. Where another part of the process already imported them, nothing is
    hidden.
    """
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes "import name" raise ImportError
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()

from . import failpoints  # noqa: E402

__all__ = ["connect", "write_txn", "BUSY_TIMEOUT_MS", "StorageError", "sqlite_version_note"]

BUSY_TIMEOUT_MS = 30_000

#: SQLite releases in which concurrent WAL writers/checkpointers may corrupt a
#: database (fixed in 3.51.3, 3.50.7, 3.44.6). We keep to one writing process.
WAL_RESET_BUG = "the WAL-reset bug (sqlite.org/wal.html#walresetbug)"


class StorageError(RuntimeError):
    """The database cannot be opened or written; the message names the path."""


def sqlite_version_note() -> str | None:
    """A warning when the linked SQLite has the WAL-reset bug, for long-running processes to log."""
    version = tuple(int(p) for p in sqlite3.sqlite_version.split("."))
    if _affected_by_wal_reset_bug(version):
        return (
            f"SQLite {sqlite3.sqlite_version} has {WAL_RESET_BUG}; "
            "keep to one writing process per database"
        )
    return None


def _affected_by_wal_reset_bug(version: tuple[int, ...]) -> bool:
    fixed = [(3, 44, 6), (3, 50, 7), (3, 51, 3)]
    if version < (3, 7, 0) or version >= (3, 51, 3):
        return False
    return not any(version[:2] == f[:2] and version >= f for f in fixed)


def connect(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path),
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except (sqlite3.Error, OSError) as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from None
    db = sqlite_utils.Database(conn)
    # One lock per connection: the runner's threads share it.
    db.lock = threading.RLock()  # type: ignore[attr-defined]
    from .migrations import migrate

    try:
        migrate(db)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot prepare database {path}: {exc}") from None
    return db


@contextmanager
def write_txn(db: sqlite_utils.Database, *, durable: bool = True) -> Iterator[sqlite_utils.Database]:
    """A write transaction opened with ``BEGIN IMMEDIATE``; nested calls join the outer one.

    ``durable=False`` commits without an fsync (``synchronous = NORMAL`` for this
    commit only): the change survives a crash of any process at once, and
    reaches the disk, in order, with the next durable commit. It is for rows
    that matter only while this machine keeps running (an attempt's pid) or
    that a later durable commit depends on anyway (log lines before their
    attempt's end).
    """
    lock: threading.RLock = db.lock  # type: ignore[attr-defined]
    with lock:
        if db.conn.in_transaction:
            yield db
            return
        if not durable:
            db.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                # SQLITE_FULL and friends may already have rolled back; that is fine.
                if db.conn.in_transaction:
                    db.conn.execute("ROLLBACK")
                raise
            else:
                try:
                    failpoints.hit("storage.commit")
                    db.conn.execute("COMMIT")
                except BaseException:
                    if db.conn.in_transaction:
                        db.conn.execute("ROLLBACK")
                    raise
        finally:
            if not durable:
                db.conn.execute("PRAGMA synchronous = FULL")
